"""Issue 13 §2: what the PostgreSQL side-effect layers cost per call, side by side.

Starts a throwaway PostgreSQL 15 (tests/sql/pg_cluster.py) and times, interleaved in one
run, a 20-row indexed SELECT whose text changes every call (so no verdict or parse cache
helps) through:

- floor: raw psycopg, `BEGIN READ ONLY`, the query, `ROLLBACK`;
- backend without the function policy and without the session reset;
- backend without the function policy (reset on: `DISCARD ALL` after every call);
- backend with every layer (guard, function policy, reset): what the server runs.

Run: `.venv/bin/python bench/bench_pg_layers.py [--calls 400]`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from common import markdown_table, percentile  # noqa: E402

from mcp_fileserver.config import DatabaseConfig  # noqa: E402
from mcp_fileserver.secrets import SecretStore  # noqa: E402
from mcp_fileserver.sql.postgres import PostgresDatabase  # noqa: E402
from tests.sql.pg_cluster import DBNAME, READER, start_cluster, stop_cluster  # noqa: E402

SQL = "SELECT n, h FROM big WHERE n BETWEEN {k} AND {k} + 19 ORDER BY n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    cluster = start_cluster()
    try:
        config = DatabaseConfig(
            name="pg",
            engine="postgresql",
            description="",
            max_rows=1000,
            max_result_bytes=1 << 20,
            timeout_s=10,
            host="127.0.0.1",
            port=cluster.port,
            user=READER,
            dbname=DBNAME,
            password=cluster.reader_password,
        )
        secrets = SecretStore({})
        bare = PostgresDatabase(config, secrets, enforce_function_policy=False)
        bare._reset_session = lambda conn: None  # type: ignore[method-assign]
        reset = PostgresDatabase(config, secrets, enforce_function_policy=False)
        full = PostgresDatabase(config, secrets)
        raw = psycopg.connect(
            host="127.0.0.1",
            port=cluster.port,
            user=READER,
            dbname=DBNAME,
            password=cluster.reader_password,
        )
        raw.read_only = True

        def floor(sql: str) -> None:
            with raw.transaction(force_rollback=True):
                raw.execute(sql).fetchall()  # type: ignore[arg-type]

        variants = {
            "floor: raw psycopg, READ ONLY txn": floor,
            "backend, no policy, no reset": lambda sql: bare.run_query(sql, None, 100),
            "backend, reset (DISCARD ALL)": lambda sql: reset.run_query(sql, None, 100),
            "backend, every layer": lambda sql: full.run_query(sql, None, 100),
        }
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for run in variants.values():  # warm up: connections, catalog, imports
            run(SQL.format(k=1))
        for i in range(args.calls):
            for name, run in variants.items():
                sql = SQL.format(k=1000 + i * 7 + len(samples[name]) % 3)
                started = time.perf_counter()
                run(sql)
                samples[name].append((time.perf_counter() - started) * 1000)
        base = percentile(samples["floor: raw psycopg, READ ONLY txn"], 50)
        rows = [
            [
                name,
                f"{percentile(s, 50):.3f}",
                f"{percentile(s, 99):.3f}",
                f"{percentile(s, 50) / base:.2f}x",
            ]
            for name, s in samples.items()
        ]
        print(markdown_table(["variant", "p50 ms", "p99 ms", "p50 vs floor"], rows))
        for db in (bare, reset, full):
            db.close()
        raw.close()
    finally:
        stop_cluster(cluster)


if __name__ == "__main__":
    main()
