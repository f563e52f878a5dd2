"""Issue 5: startup of the frozen build vs the installed command, in the same run.

Cold starts alternate between the installed console script (`.venv/bin/mcp-fileserver`),
the PyInstaller one-folder build (`make binary`: dist/mcp-fileserver/mcp-fileserver) and,
when present, the one-file build (`make binary-onefile`: dist/onefile/mcp-fileserver),
which unpacks itself to a temporary folder on every start. Each start is timed to
`initialize` answered and to the first `tools/list` answered; the first tool call is
compared with the steady state to catch imports deferred to the first request.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import (
    FROZEN_ONEDIR,
    INSTALLED_COMMAND,
    REPO,
    fmt_ms,
    make_file_workspace,
    markdown_table,
    ours_env,
    ratio,
    report,
    write_files_config,
)
from rpc import RpcError, Server
from startup import Probe, measure_startup, med_ms

FROZEN_ONEFILE = REPO / "dist" / "onefile" / "mcp-fileserver"
INSTALLED = "installed command"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args()
    reps = 3 if args.quick else 15

    commands = {INSTALLED: INSTALLED_COMMAND, "frozen one-folder": FROZEN_ONEDIR}
    if FROZEN_ONEFILE.exists():
        commands["frozen one-file"] = FROZEN_ONEFILE
    missing = [str(p.relative_to(REPO)) for p in commands.values() if not p.exists()]
    if FROZEN_ONEDIR in [REPO / m for m in missing]:
        raise SystemExit(f"{FROZEN_ONEDIR.relative_to(REPO)} not found: run `make binary` first")

    with tempfile.TemporaryDirectory(prefix="bench-binary-") as tmp:
        base = Path(tmp)
        root = make_file_workspace(base)
        config = write_files_config(base, root)
        stderr_log = base / "stderr.log"

        def spawner(path: Path):
            return lambda: Server(
                [str(path), "--config", str(config)], env=ours_env(), stderr_path=stderr_log
            )

        spawners = {name: spawner(path) for name, path in commands.items()}
        broken: dict[str, str] = {}
        for name in list(spawners):
            if name == INSTALLED:
                continue
            try:
                with spawners[name]() as server:
                    server.initialize()
            except RpcError as exc:  # report it, measure the others
                broken[name] = str(exc)
                del spawners[name]
        with spawners[INSTALLED]() as probe_server:
            probe_server.initialize()
            tools = {t["name"] for t in probe_server.list_tools()}
        probe = (
            Probe("read_text_file", {"path": str(root / "note.txt")})
            if "read_text_file" in tools
            else Probe("list_allowed_directories", {})
        )
        results = measure_startup(spawners, reps=reps, probes=dict.fromkeys(spawners, probe))

    base_s = results[INSTALLED]
    rows = [
        [
            name,
            fmt_ms(med_ms(s.to_initialize)),
            fmt_ms(med_ms(s.to_tools_list)),
            ratio(med_ms(s.to_initialize), med_ms(base_s.to_initialize)),
            ratio(med_ms(s.to_tools_list), med_ms(base_s.to_tools_list)),
            f"{med_ms(s.cpu_to_tools_list):.0f}",
            f"{fmt_ms(med_ms(s.first_list))} / {fmt_ms(med_ms(s.steady_list))}",
            f"{fmt_ms(med_ms(s.first_call))} / {fmt_ms(med_ms(s.steady_call))}",
        ]
        for name, s in results.items()
    ]
    failures = [
        f"- `{name}` does not start ({reason}); see its stderr by running it by hand."
        for name, reason in broken.items()
    ]
    body = "\n".join(
        [
            *(["Not measured:", *failures, ""] if failures else []),
            f"Median of {reps} cold starts each, interleaved, after one warm-up start each "
            f"(page cache). First-call probe: `{probe.tool}`.",
            "",
            markdown_table(
                [
                    "command",
                    "spawn→initialize ms",
                    "spawn→first tools/list ms",
                    "init ratio",
                    "tools/list ratio",
                    "CPU ms to tools/list",
                    "first / steady tools/list ms",
                    f"first / steady {probe.tool} ms",
                ],
                rows,
            ),
        ]
    )
    data = {
        "probe": probe.tool,
        "broken": broken,
        "startup_ms": {
            name: {
                "to_initialize_p50": med_ms(s.to_initialize),
                "to_tools_list_p50": med_ms(s.to_tools_list),
                "cpu_to_tools_list_p50": med_ms(s.cpu_to_tools_list),
                "first_call_p50": med_ms(s.first_call),
                "steady_call_p50": med_ms(s.steady_call),
            }
            for name, s in results.items()
        },
    }
    report(
        "Issue 5: frozen build vs installed command, startup",
        "make binary && make bench-binary  # .venv/bin/python bench/bench_binary.py",
        body,
        data,
    )


if __name__ == "__main__":
    main()
