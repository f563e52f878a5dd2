"""Issue 3: `run_query` vs DBHub's `execute_sql` (readonly) on SQLite, in the same run.

The query returns exactly 20 rows through an index (`items_category`, checked with
EXPLAIN QUERY PLAN when the database is built). Both servers are driven by the same raw
JSON-RPC client (bench/rpc.py), warmed up, then timed in interleaved blocks.
Budget: our p50 <= 1.5x DBHub's.

DBHub 1.x dropped its `--readonly` flag; read-only mode is a `[[tools]]` entry with
`readonly = true` in its TOML configuration, which is what this script writes.
Our server runs with its shipped defaults (audit, monitoring, SQL guard on) except rate
limiting, which a benchmark exceeds by design.

Issue 13 adds a 10,000-row SELECT (the whole table), against DBHub and against the floor:
raw `sqlite3` fetchall plus `json.dumps` of the rows, timed in this process in the same
run. Budget: our p50 <= 1.2x DBHub's and <= 2x the floor.
`--with-secret` gives our server a secret to mask (a database password), as real
deployments have; the shipped-defaults run above has none, so masking costs nothing there.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from common import (
    BENCH_QUERY,
    BENCH_QUERY_PARAMS,
    DBHUB,
    fmt_ms,
    interleave,
    make_sqlite_db,
    markdown_table,
    npm_package_version,
    ours_and_dbhub,
    ratio,
    refused_write,
    report,
    toml_str,
    verdict,
    write_config,
)

BUDGET = 1.5
OURS, OURS_PARAMS, BASELINE = "mcp-fileserver run_query", "… with params", "dbhub execute_sql"
ALL_ROWS_QUERY = "SELECT id, category, name, price FROM items"
ALL_ROWS = 10_000
OURS_10K, BASELINE_10K = "mcp-fileserver run_query 10k rows", "dbhub execute_sql 10k rows"
BUDGET_10K_DBHUB, BUDGET_10K_FLOOR = 1.2, 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument(
        "--with-secret",
        action="store_true",
        help="also configure a PostgreSQL database (never contacted) whose password is a "
        "secret, as a real deployment has: every result is then scanned for it and masked",
    )
    args = parser.parse_args()
    secret_db, secret_env = "", None
    if args.with_secret:
        secret_db = 'url = "postgresql://bench:${BENCH_DB_PASSWORD}@127.0.0.1:1/dw"'
        secret_db = f"[databases.warehouse]\n{secret_db}\n"
        secret_env = {"BENCH_DB_PASSWORD": "bench-" + os.urandom(8).hex()}
    rounds, per_round, warm = (5, 20, 50) if args.quick else (40, 50, 300)

    with tempfile.TemporaryDirectory(prefix="bench-sql-") as tmp:
        base = Path(tmp)
        db = make_sqlite_db(base / "bench.db")
        ours_config = write_config(
            base / "ours.toml",
            f"""
            [databases.bench]
            url = {toml_str("sqlite:///" + str(db))}
            max_rows = {ALL_ROWS}
            [audit]
            log_dir = {toml_str(base / "audit")}
            [rate_limit]
            enabled = false
            """.replace("            ", "")
            + secret_db,
        )
        dbhub_config = write_config(
            base / "dbhub.toml",
            f"""
            [[sources]]
            id = "bench"
            dsn = {toml_str("sqlite://" + str(db))}

            [[tools]]
            name = "execute_sql"
            source = "bench"
            readonly = true
            """.replace("            ", ""),
        )
        ours, dbhub = ours_and_dbhub(ours_config, dbhub_config, base, secret_env)
        with ours, dbhub:
            ours.initialize()
            dbhub.initialize()
            has_query = any(t["name"] == "run_query" for t in ours.list_tools())
            if not has_query:
                body = "`run_query` is not served by this build: nothing to compare."
                report(_title(), _command(), body, {"run_query_available": False})
                return
            plain = {"database": "bench", "sql": BENCH_QUERY}
            with_params = {"database": "bench", "sql": BENCH_QUERY_PARAMS, "params": [7]}
            calls = {
                OURS: lambda: ours.call_tool("run_query", plain),
                OURS_PARAMS: lambda: ours.call_tool("run_query", with_params),
                BASELINE: lambda: dbhub.call_tool("execute_sql", {"sql": BENCH_QUERY}),
            }
            for name, call in calls.items():
                _check_twenty_rows(name, call())
                for _ in range(warm):
                    call()
            lat = interleave(calls, rounds=rounds, per_round=per_round)
            refused_write(ours, dbhub)
            all_rows = {"database": "bench", "sql": ALL_ROWS_QUERY}
            big_calls = {
                OURS_10K: lambda: ours.call_tool("run_query", all_rows),
                BASELINE_10K: lambda: dbhub.call_tool("execute_sql", {"sql": ALL_ROWS_QUERY}),
            }
            for name, call in big_calls.items():
                _check_all_rows(name, call())
                for _ in range(warm // 30 + 3):
                    call()
            big_rounds, big_per_round = (3, 3) if args.quick else (10, 6)
            big = interleave(big_calls, rounds=big_rounds, per_round=big_per_round)
            floor_ms = _floor_ms(db, samples=big_rounds * big_per_round)

    base_p50 = lat[BASELINE].p50_ms
    rows = [
        [
            name,
            len(s.samples),
            fmt_ms(s.p50_ms),
            fmt_ms(s.p99_ms),
            ratio(s.p50_ms, base_p50),
            ratio(s.p99_ms, lat[BASELINE].p99_ms),
        ]
        for name, s in lat.items()
    ]
    body = "\n".join(
        [
            f"20-row indexed SELECT: `{BENCH_QUERY}` on a 10,000-row table "
            f"({rounds * per_round} timed calls each, interleaved, after {warm} warm-up calls).",
            "",
            markdown_table(["server", "n", "p50 ms", "p99 ms", "p50 ratio", "p99 ratio"], rows),
            "",
            f"Budget p50 <= {BUDGET}x DBHub: {verdict(lat[OURS].p50_ms, base_p50, BUDGET)}.",
            "",
            f"{ALL_ROWS:,}-row SELECT: `{ALL_ROWS_QUERY}` ({big_rounds * big_per_round} timed "
            "calls each, interleaved); floor = raw sqlite3 fetchall + json.dumps, in-process."
            + (" Ours has a secret configured (--with-secret)." if args.with_secret else ""),
            "",
            markdown_table(
                ["what", "p50 ms", "p99 ms", "vs DBHub", "vs floor"],
                [
                    [
                        name,
                        fmt_ms(s.p50_ms),
                        fmt_ms(s.p99_ms),
                        ratio(s.p50_ms, big[BASELINE_10K].p50_ms),
                        ratio(s.p50_ms, floor_ms),
                    ]
                    for name, s in big.items()
                ]
                + [["raw sqlite3 + json.dumps (floor)", fmt_ms(floor_ms), "", "", "1.00x"]],
            ),
            "",
            f"Budget p50 <= {BUDGET_10K_DBHUB}x DBHub: "
            f"{verdict(big[OURS_10K].p50_ms, big[BASELINE_10K].p50_ms, BUDGET_10K_DBHUB)}; "
            f"<= {BUDGET_10K_FLOOR}x the floor: "
            f"{verdict(big[OURS_10K].p50_ms, floor_ms, BUDGET_10K_FLOOR)}.",
        ]
    )
    data = {
        "run_query_available": True,
        "with_secret": args.with_secret,
        "latency_ms": {
            name: {"n": len(s.samples), "p50": s.p50_ms, "p99": s.p99_ms, "mean": s.mean_ms}
            for name, s in lat.items()
        },
        "all_rows_ms": {
            **{name: {"p50": s.p50_ms, "p99": s.p99_ms} for name, s in big.items()},
            "floor_p50": floor_ms,
        },
    }
    report(_title(), _command(), body, data)


def _title() -> str:
    return f"Issue 3: run_query vs {DBHUB} {npm_package_version(DBHUB)} (SQLite, readonly)"


def _command() -> str:
    return "make bench-sql  # .venv/bin/python bench/bench_sql.py"


def _check_twenty_rows(name: str, result: dict) -> None:
    """Each server must really return the 20 rows, or the comparison means nothing."""
    text = json.dumps(result)
    found = sum(f'item-{i}\\"' in text or f'"item-{i}"' in text for i in range(7, 10_000, 500))
    if found != 20:
        raise SystemExit(f"{name}: expected the 20 rows of category 7, found {found}: {text[:400]}")


def _check_all_rows(name: str, result: dict) -> None:
    text = json.dumps(result)
    if f"item-{ALL_ROWS - 1}" not in text or "item-0" not in text:
        raise SystemExit(f"{name}: the {ALL_ROWS:,} rows are not all in the answer")


def _floor_ms(db: Path, *, samples: int) -> float:
    """Raw sqlite3 + json: what any server must at least spend on these rows."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        conn = sqlite3.connect(db)
        rows = conn.execute(ALL_ROWS_QUERY).fetchall()
        json.dumps(rows)
        conn.close()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


if __name__ == "__main__":
    main()
