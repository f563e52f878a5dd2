"""Issue 15: a lean core, side by side in one run with the bare framework and Node.

Three servers, each spawned fresh by the same raw JSON-RPC client (bench/rpc.py):
  - ours, files + SQLite configured, audit and monitor on (rate limits off, so every
    server does the same work: a benchmark calls faster than the default budget);
  - the bare FastMCP floor (bench/floor_server.py: one unchecked read tool);
  - the official Node filesystem server.

Figures: spawn -> first `tools/list` answered; idle RSS after that; `read_text_file`
(1 KiB) p50 latency; calls per second with 1, 8 and 32 requests in flight (a mix of
`read_text_file` and `list_allowed_directories`, the two tools all three share).
Targets (issue 15): startup <= 1.15x the floor, idle RSS <= 1.2x the floor, p50
<= 1.2x Node, sequential >= 1.0x Node, 8 and 32 in flight >= the one-in-flight figure
and >= 0.8x Node; where the floor itself misses a target, within 10% of the floor.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from common import (
    BENCH,
    BENCH_QUERY,
    INSTALLED_COMMAND,
    fmt_ms,
    interleave,
    interleaved_rates,
    make_file_workspace,
    make_sqlite_db,
    markdown_table,
    node,
    npm_package_entry,
    npm_package_version,
    ours_env,
    pipelined_calls_rate,
    ratio,
    report,
    toml_str,
    write_config,
)
from rpc import Server, child_env
from startup import Probe, measure_startup, med_ms

NODE_FS = "@modelcontextprotocol/server-filesystem"
OURS, FLOOR, NODE = "mcp-fileserver (files + SQLite)", "FastMCP floor", "Node server-filesystem"
READ_TOOL = "read_text_file"
WINDOWS = (1, 8, 32)


def idle_rss_mib(pid: int) -> float:
    """Resident memory of an idle server (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def first_sql_call(server: Server) -> tuple[float, float, float]:
    """Our server's first `run_query` (ms; it loads the SQLite engine's stack), the next
    one (ms) and the resident memory after both (MiB)."""
    times = []
    for _ in range(2):
        started = time.perf_counter()
        answer = server.call_tool("run_query", {"database": "items", "sql": BENCH_QUERY})
        times.append((time.perf_counter() - started) * 1000)
        assert len(answer["structuredContent"]["rows"]) == 20, "run_query returned no rows"
    return times[0], times[1], idle_rss_mib(server.proc.pid)


def mixed_rate(server: Server, target: str, *, total: int, window: int) -> float:
    """Calls per second with `window` requests in flight: reads and listings alternating.

    Every answer is checked: a refusal aborts the run instead of counting as a fast call."""
    calls = (
        {"name": READ_TOOL, "arguments": {"path": target}},
        {"name": "list_allowed_directories", "arguments": {}},
    )
    return pipelined_calls_rate(server, calls, total=total, window=window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument("--reps", type=int, help="cold starts per server (default 15)")
    args = parser.parse_args()
    reps, rounds, per_round, warm, rate_rounds = (
        (3, 5, 20, 50, 3) if args.quick else (15, 30, 50, 300, 7)
    )
    reps = args.reps or reps

    with tempfile.TemporaryDirectory(prefix="bench-core-") as tmp:
        base = Path(tmp)
        root = make_file_workspace(base)
        db = make_sqlite_db(base / "db" / "items.db")
        target = str(root / "note.txt")
        config = write_config(
            base / "ours.toml",
            f"""
            [files]
            allowed_dirs = [{toml_str(root)}]
            [databases.items]
            url = {toml_str("sqlite:///" + str(db))}
            [audit]
            log_dir = {toml_str(base / "audit")}
            [rate_limit]
            enabled = false
            """.replace("            ", ""),
        )
        stderr_log = base / "stderr.log"
        argvs = {
            OURS: [str(INSTALLED_COMMAND), "--config", str(config)],
            FLOOR: [sys.executable, str(BENCH / "floor_server.py"), str(root)],
            NODE: [node(), str(npm_package_entry(NODE_FS, "dist/index.js")), str(root)],
        }
        envs = {OURS: ours_env(), FLOOR: child_env(), NODE: child_env()}

        def spawner(name: str) -> Callable[[], Server]:
            return lambda: Server(argvs[name], env=envs[name], stderr_path=stderr_log)

        spawners = {name: spawner(name) for name in argvs}
        probes = {name: Probe(READ_TOOL, {"path": target}) for name in argvs}
        startup = measure_startup(spawners, reps=reps, probes=probes)

        rss: dict[str, list[float]] = {name: [] for name in argvs}
        first_sql: list[tuple[float, float, float]] = []
        for _ in range(3):
            for name, spawn in spawners.items():
                with spawn() as server:
                    server.initialize()
                    server.list_tools()
                    time.sleep(0.5)
                    rss[name].append(idle_rss_mib(server.proc.pid))
                    if name == OURS:
                        first_sql.append(first_sql_call(server))

        with (
            spawners[OURS]() as ours,
            spawners[FLOOR]() as floor,
            spawners[NODE]() as baseline,
        ):
            servers = {OURS: ours, FLOOR: floor, NODE: baseline}
            for server in servers.values():
                server.initialize()
                for _ in range(warm):
                    server.call_tool(READ_TOOL, {"path": target})
            latency = interleave(
                {
                    name: (lambda s=s: s.call_tool(READ_TOOL, {"path": target}))
                    for name, s in servers.items()
                },
                rounds=rounds,
                per_round=per_round,
            )
            # Every window of every server in each round, in a shuffled order: the
            # 8- and 32-in-flight figures are compared with the one-in-flight figure, so
            # a change in the machine's load must not fall on one window's phase.
            by_pair = interleaved_rates(
                {
                    f"{window}|{name}": (
                        lambda s=s, w=window: mixed_rate(
                            s, target, total=max(200, per_round * 8), window=w
                        )
                    )
                    for window in WINDOWS
                    for name, s in servers.items()
                },
                rounds=rate_rounds,
            )
            rates: dict[int, dict[str, list[float]]] = {w: {} for w in WINDOWS}
            for key, values in by_pair.items():
                window_text, name = key.split("|", 1)
                rates[int(window_text)][name] = values

    body, data = _render(startup, rss, latency, rates, reps, first_sql)
    report(
        f"Issue 15: a lean core vs the FastMCP floor and {NODE_FS} {npm_package_version(NODE_FS)}",
        "make bench-core  # .venv/bin/python bench/bench_core.py" + " ".join(["", *sys.argv[1:]]),
        body,
        data,
    )


def _render(
    startup: Mapping[str, Any],
    rss: Mapping[str, list[float]],
    latency: Mapping[str, Any],
    rates: Mapping[int, Mapping[str, list[float]]],
    reps: int,
    first_sql: list[tuple[float, float, float]],
) -> tuple[str, dict[str, Any]]:
    to_list = {name: med_ms(s.to_tools_list) for name, s in startup.items()}
    idle = {name: statistics.median(values) for name, values in rss.items()}
    p50 = {name: s.p50_ms for name, s in latency.items()}
    rate = {w: {n: statistics.median(v) for n, v in by.items()} for w, by in rates.items()}
    rows = [
        [
            "spawn -> first tools/list (ms, p50)",
            *(f"{to_list[n]:.0f}" for n in (OURS, FLOOR, NODE)),
            ratio(to_list[OURS], to_list[FLOOR]),
            ratio(to_list[OURS], to_list[NODE]),
            "<= 1.15x floor",
        ],
        [
            "idle RSS (MiB)",
            *(f"{idle[n]:.1f}" for n in (OURS, FLOOR, NODE)),
            ratio(idle[OURS], idle[FLOOR]),
            ratio(idle[OURS], idle[NODE]),
            "<= 1.2x floor",
        ],
        [
            f"{READ_TOOL} 1 KiB, p50 (ms)",
            *(fmt_ms(p50[n]) for n in (OURS, FLOOR, NODE)),
            ratio(p50[OURS], p50[FLOOR]),
            ratio(p50[OURS], p50[NODE]),
            "<= 1.2x Node",
        ],
    ]
    for window in WINDOWS:
        by = rate[window]
        rows.append(
            [
                f"calls/s, {window} in flight",
                *(f"{by[n]:.0f}" for n in (OURS, FLOOR, NODE)),
                ratio(by[OURS], by[FLOOR]),
                ratio(by[OURS], by[NODE]),
                ">= 1.0x Node" if window == 1 else ">= 0.8x Node, >= 1 in flight",
            ]
        )
    table = markdown_table(
        ["figure", OURS, FLOOR, NODE, "ours / floor", "ours / Node", "target"], rows
    )
    cpu = {name: med_ms(s.cpu_to_tools_list) for name, s in startup.items()}
    body = (
        f"{table}\n\nStartup: {reps} cold starts each, alternating; CPU time to first "
        f"tools/list (ms): "
        + ", ".join(f"{n} {cpu[n]:.0f}" for n in cpu)
        + ". Rates: mixed `read_text_file` / `list_allowed_directories`, median of runs "
        "alternating servers and windows (1, 8, 32 in flight) in a shuffled order. "
        "The machine was shared with other jobs: compare ratios, not absolute figures."
    )
    sql_first, sql_next, sql_rss = (statistics.median(f[i] for f in first_sql) for i in range(3))
    body += (
        f"\n\nIdle RSS is measured before any SQL call: the SQLite engine's stack (sqlglot, "
        f"the guard) loads on the first one. Ours, median of {len(first_sql)} servers: first "
        f"`run_query` {sql_first:.0f} ms, the next {sql_next:.1f} ms; RSS after them "
        f"{sql_rss:.1f} MiB ({sql_rss / idle[FLOOR]:.2f}x the floor's idle RSS)."
    )
    data = {
        "startup_to_tools_list_ms": to_list,
        "startup_cpu_ms": cpu,
        "idle_rss_mib": idle,
        "read_p50_ms": p50,
        "calls_per_s": {str(w): by for w, by in rate.items()},
        "first_run_query_ms": sql_first,
        "second_run_query_ms": sql_next,
        "rss_after_sql_mib": sql_rss,
    }
    return body, data


if __name__ == "__main__":
    main()
