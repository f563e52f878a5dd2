"""Issue 19: what a large answer costs through the server beyond the work itself.

For the same calls on the same tree, in one run, times each page through our stdio
server (shipped defaults, audit on, rate limiting off; driven by bench/rpc.py) beside
the floor: the same `FileService` call in this process, which walks and builds the
same data but writes no text block, no MCP result, no audit record and no JSON-RPC
line. The difference per page is the answer path: tools layer, FastMCP, the SDK's
serialization, the audit, stdout, and the client reading the line. With
`--baseline-src DIR` (a source tree of an earlier commit, e.g. from `git archive`), a
second server runs that code in the same run.

Calls: `search_files` `*.md` on the whole tree (the issue's case: pages of 1,000 paths,
following `next_cursor`), then calls whose pages cost little to walk, so that the
answer path is most of each page and the walk's run-to-run noise does not hide it:
`search_files` `*` (every entry matches), `search_file_contents` of a common word in one
directory (1,000 lines per page), `directory_tree` of one half of the tree,
`read_multiple_files` of 50 files of 100 KB. Medians of interleaved repetitions, page
cache warm.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import (
    INSTALLED_COMMAND,
    markdown_table,
    ours_env,
    process_cpu_seconds,
    report,
    toml_str,
    write_config,
)
from rpc import Server

MULTI_FILES = 50
MULTI_FILE_BYTES = 100_000
Timed = tuple[list[float], int]  # seconds per page, items in all pages


def server_pages(srv: Server, tool: str, args: dict[str, Any], items: str) -> Timed:
    """Every page of one call through the server, following `next_cursor`."""
    times: list[float] = []
    count = 0
    cursor = None
    while True:
        page_args = {**args, "cursor": cursor} if cursor else args
        start = time.perf_counter()
        result = srv.call_tool(tool, page_args)
        times.append(time.perf_counter() - start)
        structured = result["structuredContent"]
        count += len(structured[items])
        cursor = structured.get("next_cursor")
        if not cursor:
            return times, count


def floor_pages(call: Callable[..., Any], items: str) -> Timed:
    """The same pages from the service in this process (plain data or a model)."""
    times: list[float] = []
    count = 0
    cursor = None
    while True:
        start = time.perf_counter()
        found = call(cursor=cursor)
        times.append(time.perf_counter() - start)
        data = found if isinstance(found, dict) else found.model_dump()
        count += len(data[items])
        cursor = data.get("next_cursor")
        if not cursor:
            return times, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, required=True, help="an existing tree (read only)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--baseline-src", type=Path, help="source tree of an earlier commit")
    args = parser.parse_args()
    tree = args.tree.resolve()
    part = tree / "part0"
    lines = part / "d00" / "m00"
    base = Path(tempfile.mkdtemp(prefix="bench-answer-path-"))
    docs = base / "docs"
    docs.mkdir()
    line = b"the quick brown fox jumps over the lazy dog 0123456789\n"
    body = (line * (MULTI_FILE_BYTES // len(line) + 1))[:MULTI_FILE_BYTES]
    multi = [str(docs / f"doc{i:02}.txt") for i in range(MULTI_FILES)]
    for path in multi:
        Path(path).write_bytes(body)
    config = write_config(
        base / "ours.toml",
        f"[files]\nallowed_dirs = [{toml_str(tree)}, {toml_str(docs)}]\n"
        f"[audit]\nlog_dir = {toml_str(base / 'audit')}\n[rate_limit]\nenabled = false\n",
    )
    os.environ.update({k: v for k, v in ours_env().items() if k.startswith("MCP_FILESERVER_")})
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from mcp_fileserver.config import CliOptions, load_settings
    from mcp_fileserver.files.service import FileService

    service = FileService.from_settings(load_settings(CliOptions(config=str(config))))
    if service.scan_worker is not None:
        service.scan_worker.start()

    calls: list[tuple[str, str, dict[str, Any], str, Callable[..., Any]]] = [
        (
            "search_files `*.md`", "search_files", {"path": str(tree), "pattern": "*.md"},
            "matches", lambda cursor: service.search_files_data(str(tree), "*.md", cursor=cursor),
        ),
        (
            "search_files `*` in part0", "search_files", {"path": str(part), "pattern": "*"},
            "matches", lambda cursor: service.search_files_data(str(part), "*", cursor=cursor),
        ),
        (
            "search_file_contents `alpha1` in part0/d00/m00", "search_file_contents",
            {"path": str(lines), "pattern": "alpha1"}, "matches",
            lambda cursor: service.search_file_contents(str(lines), "alpha1", cursor=cursor),
        ),
        (
            "directory_tree part0", "directory_tree",
            {"path": str(part), "max_depth": 256, "max_entries": 100_000}, "tree",
            lambda cursor: service.directory_tree(
                str(part), max_depth=256, max_entries=100_000, cursor=cursor
            ),
        ),
        (
            f"read_multiple_files {MULTI_FILES} x 100 KB", "read_multiple_files",
            {"paths": multi}, "files",
            lambda cursor: service.read_multiple_files(multi),
        ),
    ]  # fmt: skip

    servers = {"ours": [str(INSTALLED_COMMAND), "--config", str(config)]}
    envs = {"ours": ours_env()}
    cwds: dict[str, Path | None] = {"ours": None}
    if args.baseline_src:
        # Run from the earlier source tree itself: `-m` puts the working directory first
        # on sys.path, ahead of PYTHONPATH and of this checkout's editable install.
        before = args.baseline_src.resolve()
        servers["before"] = [sys.executable, "-m", "mcp_fileserver", "--config", str(config)]
        envs["before"] = ours_env({"PYTHONPATH": str(before)})
        cwds["before"] = before
    running = {name: Server(argv, env=envs[name], cwd=cwds[name]) for name, argv in servers.items()}
    rows = []
    data: dict[str, Any] = {}
    try:
        for srv in running.values():
            srv.initialize()
        for label, tool, tool_args, items, floor_call in calls:
            samples: dict[str, list[Timed]] = {name: [] for name in [*running, "floor"]}
            cpu = dict.fromkeys(running, 0.0)  # server CPU seconds over the timed rounds
            for rep in range(args.reps + 1):  # the first round warms up
                order = list(running.items())
                if rep % 2:
                    order.reverse()
                got = {}
                for name, srv in order:
                    before_cpu = process_cpu_seconds(srv.proc.pid) or 0.0
                    got[name] = server_pages(srv, tool, tool_args, items)
                    if rep:
                        cpu[name] += (process_cpu_seconds(srv.proc.pid) or 0.0) - before_cpu
                got["floor"] = floor_pages(floor_call, items)
                if rep:
                    for name, timed in got.items():
                        samples[name].append(timed)
            counts = {name: timed[0][1] for name, timed in samples.items()}
            assert len(set(counts.values())) == 1, counts
            pages = len(samples["floor"][0][0])
            per_page = {}
            for name, runs in samples.items():
                full = [t for times, _ in runs for t in (times[:-1] if pages > 1 else times)]
                per_page[name] = statistics.median(full)
            floor = per_page["floor"]
            row = [label, pages, counts["floor"]]
            cpu_per_page = {name: cpu[name] / (pages * args.reps) for name in running}
            for name in running:
                row += [
                    f"{per_page[name] * 1e3:.2f}",
                    f"{(per_page[name] - floor) * 1e3:.2f}",
                    f"{cpu_per_page[name] * 1e3:.2f}",
                ]
            row += [f"{floor * 1e3:.2f}"]
            rows.append(row)
            data[label] = {
                "pages": pages,
                "items": counts["floor"],
                "per_page_s": per_page,
                "server_cpu_per_page_s": cpu_per_page,
            }
    finally:
        for srv in running.values():
            srv.close()
        if service.scan_worker is not None:
            service.scan_worker.stop()
    header = ["call", "pages", "items"]
    for name in running:
        header += [f"{name} ms/page", f"{name} - floor", f"{name} server CPU ms/page"]
    header += ["floor ms/page (in-process service)"]
    body = markdown_table(header, rows) + (
        "\n\nPer page: median over the pages of every repetition (all pages but the "
        "last when there are several: the last walks the rest of the tree). `- floor`: "
        "what the page costs beyond the same service call in this process. Server CPU: "
        "the server process's CPU time (walk included, all pages) per page: steadier than "
        "wall time on a shared machine."
    )
    command = "bench/bench_answer_path.py " + " ".join(sys.argv[1:])
    report("bench-answer-path", command, body, data)


if __name__ == "__main__":
    main()
