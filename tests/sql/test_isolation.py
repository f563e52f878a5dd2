"""Each database's own slots, and cancellation over the MCP protocol.

Bounds are generous (the machine is shared): a prompt answer is one that does not wait
for the slow queries, whose time limit is several times larger."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio

from tests.conftest import in_memory_client, make_settings
from tests.sql.conftest import NO_LOCKOUT, build_sqlite, call, error_text, pg_settings
from tests.sql.pg_cluster import Cluster

ENDLESS = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) SELECT count(*) FROM c"


def two_databases(tmp: Path, *, timeout_s: float, slots: int) -> Any:
    files = tmp / "files"
    files.mkdir()
    (files / "notes.txt").write_text("hello from the file tools\n")
    shop = build_sqlite(tmp / "data" / "shop.db")
    other = build_sqlite(tmp / "data" / "other.db")
    config = tmp / "mcp.toml"
    config.write_text(
        f"""
[files]
allowed_dirs = ["{files}"]

[databases.shop]
url = "sqlite:///{shop}"
timeout_s = {timeout_s}
max_concurrent_queries = {slots}

[databases.other]
url = "sqlite:///{other}"
timeout_s = {timeout_s}
max_concurrent_queries = {slots}
{NO_LOCKOUT}""",
        encoding="utf-8",
    )
    return make_settings(config=config, log_dir=tmp / "logs"), files


def audit_records(log_dir: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in (log_dir / "audit.jsonl").read_text().splitlines()
        if line.strip()
    ]


async def test_a_saturated_database_stalls_neither_file_reads_nor_other_databases(tmp_path):
    timeout_s = 4.0
    settings, files = two_databases(tmp_path, timeout_s=timeout_s, slots=2)
    slow_times: list[float] = []
    slow_errors: list[str] = []
    async with in_memory_client(settings) as client:
        # Warm up both paths first: a first call pays one-time costs unrelated to slots.
        await call(client, "read_text_file", path=str(files / "notes.txt"))
        await call(client, "run_query", database="other", sql="SELECT 1")

        async def slow() -> None:
            started = time.monotonic()
            result = await call(client, "run_query", database="shop", sql=ENDLESS)
            slow_times.append(time.monotonic() - started)
            slow_errors.append(error_text(result))

        async with anyio.create_task_group() as group:
            for _ in range(40):
                group.start_soon(slow)
            await anyio.sleep(0.5)  # every slot of `shop` busy, 38 calls waiting
            started = time.monotonic()
            read = await call(client, "read_text_file", path=str(files / "notes.txt"))
            read_s = time.monotonic() - started
            started = time.monotonic()
            other = await call(
                client, "run_query", database="other", sql="SELECT count(*) FROM big"
            )
            other_s = time.monotonic() - started
    assert not read.is_error and "hello" in read.content[0].text
    assert other.structured_content["rows"] == [[20000]]
    assert read_s < 1.5, read_s
    assert other_s < 1.5, other_s
    # Waiting for a slot counts against each call's own time limit.
    assert max(slow_times) < timeout_s + 2.0, max(slow_times)
    assert all("time limit" in text for text in slow_errors), set(slow_errors)
    assert any("connections busy" in text for text in slow_errors)


async def cancel_after(client: Any, database: str, sql: str, delay: float) -> float:
    """Call run_query, cancel the request after `delay` s; return when it was cancelled."""
    with anyio.CancelScope() as scope:

        async def cancel_later() -> None:
            await anyio.sleep(delay)
            scope.cancel()

        async with anyio.create_task_group() as group:
            group.start_soon(cancel_later)
            await call(client, "run_query", database=database, sql=sql)
    assert scope.cancelled_caught
    return time.monotonic()


async def test_a_cancelled_sqlite_query_stops_frees_its_slot_and_is_audited(tmp_path):
    settings, _files = two_databases(tmp_path, timeout_s=30.0, slots=1)
    async with in_memory_client(settings) as client:
        started = time.monotonic()
        cancelled_at = await cancel_after(client, "shop", ENDLESS, 0.5)
        # One slot: this call can only run once the cancelled query let go of it.
        result = await call(client, "run_query", database="shop", sql="SELECT 42")
        freed_s = time.monotonic() - cancelled_at
    assert result.structured_content["rows"] == [[42]]
    assert freed_s < 1.0, freed_s
    record = next(r for r in audit_records(tmp_path / "logs") if r.get("outcome") == "cancelled")
    assert record["tool"] == "run_query"
    # Stopped within ~100 ms of the cancel (the record's clock starts at the call).
    assert record["duration_ms"] < (cancelled_at - started) * 1000 + 300, record


async def test_a_cancelled_postgres_query_stops_on_the_server(pg_cluster: Cluster, tmp_path):
    settings = pg_settings(pg_cluster, tmp_path, timeout_s=30.0)
    slow = "SELECT count(*) FROM generate_series(1, 10000000000::bigint)"
    async with in_memory_client(settings) as client:
        started = time.monotonic()
        cancelled_at = await cancel_after(client, "pg", slow, 0.8)
        result = await call(client, "run_query", database="pg", sql="SELECT 42")
        freed_s = time.monotonic() - cancelled_at
        with pg_cluster.admin() as admin:
            running = admin.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE usename = 'reader' AND query LIKE '%generate_series%' "
                "AND state = 'active'"
            ).fetchone()
    assert result.structured_content["rows"] == [[42]]
    assert running == (0,)
    assert freed_s < 1.5, freed_s
    record = next(r for r in audit_records(tmp_path / "logs") if r.get("outcome") == "cancelled")
    assert record["tool"] == "run_query"
    assert record["duration_ms"] < (cancelled_at - started) * 1000 + 300, record
