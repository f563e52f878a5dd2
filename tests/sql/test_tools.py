"""The SQL tools' contract: names, annotations, schemas, listings, errors, JSON-safe
values, lazy and recovering connections, and the real server over stdio."""

from __future__ import annotations

import json
import os
import sqlite3

import anyio
from fastmcp import Client

from tests.conftest import make_settings, stdio_transport, wal_database
from tests.sql.conftest import call, error_text, folder_snapshot, sql_client, sqlite_settings
from tests.sql.pg_cluster import _free_port

TOOLS = {"list_databases", "list_tables", "describe_table", "run_query", "explain_query"}


async def test_tools_are_read_only_typed_and_structured(sqlite_setup):
    async with sql_client(sqlite_setup.settings) as client:
        tools = {t.name: t for t in await client.list_tools()}
    assert tools.keys() >= TOOLS
    for name in TOOLS:
        tool = tools[name]
        assert tool.annotations.read_only_hint is True, name
        assert tool.annotations.open_world_hint is False, name
        assert tool.output_schema and tool.output_schema.get("type") == "object", name
        assert tool.description, name
    run_query = tools["run_query"].input_schema
    assert set(run_query["properties"]) == {"database", "sql", "params", "max_rows"}
    assert set(run_query["required"]) == {"database", "sql"}
    assert {"row_count", "truncated", "elapsed_ms", "rows", "columns"} <= set(
        tools["run_query"].output_schema["properties"]
    )


async def test_list_databases_shows_no_url_path_or_password(tmp_path, sqlite_setup):
    secret = "pw-" + os.urandom(6).hex()
    config = tmp_path / "both.toml"
    config.write_text(
        sqlite_setup.config.read_text()
        + f"""
[databases.warehouse]
url = "postgresql://analyst:${{WAREHOUSE_PW}}@127.0.0.1:{_free_port()}/dw"
description = "down on purpose"
""",
        encoding="utf-8",
    )
    settings = make_settings(config=config, log_dir=tmp_path / "logs", env={"WAREHOUSE_PW": secret})
    async with sql_client(settings) as client:
        listing = await call(client, "list_databases")
        assert listing.structured_content == {
            "databases": [
                {"name": "shop", "engine": "sqlite", "description": "test shop"},
                {"name": "warehouse", "engine": "postgresql", "description": "down on purpose"},
            ]
        }
        down = await call(client, "run_query", database="warehouse", sql="SELECT 1")
        assert down.is_error and "unavailable" in error_text(down)
        # The other database keeps working while one is down.
        ok = await call(client, "run_query", database="shop", sql="SELECT count(*) FROM authors")
        assert ok.structured_content["rows"] == [[3]]
        texts = json.dumps(listing.structured_content) + error_text(down)
    for hidden in (secret, str(sqlite_setup.db), "analyst", "postgresql://", "sqlite:"):
        assert hidden not in texts


async def test_unknown_database_is_a_clear_error(sqlite_setup):
    async with sql_client(sqlite_setup.settings) as client:
        for tool, extra in (
            ("list_tables", {}),
            ("describe_table", {"table": "books"}),
            ("run_query", {"sql": "SELECT 1"}),
            ("explain_query", {"sql": "SELECT 1"}),
        ):
            result = await call(client, tool, database="nope", **extra)
            assert result.is_error
            assert "unknown database 'nope'" in error_text(result)
            assert "list_databases" in error_text(result)


