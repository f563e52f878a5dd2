"""Issue 17: `run_query` vs DBHub's `execute_sql` (readonly) on MariaDB, in the same run.

One throwaway MariaDB (tests/sql/mariadb_server.py: its own data folder and loopback port)
holds the bench's `items` table (10,000 rows, an index on `category`). Both servers log in
as the least-privilege reader account and are driven by the same raw JSON-RPC client
(bench/rpc.py), warmed up, then timed in interleaved blocks:

- 20 rows through the index (`BENCH_QUERY`), and
- all 10,000 rows (`SELECT id, category, name, price FROM items`),

beside two floors: a bare FastMCP server whose one tool runs the text through bare
PyMySQL on a held connection (bench/floor_mysql_server.py: what the framework and the
driver alone cost per call, timed over the same pipes, interleaved), and bare PyMySQL
(`fetchall`) plus `json.dumps` of the rows, timed in this process in the same run.
Budget: our p50 <= 1.2x DBHub's for both.
Our server runs with its shipped defaults (audit, monitoring, guard, every engine layer,
the account's grants checked) except rate limiting, which a benchmark exceeds by design.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pymysql
from common import (
    BENCH_QUERY,
    CATEGORIES,
    DBHUB,
    ITEMS,
    REPO,
    fmt_ms,
    interleave,
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
from rpc import Server, child_env

sys.path.insert(0, str(REPO))
from tests.sql.mariadb_server import MariaDB, start_server, stop_server

BUDGET = 1.2
ALL_ROWS_QUERY = "SELECT id, category, name, price FROM items"
OURS_20, DBHUB_20 = "mcp-fileserver run_query 20 rows", "dbhub execute_sql 20 rows"
OURS_10K, DBHUB_10K = "mcp-fileserver run_query 10k rows", "dbhub execute_sql 10k rows"
FLOOR_20 = "bare FastMCP + PyMySQL run_query 20 rows (framework floor)"
FLOOR_10K = "bare FastMCP + PyMySQL run_query 10k rows (framework floor)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args()
    rounds, per_round, warm = (5, 20, 50) if args.quick else (40, 50, 300)
    big_rounds, big_per_round = (3, 3) if args.quick else (10, 6)

    server = start_server()
    try:
        _load_items(server)
        version = _server_version(server)
        with tempfile.TemporaryDirectory(prefix="bench-mysql-") as tmp:
            lat, big, floor_20, floor_10k = _measure(
                server, Path(tmp), rounds, per_round, warm, big_rounds, big_per_round
            )
    finally:
        stop_server(server)

    def table(results: dict, baseline: str, framework: str, floor_ms: float) -> str:
        return markdown_table(
            ["what", "n", "p50 ms", "p99 ms", "vs DBHub", "vs framework floor", "vs floor"],
            [
                [
                    name,
                    len(s.samples),
                    fmt_ms(s.p50_ms),
                    fmt_ms(s.p99_ms),
                    ratio(s.p50_ms, results[baseline].p50_ms),
                    ratio(s.p50_ms, results[framework].p50_ms),
                    ratio(s.p50_ms, floor_ms),
                ]
                for name, s in results.items()
            ]
            + [
                [
                    "bare PyMySQL fetchall + json.dumps (floor)",
                    "",
                    fmt_ms(floor_ms),
                    "",
                    "",
                    "",
                    "1.00x",
                ]
            ],
        )

    body = "\n".join(
        [
            f"MariaDB {version} started by the script (loopback TCP), both "
            "servers logged in as the SELECT-only reader. The machine is shared with other "
            "sessions: compare the ratios, measured in the same run, not the milliseconds.",
            "",
            f"20-row indexed SELECT: `{BENCH_QUERY}` ({rounds * per_round} timed calls each, "
            f"interleaved, after {warm} warm-up calls).",
            "",
            table(lat, DBHUB_20, FLOOR_20, floor_20),
            "",
            f"Budget p50 <= {BUDGET}x DBHub: "
            f"{verdict(lat[OURS_20].p50_ms, lat[DBHUB_20].p50_ms, BUDGET)}; the framework "
            f"floor alone is {ratio(lat[FLOOR_20].p50_ms, lat[DBHUB_20].p50_ms)} DBHub, ours "
            f"{ratio(lat[OURS_20].p50_ms, lat[FLOOR_20].p50_ms)} that floor.",
            "",
            f"{ITEMS:,}-row SELECT: `{ALL_ROWS_QUERY}` ({big_rounds * big_per_round} timed calls "
            "each, interleaved).",
            "",
            table(big, DBHUB_10K, FLOOR_10K, floor_10k),
            "",
            f"Budget p50 <= {BUDGET}x DBHub: "
            f"{verdict(big[OURS_10K].p50_ms, big[DBHUB_10K].p50_ms, BUDGET)}; the framework "
            f"floor alone is {ratio(big[FLOOR_10K].p50_ms, big[DBHUB_10K].p50_ms)} DBHub, ours "
            f"{ratio(big[OURS_10K].p50_ms, big[FLOOR_10K].p50_ms)} that floor.",
        ]
    )
    data = {
        "latency_ms": {
            name: {"n": len(s.samples), "p50": s.p50_ms, "p99": s.p99_ms}
            for name, s in {**lat, **big}.items()
        },
        "floor_p50_ms": {"20_rows": floor_20, "10k_rows": floor_10k},
    }
    report(
        f"Issue 17: run_query vs {DBHUB} {npm_package_version(DBHUB)} (MariaDB, readonly)",
        "make bench-mysql  # .venv/bin/python bench/bench_mysql.py",
        body,
        data,
    )


def _measure(server: MariaDB, base: Path, rounds, per_round, warm, big_rounds, big_per_round):  # type: ignore[no-untyped-def]
    password = server.passwords["reader"]
    ours_config = write_config(
        base / "ours.toml",
        f"""
        [databases.bench]
        url = {toml_str(server.url("reader", "BENCH_MARIADB_PASSWORD"))}
        max_rows = {ITEMS}
        max_result_bytes = 4194304
        [audit]
        log_dir = {toml_str(base / "audit")}
        [rate_limit]
        enabled = false
        """.replace("        ", ""),
    )
    dbhub_config = write_config(
        base / "dbhub.toml",
        f"""
        [[sources]]
        id = "bench"
        dsn = {toml_str(f"mariadb://reader:{password}@127.0.0.1:{server.port}/shop")}

        [[tools]]
        name = "execute_sql"
        source = "bench"
        readonly = true
        max_rows = {ITEMS}
        """.replace("        ", ""),
    )
    ours, dbhub = ours_and_dbhub(
        ours_config, dbhub_config, base, {"BENCH_MARIADB_PASSWORD": password}
    )
    floor = Server(
        [sys.executable, str(Path(__file__).parent / "floor_mysql_server.py")],
        env=child_env(
            {
                "MYSQL_FLOOR_PORT": str(server.port),
                "MYSQL_FLOOR_USER": "reader",
                "MYSQL_FLOOR_PASSWORD": password,
                "MYSQL_FLOOR_DATABASE": "shop",
            }
        ),
        stderr_path=base / "stderr.log",
    )
    with ours, dbhub, floor:
        ours.initialize()
        dbhub.initialize()
        floor.initialize()
        twenty = {"database": "bench", "sql": BENCH_QUERY}
        everything = {"database": "bench", "sql": ALL_ROWS_QUERY}
        calls = {
            OURS_20: lambda: ours.call_tool("run_query", twenty),
            DBHUB_20: lambda: dbhub.call_tool("execute_sql", {"sql": BENCH_QUERY}),
            FLOOR_20: lambda: floor.call_tool("run_query", {"sql": BENCH_QUERY}),
        }
        big_calls = {
            OURS_10K: lambda: ours.call_tool("run_query", everything),
            DBHUB_10K: lambda: dbhub.call_tool("execute_sql", {"sql": ALL_ROWS_QUERY}),
            FLOOR_10K: lambda: floor.call_tool("run_query", {"sql": ALL_ROWS_QUERY}),
        }
        for name, call in calls.items():
            _check(name, call(), 20)
            for _ in range(warm):
                call()
        for name, call in big_calls.items():
            _check(name, call(), ITEMS)
            for _ in range(warm // 30 + 3):
                call()
        refused_write(ours, dbhub)
        lat = interleave(calls, rounds=rounds, per_round=per_round)
        big = interleave(big_calls, rounds=big_rounds, per_round=big_per_round)
    floor_20 = _floor_ms(server, BENCH_QUERY, samples=rounds * per_round)
    floor_10k = _floor_ms(server, ALL_ROWS_QUERY, samples=big_rounds * big_per_round)
    return lat, big, floor_20, floor_10k


def _load_items(server: MariaDB) -> None:
    with server.admin() as conn, conn.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE items (id INT PRIMARY KEY, category INT NOT NULL,"
            " name VARCHAR(40) NOT NULL, price DOUBLE NOT NULL, KEY items_category (category))"
        )
        cursor.executemany(
            "INSERT INTO items VALUES (%s, %s, %s, %s)",
            [(i, i % CATEGORIES, f"item-{i}", i * 0.25) for i in range(ITEMS)],
        )
        cursor.execute("EXPLAIN " + BENCH_QUERY)
        plan = json.dumps(cursor.fetchall(), default=str)
        assert "items_category" in plan, plan


def _server_version(server: MariaDB) -> str:
    with server.admin() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        return str(cursor.fetchone()[0]).split("-")[0]


def _check(name: str, result: dict, rows: int) -> None:
    """Each server must really return every row, or the comparison means nothing."""
    text = json.dumps(result)
    last = "item-9999" if rows == ITEMS else "item-9507"
    if "item-7" not in text or last not in text:
        raise SystemExit(f"{name}: the {rows} rows are not all in the answer: {text[:400]}")


def _floor_ms(server: MariaDB, sql: str, *, samples: int) -> float:
    """Bare PyMySQL + json on a held connection: what any server must at least spend."""
    conn = pymysql.connect(
        host="127.0.0.1",
        port=server.port,
        user="reader",
        password=server.passwords["reader"],
        database="shop",
        autocommit=True,
    )
    times = []
    try:
        for _ in range(samples + 5):
            started = time.perf_counter()
            with conn.cursor() as cursor:
                cursor.execute(sql)
                json.dumps(cursor.fetchall())
            times.append((time.perf_counter() - started) * 1000)
    finally:
        conn.close()
    return statistics.median(times[5:])


if __name__ == "__main__":
    main()
