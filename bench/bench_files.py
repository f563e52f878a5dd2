"""Issue 2: this server vs the official Node filesystem server, side by side in one run.

Measures startup (spawn -> initialize answered, spawn -> first tools/list answered), the
p50/p99 latency of `read_text_file` on a 1 KiB file, and calls per second (sequential and
with 8 requests in flight). Both servers are driven by the same raw JSON-RPC client
(bench/rpc.py). Budgets: p50 latency <= 1.5x Node, startup <= 2.5x Node.

Our server runs with its shipped defaults (audit and monitoring on) except rate limiting,
which is off: a benchmark calls far faster than the default budget of 20 calls/s by design.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import (
    BENCH,
    INSTALLED_COMMAND,
    ONE_KIB_TEXT,
    fmt_ms,
    interleave,
    interleaved_rates,
    make_file_workspace,
    markdown_table,
    node,
    npm_package_entry,
    npm_package_version,
    ours_env,
    pipelined_rate,
    ratio,
    report,
    verdict,
    write_files_config,
)
from rpc import Server, child_env
from startup import Probe, measure_startup, med_ms

NODE_FS = "@modelcontextprotocol/server-filesystem"
OURS, NODE = "mcp-fileserver", "node server-filesystem"
FLOOR = "FastMCP floor (reference)"
LATENCY_BUDGET = 1.5
STARTUP_BUDGET = 2.5
READ_TOOL = "read_text_file"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args()
    reps, rounds, per_round, warm = (3, 5, 20, 50) if args.quick else (15, 40, 50, 300)

    with tempfile.TemporaryDirectory(prefix="bench-files-") as tmp:
        base = Path(tmp)
        root = make_file_workspace(base)
        target = str(root / "note.txt")
        config = write_files_config(base, root)
        ours_argv = [str(INSTALLED_COMMAND), "--config", str(config)]
        node_argv = [node(), str(npm_package_entry(NODE_FS, "dist/index.js")), str(root)]
        stderr_log = base / "stderr.log"

        def spawn_ours() -> Server:
            return Server(ours_argv, env=ours_env(), stderr_path=stderr_log)

        def spawn_node() -> Server:
            return Server(node_argv, env=child_env(), stderr_path=stderr_log)

        def spawn_floor() -> Server:
            argv = [sys.executable, str(BENCH / "floor_server.py"), str(root)]
            return Server(argv, env=child_env(), stderr_path=stderr_log)

        spawners = {
            OURS: spawn_ours,
            FLOOR: spawn_floor,
            NODE: spawn_node,
        }
        has_read = _has_tool(spawn_ours, READ_TOOL)
        probe = Probe(READ_TOOL, {"path": target}) if has_read else None
        probes = {
            NODE: Probe(READ_TOOL, {"path": target}),
            FLOOR: Probe(READ_TOOL, {"path": target}),
        }
        if probe:
            probes[OURS] = probe

        startup = measure_startup(spawners, reps=reps, probes=probes)
        data: dict[str, object] = {
            "startup_ms": {
                name: {
                    "to_initialize_p50": med_ms(s.to_initialize),
                    "to_tools_list_p50": med_ms(s.to_tools_list),
                    "cpu_to_tools_list_p50": med_ms(s.cpu_to_tools_list),
                    "first_tools_list_p50": med_ms(s.first_list),
                    "steady_tools_list_p50": med_ms(s.steady_list),
                    "first_call_p50": med_ms(s.first_call) if s.first_call else None,
                    "steady_call_p50": med_ms(s.steady_call) if s.steady_call else None,
                }
                for name, s in startup.items()
            },
            "read_tool_available": has_read,
        }

        latency_rows: list[list[object]] = []
        rate_rows: list[list[object]] = []
        if has_read:
            with spawn_ours() as ours, spawn_floor() as floor, spawn_node() as baseline:
                servers = {OURS: ours, FLOOR: floor, NODE: baseline}
                for server in servers.values():
                    server.initialize()
                    _check_read(server, target)
                    for _ in range(warm):
                        server.call_tool(READ_TOOL, {"path": target})
                lat = interleave(
                    {
                        name: (lambda s=s: s.call_tool(READ_TOOL, {"path": target}))
                        for name, s in servers.items()
                    },
                    rounds=rounds,
                    per_round=per_round,
                )
                seq = interleaved_rates(
                    {
                        name: (
                            lambda s=s: pipelined_rate(
                                s, READ_TOOL, {"path": target}, total=per_round * 4, window=1
                            )
                        )
                        for name, s in servers.items()
                    },
                    rounds=max(3, rounds // 8),
                )
                par = interleaved_rates(
                    {
                        name: (
                            lambda s=s: pipelined_rate(
                                s, READ_TOOL, {"path": target}, total=per_round * 4, window=8
                            )
                        )
                        for name, s in servers.items()
                    },
                    rounds=max(3, rounds // 8),
                )
            base_lat = lat[NODE]
            for name, s in lat.items():
                latency_rows.append(
                    [
                        name,
                        len(s.samples),
                        fmt_ms(s.p50_ms),
                        fmt_ms(s.p99_ms),
                        ratio(s.p50_ms, base_lat.p50_ms),
                        ratio(s.p99_ms, base_lat.p99_ms),
                    ]
                )
            for name in servers:
                rate_rows.append(
                    [
                        name,
                        f"{_median(seq[name]):.0f}",
                        f"{_median(par[name]):.0f}",
                        ratio(_median(seq[name]), _median(seq[NODE])),
                        ratio(_median(par[name]), _median(par[NODE])),
                    ]
                )
            data["read_latency_ms"] = {
                name: {"n": len(s.samples), "p50": s.p50_ms, "p99": s.p99_ms, "mean": s.mean_ms}
                for name, s in lat.items()
            }
            data["calls_per_s"] = {
                name: {"sequential": seq[name], "window_8": par[name]} for name in servers
            }

    latency_verdict = "n/a"
    if has_read:
        latency_verdict = verdict(lat[OURS].p50_ms, lat[NODE].p50_ms, LATENCY_BUDGET)
    body = _render(
        startup, latency_rows, rate_rows, has_read, reps, rounds * per_round, latency_verdict
    )
    report(
        f"Issue 2: files vs {NODE_FS} {npm_package_version(NODE_FS)}",
        "make bench-files  # .venv/bin/python bench/bench_files.py",
        body,
        data,
    )


def _has_tool(spawn: object, name: str) -> bool:
    with spawn() as server:  # type: ignore[operator]
        server.initialize()
        return any(t["name"] == name for t in server.list_tools())


def _check_read(server: Server, target: str) -> None:
    """Both servers must really return the file, or the comparison means nothing."""
    result = server.call_tool(READ_TOOL, {"path": target})
    first_line = ONE_KIB_TEXT.splitlines()[0]
    if first_line not in json.dumps(result):
        raise SystemExit(f"{server.argv[0]}: {READ_TOOL} did not return the file: {result}")


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _render(
    startup: dict,
    latency_rows: list[list[object]],
    rate_rows: list[list[object]],
    has_read: bool,
    reps: int,
    samples: int,
    latency_verdict: str,
) -> str:
    base = startup[NODE]
    rows = []
    for name, s in startup.items():
        rows.append(
            [
                name,
                fmt_ms(med_ms(s.to_initialize)),
                fmt_ms(med_ms(s.to_tools_list)),
                ratio(med_ms(s.to_initialize), med_ms(base.to_initialize)),
                ratio(med_ms(s.to_tools_list), med_ms(base.to_tools_list)),
                f"{med_ms(s.cpu_to_tools_list):.0f}",
                ratio(med_ms(s.cpu_to_tools_list), med_ms(base.cpu_to_tools_list)),
                f"{fmt_ms(med_ms(s.first_list))} / {fmt_ms(med_ms(s.steady_list))}",
                f"{fmt_ms(med_ms(s.first_call))} / {fmt_ms(med_ms(s.steady_call))}"
                if s.first_call
                else "n/a",
            ]
        )
    ours = startup[OURS]
    parts = [
        f"### Startup (median of {reps} cold starts each, interleaved)",
        "",
        markdown_table(
            [
                "server",
                "spawn→initialize ms",
                "spawn→first tools/list ms",
                "init ratio",
                "tools/list ratio",
                "CPU ms to tools/list",
                "CPU ratio",
                "first / steady tools/list ms",
                f"first / steady {READ_TOOL} ms",
            ],
            rows,
        ),
        "",
        f"Startup budget <= {STARTUP_BUDGET}x: "
        f"{verdict(med_ms(ours.to_tools_list), med_ms(base.to_tools_list), STARTUP_BUDGET)} "
        "(spawn→first tools/list).",
    ]
    if not has_read:
        parts += ["", f"`{READ_TOOL}` is not served by this build: latency not measured."]
        return "\n".join(parts)
    parts += [
        "",
        f"### `{READ_TOOL}` on a 1 KiB file ({samples} timed calls each, interleaved, "
        "after warm-up)",
        "",
        markdown_table(["server", "n", "p50 ms", "p99 ms", "p50 ratio", "p99 ratio"], latency_rows),
        "",
        f"Latency budget p50 <= {LATENCY_BUDGET}x: {latency_verdict}.",
        "",
        "### Calls per second (median of interleaved blocks)",
        "",
        markdown_table(
            ["server", "sequential", "8 in flight", "sequential ratio", "8-in-flight ratio"],
            rate_rows,
        ),
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    main()