async def test_list_and_describe_sqlite(sqlite_setup):
    async with sql_client(sqlite_setup.settings) as client:
        tables = (await call(client, "list_tables", database="shop")).structured_content
        assert tables["tables"] == [
            {"schema_name": None, "name": "authors", "kind": "table"},
            {"schema_name": None, "name": "big", "kind": "table"},
            {"schema_name": None, "name": "book_titles", "kind": "view"},
            {"schema_name": None, "name": "books", "kind": "table"},
        ]
        books = (
            await call(client, "describe_table", database="shop", table="books")
        ).structured_content
        assert books["primary_key"] == ["id"]
        assert books["columns"][0] == {
            "name": "id",
            "type": "INTEGER",
            "nullable": False,
            "default": None,
            "primary_key": True,
        }
        assert books["foreign_keys"] == [
            {
                "columns": ["author_id"],
                "references_schema": None,
                "references_table": "authors",
                "references_columns": ["id"],
            }
        ]
        assert books["indexes"] == [
            {"name": "books_author", "columns": ["author_id"], "unique": False}
        ]
        authors = (
            await call(client, "describe_table", database="shop", table="authors")
        ).structured_content
        country = next(c for c in authors["columns"] if c["name"] == "country")
        assert country["default"] == "'unknown'" and country["nullable"] is False
        assert any(i["unique"] and i["columns"] == ["name"] for i in authors["indexes"])
        view = (
            await call(client, "describe_table", database="shop", table="book_titles")
        ).structured_content
        assert view["kind"] == "view" and [c["name"] for c in view["columns"]] == ["title", "name"]
        for missing in ("nope", "sqlite_schema", 'books"; DROP TABLE books; --'):
            result = await call(client, "describe_table", database="shop", table=missing)
            assert result.is_error and "not found or not allowed" in error_text(result)


async def test_sqlite_values_are_json_safe(sqlite_setup):
    async with sql_client(sqlite_setup.settings) as client:
        sql = "SELECT x'00ff10', 1.5, 9223372036854775807, NULL, 'é', cover FROM books WHERE id = 1"
        data = (await call(client, "run_query", database="shop", sql=sql)).structured_content
    assert data["rows"] == [["AP8Q", 1.5, 9223372036854775807, None, "é", "iVBORw=="]]
    assert data["columns"][1]["name"] == "1.5"


async def test_bad_arguments_are_refused_clearly(sqlite_setup):
    async with sql_client(sqlite_setup.settings) as client:
        cases = [
            {"sql": "SELECT ?, ?", "params": [1]},
            {"sql": "SELECT :a", "params": {"b": 1}},
            {"sql": "SELECT 1", "max_rows": 0},
            {"sql": "SELECT 1", "params": [[1, 2]]},
            {"sql": "x" * 100_001},
            {"sql": "SELECT 1", "unexpected": True},
            {"sql": "SELECT nosuchcolumn FROM books"},
        ]
        for arguments in cases:
            result = await call(client, "run_query", database="shop", **arguments)
            assert result.is_error, arguments
            text = error_text(result)
            assert text and "Traceback" not in text and str(sqlite_setup.db) not in text


async def test_a_missing_sqlite_file_is_unavailable_then_recovers(sqlite_setup):
    async with sql_client(sqlite_setup.settings) as client:
        moved = sqlite_setup.db.with_suffix(".moved")
        sqlite_setup.db.rename(moved)
        result = await call(client, "list_tables", database="shop")
        assert result.is_error and "unavailable" in error_text(result)
        assert str(sqlite_setup.folder) not in error_text(result)
        moved.rename(sqlite_setup.db)
        again = await call(client, "run_query", database="shop", sql="SELECT count(*) FROM books")
        assert again.structured_content["rows"] == [[3]]


async def test_explain_never_executes(sqlite_setup):
    async with sql_client(sqlite_setup.settings) as client:
        plan = await call(
            client,
            "explain_query",
            database="shop",
            sql="SELECT * FROM books WHERE author_id = ?",
            params=[1],
        )
    assert "books_author" in plan.structured_content["plan"]


async def test_stdio_end_to_end(sqlite_setup, tmp_path, sandbox="on"):
    """The real server process, as a client starts it: a read works, a write is refused,
    and the database folder is unchanged afterwards (with the kernel sandbox too)."""
    config = sqlite_setup.config  # monitor and rate limits off: see NO_LOCKOUT
    before = folder_snapshot(sqlite_setup.folder)
    env = {"MCP_FILESERVER_SANDBOX": sandbox}
    if os.geteuid() == 0:
        env["MCP_FILESERVER_ALLOW_ROOT"] = "1"
    transport = stdio_transport(
        "--config", str(config), "--log-dir", str(tmp_path / "logs"), env=env, cwd=tmp_path
    )
    async with Client(transport) as client:
        with anyio.fail_after(60):
            ok = await call(
                client,
                "run_query",
                database="shop",
                sql="SELECT name FROM authors WHERE country = ?",
                params=["Japan"],
            )
            assert ok.structured_content["rows"] == [["Haruki Murakami"]], error_text(ok)
            for sql in ("DELETE FROM books", "VACUUM INTO 'x.db'", "SELECT 1; DROP TABLE books"):
                refused = await call(client, "run_query", database="shop", sql=sql)
                assert refused.is_error and "query refused" in error_text(refused)
    assert folder_snapshot(sqlite_setup.folder) == before
    assert not (tmp_path / "x.db").exists()


