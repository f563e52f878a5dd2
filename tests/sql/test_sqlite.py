"""SQLite over the real protocol: every attack refused and the database folder unchanged,
with the guard on and with it off (layer 2 alone); ordinary reads work; limits hold."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from tests.sql.attacks import SQLITE_ATTACKS, SQLITE_CONTROLS
from tests.sql.conftest import call, error_text, folder_snapshot, sql_client, sqlite_settings

GUARD = pytest.mark.parametrize("guard", [True, False], ids=["all-layers", "engine-only"])


def plant_canary(tmp_path: Path) -> tuple[Path, str]:
    token = "CANARY-" + secrets.token_hex(8)
    canary = tmp_path / "outside" / "canary.txt"
    canary.parent.mkdir()
    canary.write_text(token)
    return canary, token


@GUARD
async def test_every_attack_is_refused_and_changes_nothing(tmp_path, guard):
    """One server per layer setting, every attack in turn, each followed by the checks.

    (One loop rather than one test per attack: building a server per attack cost most of
    the suite's time. Failures name every attack that got through.)
    """
    setup = sqlite_settings(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    canary, token = plant_canary(tmp_path)
    before = folder_snapshot(setup.folder)
    failures: list[str] = []
    async with sql_client(setup.settings, guard=guard) as client:
        for attack in SQLITE_ATTACKS:
            sql = attack.render(str(out), str(canary))
            result = await call(client, "run_query", database="shop", sql=sql)
            plan = await call(client, "explain_query", database="shop", sql=sql)
            texts = [error_text(result), error_text(plan)]
            after = await call(
                client, "run_query", database="shop", sql="SELECT count(*) FROM books"
            )
            problems = [
                "run_query succeeded" * (not result.is_error),
                # EXPLAIN QUERY PLAN never runs the statement; without the guard SQLite may
                # plan a non-read (an empty plan for VACUUM): the snapshot shows it is harmless.
                "explain_query succeeded" * (guard and not plan.is_error),
                "canary leaked" * any(token in t for t in texts),
                "database path shown" * any(str(setup.db) in t for t in texts),
                "traceback shown" * any("Traceback" in t for t in texts),
                "server stopped answering"
                * (after.structured_content is None or after.structured_content["rows"] != [[3]]),
                "database folder changed" * (folder_snapshot(setup.folder) != before),
                "new files" * (sorted(p.name for p in setup.folder.iterdir()) != ["shop.db"]),
                "file written" * bool(list(out.iterdir())),
            ]
            failures += [f"{attack.id}: {p}" for p in problems if p]
    assert not failures, "\n".join(failures)


def test_the_attack_list_covers_the_issue():
    ids = {a.id for a in SQLITE_ATTACKS}
    for needed in (
        "drop",
        "delete",
        "insert",
        "update",
        "replace",
        "cte-delete",
        "returning-delete",
        "create-table",
        "create-temp-table",
        "vacuum",
        "vacuum-into",
        "attach",
        "attach-then-create",
        "multi",
        "comment-block",
        "case-drop",
        "pragma-writable-schema",
        "pragma-query-only",
        "pragma-journal-wal",
        "pragma-user-version",
        "analyze",
        "reindex",
        "begin",
        "savepoint",
        "load-extension",
        "readfile",
        "writefile",
    ):
        assert needed in ids


@pytest.mark.parametrize(("sql", "params", "expected"), SQLITE_CONTROLS)
async def test_ordinary_reads_work(sqlite_setup, sql, params, expected):
    before = folder_snapshot(sqlite_setup.folder)
    async with sql_client(sqlite_setup.settings) as client:
        args = {"database": "shop", "sql": sql}
        if params is not None:
            args["params"] = params
        result = await call(client, "run_query", **args)
        assert not result.is_error, error_text(result)
        data = result.structured_content
        if expected is not None:
            assert data["rows"] == expected
        assert data["row_count"] == len(data["rows"])
        assert data["truncated"] is False
        plan = await call(client, "explain_query", **args)
        assert not plan.is_error, error_text(plan)
    assert folder_snapshot(sqlite_setup.folder) == before


@GUARD
async def test_row_limit_stops_a_huge_result(sqlite_setup, guard):
    async with sql_client(sqlite_setup.settings, guard=guard) as client:
        data = (
            await call(client, "run_query", database="shop", sql="SELECT * FROM big")
        ).structured_content
        assert data["row_count"] == 100
        assert data["truncated"] is True
        assert data["truncated_reason"] == "max_rows"
        data = (
            await call(client, "run_query", database="shop", sql="SELECT n FROM big", max_rows=5)
        ).structured_content
        assert [r[0] for r in data["rows"]] == [1, 2, 3, 4, 5]
        assert data["truncated"] is True
        data = (
            await call(
                client, "run_query", database="shop", sql="SELECT n FROM big", max_rows=10**6
            )
        ).structured_content
        assert data["row_count"] == 100  # the server's cap wins


async def test_exact_row_count_is_not_truncated(sqlite_setup):
    async with sql_client(sqlite_setup.settings) as client:
        sql = "SELECT n FROM big WHERE n <= 100"
        data = (await call(client, "run_query", database="shop", sql=sql)).structured_content
        assert data["row_count"] == 100
        assert data["truncated"] is False


@GUARD
async def test_byte_limit_truncates(sqlite_setup, guard):
    async with sql_client(sqlite_setup.settings, guard=guard) as client:
        result = await call(
            client, "run_query", database="shop", sql="SELECT zeroblob(2000) FROM big"
        )
        data = result.structured_content
        assert data["truncated_reason"] == "max_result_bytes"
        assert 0 < data["row_count"] < 100
        assert len(json.dumps(data["rows"], separators=(",", ":"))) <= 65536


@GUARD
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT zeroblob(10000000)",
        "SELECT printf('%.*c', 5000000, 'x')",
    ],
    ids=["blob-10MB", "text-5MB"],
)
async def test_a_huge_single_value_is_cut_by_the_byte_limit(sqlite_setup, guard, sql):
    async with sql_client(sqlite_setup.settings, guard=guard) as client:
        data = (await call(client, "run_query", database="shop", sql=sql)).structured_content
        assert data["rows"] == []
        assert data["truncated_reason"] == "max_result_bytes"


@GUARD
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT randomblob(2000000000)",
        "SELECT zeroblob(2000000000)",
        "SELECT length(zeroblob(2000000000))",
        "SELECT printf('%.*c', 2000000000, 'x')",
        "SELECT length(replace(printf('%.*c', 100000000, 'x'), 'x', 'xxxxxxxxxxxxxxxxxxxxxx'))",
    ],
    ids=["randomblob", "zeroblob", "zeroblob-length", "printf", "replace-growth"],
)
async def test_two_gigabyte_values_are_refused_at_once(sqlite_setup, guard, sql):
    async with sql_client(sqlite_setup.settings, guard=guard) as client:
        result = await call(client, "run_query", database="shop", sql=sql)
        assert result.is_error
        assert "too" in error_text(result).lower()
        ok = await call(client, "run_query", database="shop", sql="SELECT 1")
        assert ok.structured_content["rows"] == [[1]]


@GUARD
@pytest.mark.parametrize(
    "sql",
    [
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        "SELECT count(*) FROM big a, big b, big c",
        "SELECT max(a.h || b.h) FROM big a CROSS JOIN big b",
    ],
    ids=["endless-recursive-cte", "cross-join-3", "cross-join-2"],
)
async def test_runaway_query_is_cut_off_and_the_next_call_answers(sqlite_setup, guard, sql):
    async with sql_client(sqlite_setup.settings, guard=guard) as client:
        result = await call(client, "run_query", database="shop", sql=sql)
        assert result.is_error
        assert "time limit" in error_text(result)
        ok = await call(client, "run_query", database="shop", sql="SELECT count(*) FROM authors")
        assert ok.structured_content["rows"] == [[3]]


async def test_endless_recursive_rows_stop_at_the_row_limit(sqlite_setup):
    async with sql_client(sqlite_setup.settings) as client:
        sql = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r"
        data = (await call(client, "run_query", database="shop", sql=sql)).structured_content
        assert data["row_count"] == 100
        assert data["truncated_reason"] == "max_rows"
