"""Issue 3: the cost of SQL validation (parse + read-only checks), timed directly.

Calls `mcp_fileserver.sql.guard.check_read_only(sql, dialect)`, the guard's entry point,
in-process. The guard caches verdicts by SQL text, so the "cold" figures use a different
text on every call (a changing numeric literal): each one is parsed and checked for real.
The "cached" figures repeat one text. Budget: under 1 ms p50 for typical queries.

Floor: the parser alone on the same texts, in the same run (sqlglot's parse in the
dialect for SQLite and MySQL/MariaDB, pglast's for PostgreSQL): what validation costs
beyond parsing once is the guard's own work (MySQL: its lexer, the token and tree walks).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable

import sqlglot
from common import markdown_table, percentile, report

from mcp_fileserver.errors import Refusal
from mcp_fileserver.sql.guard import Dialect, check_read_only

BUDGET_MS = 1.0

TYPICAL = {
    "indexed lookup": "SELECT id, name, price FROM items WHERE category = {n} ORDER BY id",
    "join + aggregate": (
        "SELECT c.name, count(*) AS n, avg(i.price) AS avg_price FROM items AS i "
        "JOIN categories AS c ON c.id = i.category WHERE i.price > {n} "
        "GROUP BY c.name ORDER BY n DESC LIMIT 10"
    ),
    "CTE": (
        "WITH recent AS (SELECT customer_id, amount FROM orders "
        "WHERE created_at > '2024-01-01' AND amount > {n}) "
        "SELECT customer_id, sum(amount) AS total FROM recent "
        "GROUP BY customer_id HAVING sum(amount) > 100"
    ),
    "IN subquery": (
        "SELECT id, email FROM users WHERE id IN "
        "(SELECT user_id FROM sessions WHERE last_seen > {n}) LIMIT 50"
    ),
    "window function": (
        "SELECT id, price, rank() OVER (PARTITION BY category ORDER BY price DESC) AS r "
        "FROM items WHERE category < {n}"
    ),
}
REFUSED = {"refused DELETE": "DELETE FROM items WHERE id = {n}"}


def _time(
    sql_for: object, dialect: Dialect, n: int, *, expect_refusal: bool
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (this thread) seconds per call.

    CPU time leaves out the time this process waited for a core, which on a busy shared
    machine can dwarf a sub-millisecond function; both are reported.
    """
    wall, cpu = [], []
    clock, cpu_clock = time.perf_counter, time.thread_time
    for i in range(n):
        sql = sql_for(i)  # type: ignore[operator]
        start, cpu_start = clock(), cpu_clock()
        try:
            check_read_only(sql, dialect)
            refused = False
        except Refusal:
            refused = True
        cpu.append(cpu_clock() - cpu_start)
        wall.append(clock() - start)
        if refused != expect_refusal:
            raise SystemExit(f"guard verdict changed: {sql!r} refused={refused}")
    return wall, cpu


def _parser(dialect: Dialect) -> Callable[[str], object]:
    """The bare parse of one text: the floor under the guard."""
    if dialect is Dialect.POSTGRESQL:
        from pglast import parser as pg_parser

        return pg_parser.parse_sql_json
    return lambda sql: sqlglot.parse(sql, read=dialect.value)


def _time_floor(sql_for: object, dialect: Dialect, n: int) -> list[float]:
    parse = _parser(dialect)
    wall = []
    clock = time.perf_counter
    for i in range(n):
        sql = sql_for(i)  # type: ignore[operator]
        start = clock()
        parse(sql)
        wall.append(clock() - start)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args()
    n = 200 if args.quick else 2000

    rows = []
    data: dict[str, dict[str, dict[str, float]]] = {}
    worst_typical = worst_cpu = 0.0
    # Warm up every code path (first parse of a dialect builds tables) before timing.
    for dialect in Dialect:
        for template in (*TYPICAL.values(), *REFUSED.values()):
            for i in range(20):
                with contextlib.suppress(Refusal):
                    check_read_only(template.format(n=10_000_000 + i), dialect)
    for dialect in Dialect:
        for label, template in (*TYPICAL.items(), *REFUSED.items()):
            refusal = label in REFUSED
            cold, cold_cpu = _time(
                lambda i, t=template: t.format(n=i), dialect, n, expect_refusal=refusal
            )
            floor = _time_floor(lambda i, t=template: t.format(n=i), dialect, n)
            fixed = template.format(n=42)
            cached, _ = _time(lambda _i, s=fixed: s, dialect, n, expect_refusal=refusal)
            p50, p99 = percentile(cold, 50) * 1000, percentile(cold, 99) * 1000
            cpu50 = percentile(cold_cpu, 50) * 1000
            c50 = percentile(cached, 50) * 1000
            f50 = percentile(floor, 50) * 1000
            if not refusal:
                worst_typical = max(worst_typical, p50)
                worst_cpu = max(worst_cpu, cpu50)
            rows.append(
                [
                    dialect.value,
                    label,
                    f"{p50:.3f}",
                    f"{p99:.3f}",
                    f"{cpu50:.3f}",
                    f"{c50:.4f}",
                    f"{f50:.3f}",
                    f"{p50 / f50:.2f}x",
                ]
            )
            data.setdefault(dialect.value, {})[label] = {
                "cold_p50_ms": p50,
                "cold_p99_ms": p99,
                "cold_cpu_p50_ms": cpu50,
                "cached_p50_ms": c50,
                "parse_floor_p50_ms": f50,
            }
    body = "\n".join(
        [
            f"{n} calls per query shape and dialect; cold = a different SQL text every call "
            "(really parsed), cached = the same text repeated (verdict cache hit), parse "
            "floor = the bare parser on the cold texts (sqlglot in the dialect; pglast).",
            "",
            markdown_table(
                [
                    "dialect",
                    "query",
                    "cold p50 ms",
                    "cold p99 ms",
                    "cold CPU p50 ms",
                    "cached p50 ms",
                    "parse floor p50 ms",
                    "cold / floor",
                ],
                rows,
            ),
            "",
            f"Worst typical cold p50: {worst_typical:.3f} ms wall, {worst_cpu:.3f} ms CPU. "
            f"Budget < {BUDGET_MS} ms: "
            f"{'within budget' if worst_typical < BUDGET_MS else 'OVER BUDGET'}.",
        ]
    )
    report(
        "Issue 3: SQL validation cost (guard, in-process)",
        "make bench-guard  # .venv/bin/python bench/bench_guard.py",
        body,
        {
            "per_query": data,
            "worst_typical_cold_p50_ms": worst_typical,
            "worst_typical_cold_cpu_p50_ms": worst_cpu,
        },
    )


if __name__ == "__main__":
    main()