async def test_a_wal_database_is_read_without_creating_files(tmp_path):
    folder = tmp_path / "wal"
    folder.mkdir()
    db = wal_database(folder / "w.db")
    assert sorted(p.name for p in folder.iterdir()) == ["w.db"]
    settings = make_settings(db=[f"w=sqlite:///{db}"], log_dir=tmp_path / "logs")
    async with sql_client(settings) as client:
        first = await call(client, "run_query", database="w", sql="SELECT x FROM t")
        assert first.structured_content["rows"] == [[1]]
        assert sorted(p.name for p in folder.iterdir()) == ["w.db"]
        # A writer opens the database: from the next call on, its WAL is read too.
        writer = sqlite3.connect(db)
        writer.execute("INSERT INTO t VALUES (2)")
        writer.commit()
        second = await call(client, "run_query", database="w", sql="SELECT x FROM t ORDER BY x")
        assert second.structured_content["rows"] == [[1], [2]]
        writer.close()


async def test_a_runaway_query_does_not_block_another_database(tmp_path):
    sqlite_setup = sqlite_settings(tmp_path, timeout_s=3)  # a wide margin for busy machines
    other = tmp_path / "other.db"
    other.write_bytes(sqlite_setup.db.read_bytes())
    config = tmp_path / "two.toml"
    config.write_text(
        sqlite_setup.config.read_text() + f'\n[databases.other]\nurl = "sqlite:///{other}"\n',
        encoding="utf-8",
    )
    settings = make_settings(config=config, log_dir=tmp_path / "logs")
    finished: list[str] = []
    async with sql_client(settings) as client:

        async def runaway() -> None:
            sql = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
            sql += "SELECT count(*) FROM r"
            result = await call(client, "run_query", database="shop", sql=sql)
            assert result.is_error and "time limit" in error_text(result)
            finished.append("runaway")

        async def quick() -> None:
            await anyio.sleep(0.2)  # let the runaway start first
            result = await call(client, "run_query", database="other", sql="SELECT 1")
            assert result.structured_content["rows"] == [[1]]
            finished.append("quick")

        async with anyio.create_task_group() as group:
            group.start_soon(runaway)
            group.start_soon(quick)
    assert finished == ["quick", "runaway"]


async def test_a_secret_in_the_rows_is_masked_in_text_and_structured_content(tmp_path):
    """The audit middleware masks results with one scan of their JSON, not a walk of
    every value: a secret stored in the database must still be masked in both parts."""
    secret = "pw-" + os.urandom(6).hex()
    db = tmp_path / "notes.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    bodies = [f"note {n}" for n in range(500)] + [secret, f'key="{secret}";', "plain"]
    conn.executemany("INSERT INTO notes (body) VALUES (?)", [(b,) for b in bodies])
    conn.commit()
    conn.close()
    config = tmp_path / "mcp.toml"
    config.write_text(
        f"""
[databases.notes]
url = "sqlite:///{db}"
max_rows = 1000
[databases.warehouse]
url = "postgresql://analyst:${{WAREHOUSE_PW}}@127.0.0.1:{_free_port()}/dw"
""",
        encoding="utf-8",
    )
    settings = make_settings(config=config, log_dir=tmp_path / "logs", env={"WAREHOUSE_PW": secret})
    async with sql_client(settings) as client:
        result = await call(client, "run_query", database="notes", sql="SELECT body FROM notes")
    assert not result.is_error
    text = error_text(result)
    rows = result.structured_content["rows"]
    assert len(rows) == len(bodies) and rows[-3:] == [["***"], ['key="***";'], ["plain"]]
    assert '["***"],["key=\\"***\\";"],["plain"]' in text
    assert secret not in text and secret not in json.dumps(result.structured_content)
