"""PostgreSQL over the real protocol, against a real PostgreSQL 15 started by the session:
every attack refused (or, where layer 2 alone lets a call through, provably harmless) and
the database unchanged, with the guard on and off; reads, limits, reconnects, `check`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import anyio
import pytest
from fastmcp import Client
from loguru import logger

from mcp_fileserver.errors import PolicyViolation
from mcp_fileserver.sql.check import database_warnings
from mcp_fileserver.sql.postgres import PostgresDatabase
from tests.conftest import make_settings, stdio_transport
from tests.sql.attacks import POSTGRES_ATTACKS, POSTGRES_CONTROLS
from tests.sql.conftest import call, error_text, pg_fingerprint, pg_settings, sql_client
from tests.sql.pg_cluster import Cluster, _free_port

GUARD = pytest.mark.parametrize("guard", [True, False], ids=["all-layers", "engine-only"])


@GUARD
async def test_every_attack_is_refused_and_changes_nothing(pg_cluster: Cluster, tmp_path, guard):
    settings = pg_settings(pg_cluster, tmp_path)
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)  # the server runs as `postgres`: give COPY TO a place it *could* write
    canary = tmp_path / "canary.txt"
    canary.write_text("PG-CANARY-7f3a")
    before = pg_fingerprint(pg_cluster)
    failures: list[str] = []
    async with sql_client(settings, guard=guard) as client:
        for attack in POSTGRES_ATTACKS:
            sql = attack.render(str(out), str(canary))
            result = await call(client, "run_query", database="pg", sql=sql)
            plan = await call(client, "explain_query", database="pg", sql=sql)
            texts = [error_text(result), error_text(plan), json.dumps(result.structured_content)]
            state = await call(
                client,
                "run_query",
                database="pg",
                sql="SELECT current_setting('transaction_read_only'), count(*) FROM books",
            )
            must_refuse = guard or attack.engine_refuses
            problems = [
                "run_query succeeded" * (must_refuse and not result.is_error),
                # Plain EXPLAIN plans without executing: without the guard, PostgreSQL
                # plans a write without running it (the fingerprint proves it).
                "explain_query succeeded" * (guard and not plan.is_error),
                "canary leaked" * any("PG-CANARY" in t for t in texts),
                "password shown" * any(pg_cluster.reader_password in t for t in texts),
                "traceback shown" * any("Traceback" in t for t in texts),
                "next call not read-only or failed"
                * (state.is_error or state.structured_content["rows"] != [["on", 3]]),
                "database changed" * (pg_fingerprint(pg_cluster) != before),
                "file written" * bool(list(out.iterdir())),
            ]
            failures += [f"{attack.id}: {p}" for p in problems if p]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(("sql", "params", "expected"), POSTGRES_CONTROLS)
async def test_ordinary_reads_work(pg_cluster, tmp_path, sql, params, expected):
    settings = pg_settings(pg_cluster, tmp_path)
    async with sql_client(settings) as client:
        args = {"database": "pg", "sql": sql}
        if params is not None:
            args["params"] = params
        result = await call(client, "run_query", **args)
        assert not result.is_error, error_text(result)
        data = result.structured_content
        if expected is not None:
            assert data["rows"] == expected
        assert data["truncated"] is False
        plan = await call(client, "explain_query", **args)
        assert not plan.is_error, error_text(plan)
        assert plan.structured_content["plan"]


async def test_values_are_json_safe(pg_cluster, tmp_path):
    settings = pg_settings(pg_cluster, tmp_path)
    async with sql_client(settings) as client:
        sql = (
            "SELECT price, published, cover, tags, meta, uid, updated_at, "
            "interval '1 day 2 hours', 'NaN'::float8, 12345678901234567890::numeric "
            "FROM books JOIN authors ON authors.id = books.author_id WHERE books.id = 1"
        )
        data = (await call(client, "run_query", database="pg", sql=sql)).structured_content
    assert data["rows"] == [
        [
            "10.99",
            "1958-06-17",
            "iVBORw==",
            ["classic", "africa"],
            {"pages": 209},
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "2026-01-01T00:00:00+00:00",
            "P1DT7200S",
            "NaN",
            "12345678901234567890",
        ]
    ]
    assert [c["type"] for c in data["columns"][:3]] == ["numeric", "date", "bytea"]


async def test_object_params_are_refused_with_a_clear_reason(pg_cluster, tmp_path):
    settings = pg_settings(pg_cluster, tmp_path)
    async with sql_client(settings) as client:
        result = await call(
            client, "run_query", database="pg", sql="SELECT $1::int", params={"a": 1}
        )
    assert result.is_error
    assert "positional" in error_text(result)


@GUARD
async def test_limits(pg_cluster, tmp_path, guard):
    settings = pg_settings(pg_cluster, tmp_path, timeout_s=30)  # busy CI machines
    async with sql_client(settings, guard=guard) as client:
        rows = await call(client, "run_query", database="pg", sql="SELECT * FROM big")
        assert rows.structured_content["row_count"] == 100
        assert rows.structured_content["truncated_reason"] == "max_rows"
        few = await call(client, "run_query", database="pg", sql="SELECT n FROM big", max_rows=3)
        assert few.structured_content["rows"] == [[1], [2], [3]]
        wide = await call(client, "run_query", database="pg", sql="SELECT repeat(h, 50) FROM big")
        assert wide.structured_content["truncated_reason"] == "max_result_bytes"
        assert 0 < wide.structured_content["row_count"] < 100
        huge = await call(client, "run_query", database="pg", sql="SELECT repeat('x', 5000000)")
        assert huge.structured_content["rows"] == []
        assert huge.structured_content["truncated_reason"] == "max_result_bytes"


@GUARD
@pytest.mark.parametrize(
    "sql",
    [
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        "SELECT count(*) FROM big a, big b",
    ],
    ids=["endless-recursive-cte", "cross-join"],
)
async def test_runaway_query_is_cut_off_and_the_next_call_answers(pg_cluster, tmp_path, guard, sql):
    settings = pg_settings(pg_cluster, tmp_path)
    async with sql_client(settings, guard=guard) as client:
        result = await call(client, "run_query", database="pg", sql=sql)
        assert result.is_error
        assert "time limit" in error_text(result)
        ok = await call(client, "run_query", database="pg", sql="SELECT count(*) FROM authors")
        assert ok.structured_content["rows"] == [[3]]


async def test_pg_sleep_past_the_timeout_is_cut_off_without_the_guard(pg_cluster, tmp_path):
    settings = pg_settings(pg_cluster, tmp_path)
    async with sql_client(settings, guard=False) as client:
        result = await call(client, "run_query", database="pg", sql="SELECT pg_sleep(30)")
        assert result.is_error
        assert "time limit" in error_text(result)
        ok = await call(client, "run_query", database="pg", sql="SELECT 1")
        assert ok.structured_content["rows"] == [[1]]


async def test_tools_describe_the_schema(pg_cluster, tmp_path):
    settings = pg_settings(pg_cluster, tmp_path)
    async with sql_client(settings) as client:
        tables = (await call(client, "list_tables", database="pg")).structured_content
        names = {(t["schema_name"], t["name"], t["kind"]) for t in tables["tables"]}
        assert ("public", "books", "table") in names
        assert ("public", "book_titles", "view") in names
        books = (
            await call(client, "describe_table", database="pg", table="public.books")
        ).structured_content
        assert books["primary_key"] == ["id"]
        assert books["foreign_keys"] == [
            {
                "columns": ["author_id"],
                "references_schema": "public",
                "references_table": "authors",
                "references_columns": ["id"],
            }
        ]
        assert {"name": "books_author", "columns": ["author_id"], "unique": False} in books[
            "indexes"
        ]
        price = next(c for c in books["columns"] if c["name"] == "price")
        assert price == {
            "name": "price",
            "type": "numeric(8,2)",
            "nullable": False,
            "default": None,
            "primary_key": False,
        }
        same = (
            await call(client, "describe_table", database="pg", table="books")
        ).structured_content
        assert same == books
        missing = await call(client, "describe_table", database="pg", table="pg_authid")
        assert missing.is_error


async def test_unreachable_database_fails_clearly_and_the_others_keep_working(pg_cluster, tmp_path):
    down_port = _free_port()
    settings = pg_settings(pg_cluster, tmp_path, port=down_port)
    async with sql_client(settings) as client:
        result = await call(client, "run_query", database="pg", sql="SELECT 1")
        assert result.is_error
        text = error_text(result)
        assert "unavailable" in text and "connection refused" in text
        assert str(down_port) not in text and "127.0.0.1" not in text
        assert pg_cluster.reader_password not in text


async def test_reconnects_after_the_connection_is_killed(pg_cluster, tmp_path):
    settings = pg_settings(pg_cluster, tmp_path)
    async with sql_client(settings) as client:
        first = await call(client, "run_query", database="pg", sql="SELECT pg_backend_pid()")
        pid = first.structured_content["rows"][0][0]
        with pg_cluster.admin() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        broken = await call(client, "run_query", database="pg", sql="SELECT 1")
        if broken.is_error:  # the first call after the kill may see the dead socket
            assert "unavailable" in error_text(broken)
        again = await call(client, "run_query", database="pg", sql="SELECT pg_backend_pid()")
        assert not again.is_error, error_text(again)
        assert again.structured_content["rows"][0][0] != pid


def run_check(config, env) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_fileserver", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "MCP_FILESERVER_SANDBOX": "off", **env},
    )


def test_check_cli_refuses_a_privileged_role_unless_allowed(pg_cluster, tmp_path):
    pg_settings(pg_cluster, tmp_path, role="writer")
    password = pg_cluster.writer_password
    result = run_check(tmp_path / "pg-writer.toml", {"PG_TEST_PASSWORD": password})
    assert result.returncode == 1, result.stderr
    assert password not in result.stdout + result.stderr
    assert "error: database 'pg' will be refused" in result.stderr
    assert "INSERT/UPDATE/DELETE/TRUNCATE on 4 table(s)" in result.stderr
    assert "Traceback" not in result.stderr
    pg_settings(pg_cluster, tmp_path, role="writer", extra="allow_privileged_role = true")
    allowed = run_check(tmp_path / "pg-writer.toml", {"PG_TEST_PASSWORD": password})
    assert allowed.returncode == 0, allowed.stderr
    assert "warning: database 'pg': allow_privileged_role = true" in allowed.stderr
    assert "INSERT/UPDATE/DELETE/TRUNCATE on 4 table(s)" in allowed.stderr
    assert "configuration OK" in allowed.stderr


def test_check_is_quiet_for_a_read_only_role(pg_cluster, tmp_path):
    assert database_warnings(pg_settings(pg_cluster, tmp_path)) == []


def test_check_warns_but_succeeds_when_the_database_is_down(pg_cluster, tmp_path):
    settings = pg_settings(pg_cluster, tmp_path, port=_free_port())
    (warning,) = database_warnings(settings)
    assert "unavailable (connection refused)" in warning and "not checked" in warning
    assert pg_cluster.reader_password not in warning


async def test_explain_plans_with_parameters_without_executing(pg_cluster, tmp_path):
    settings = pg_settings(pg_cluster, tmp_path)
    async with sql_client(settings) as client:
        plan = await call(
            client,
            "explain_query",
            database="pg",
            sql="SELECT * FROM books WHERE id = $1",
            params=[1],
        )
        assert not plan.is_error, error_text(plan)
        assert "books" in plan.structured_content["plan"]
        # A slow query is planned, not run: it answers well inside the time limit.
        slow = await call(
            client, "explain_query", database="pg", sql="SELECT count(*) FROM big a, big b"
        )
        assert not slow.is_error and "Nested Loop" in slow.structured_content["plan"]


async def test_stdio_end_to_end_with_the_sandbox(pg_cluster, tmp_path):
    """The real server process (kernel sandbox on, as users run it) reaches PostgreSQL."""
    pg_settings(pg_cluster, tmp_path)
    env = {"MCP_FILESERVER_SANDBOX": "on", "PG_TEST_PASSWORD": pg_cluster.reader_password}
    if os.geteuid() == 0:
        env["MCP_FILESERVER_ALLOW_ROOT"] = "1"
    transport = stdio_transport(
        "--config",
        str(tmp_path / "pg-reader.toml"),
        "--log-dir",
        str(tmp_path / "logs"),
        env=env,
        cwd=tmp_path,
    )
    before = pg_fingerprint(pg_cluster)
    async with Client(transport) as client:
        with anyio.fail_after(60):
            ok = await call(
                client,
                "run_query",
                database="pg",
                sql="SELECT title FROM books WHERE id = $1",
                params=[2],
            )
            assert ok.structured_content["rows"] == [["A Wizard of Earthsea"]], error_text(ok)
            refused = await call(client, "run_query", database="pg", sql="COMMIT; DROP TABLE books")
            assert refused.is_error and "query refused" in error_text(refused)
    assert pg_fingerprint(pg_cluster) == before


async def test_a_privileged_role_is_refused_unless_allowed_then_warned_once(pg_cluster, tmp_path):
    refused_settings = pg_settings(pg_cluster, tmp_path, role="writer")
    async with sql_client(refused_settings) as client:
        for tool, args in (("run_query", {"sql": "SELECT 1"}), ("list_tables", {})):
            result = await call(client, tool, database="pg", **args)
            assert result.is_error
            text = error_text(result)
            assert "database 'pg' refused: INSERT/UPDATE/DELETE/TRUNCATE" in text, text
            assert "allow_privileged_role" in text
            assert pg_cluster.writer_password not in text
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(str(message)), level="WARNING")
    try:
        settings = pg_settings(
            pg_cluster, tmp_path, role="writer", extra="allow_privileged_role = true"
        )
        database = PostgresDatabase(settings.databases[0], settings.secrets)
        assert database.run_query("SELECT 1", None, 10).rows == [[1]]
        database.close()  # a new connection inspects the role again, warns no more
        assert database.run_query("SELECT 2", None, 10).rows == [[2]]
        database.close()
    finally:
        logger.remove(sink)
    warnings = [m for m in messages if "more than read privileges" in m]
    assert len(warnings) == 1
    assert "INSERT/UPDATE/DELETE/TRUNCATE" in warnings[0]
    assert pg_cluster.writer_password not in warnings[0]


async def test_url_options_reach_libpq_but_cannot_turn_read_only_off(pg_cluster, tmp_path):
    config = tmp_path / "options.toml"
    url = pg_cluster.url("reader", "PG_TEST_PASSWORD") + (
        "?connect_timeout=7&application_name=custom"
        "&options=-c%20default_transaction_read_only%3Doff"
    )
    config.write_text(f'[databases.pg]\nurl = "{url}"\n', encoding="utf-8")
    settings = make_settings(
        config=config,
        log_dir=tmp_path / "logs",
        env={"PG_TEST_PASSWORD": pg_cluster.reader_password},
    )
    async with sql_client(settings) as client:
        result = await call(
            client,
            "run_query",
            database="pg",
            sql="SELECT current_setting('application_name'), "
            "current_setting('default_transaction_read_only'), "
            "current_setting('transaction_read_only')",
        )
    assert result.structured_content["rows"] == [["custom", "on", "on"]], error_text(result)


PRIVILEGED_ROLES = [
    ("signaller", "GRANT pg_signal_backend TO {role}", "is a member of pg_signal_backend"),
    ("inheritor", "GRANT signal_group TO {role}", "is a member of pg_signal_backend"),
    ("filereader", "GRANT pg_read_server_files TO {role}", "member of pg_read_server_files"),
    ("filewriter", "GRANT pg_write_server_files TO {role}", "member of pg_write_server_files"),
    ("executor", "GRANT pg_execute_server_program TO {role}", "of pg_execute_server_program"),
    ("bypasser", "ALTER ROLE {role} BYPASSRLS", "bypasses row-level security"),
    ("superuser", "ALTER ROLE {role} SUPERUSER", "is a superuser"),
    (
        "owner",
        "CREATE TABLE owned_by_role (x int); ALTER TABLE owned_by_role OWNER TO {role}",
        "owns 1 table(s) or sequence(s): public.owned_by_role",
    ),
    ("truncater", "GRANT TRUNCATE ON books TO {role}", "TRUNCATE on 1 table(s): public.books"),
    ("sequencer", "GRANT UPDATE ON counter TO {role}", "table(s): public.counter"),
    ("schemacreator", "GRANT CREATE ON SCHEMA public TO {role}", "CREATE in schema(s): public"),
    ("dbcreator", "GRANT CREATE ON DATABASE shop TO {role}", "has CREATE on the database"),
]


@pytest.mark.parametrize(("role", "grant", "named"), PRIVILEGED_ROLES, ids=lambda v: str(v)[:12])
async def test_each_privilege_refuses_the_database(pg_cluster, tmp_path, role, grant, named):
    password = "pw-" + role
    with pg_cluster.admin() as admin:
        admin.execute(
            "DO $$ BEGIN CREATE ROLE signal_group NOLOGIN; GRANT pg_signal_backend TO "
            "signal_group; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        admin.execute(f"DROP TABLE IF EXISTS owned_by_role; DROP ROLE IF EXISTS {role}")
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        admin.execute(f"GRANT USAGE ON SCHEMA public TO {role}; GRANT SELECT ON books TO {role}")
        admin.execute(grant.format(role=role))
    try:
        config = tmp_path / "role.toml"
        url = pg_cluster.url(role, "PG_TEST_PASSWORD")
        config.write_text(f'[databases.pg]\nurl = "{url}"\n', encoding="utf-8")
        settings = make_settings(
            config=config, log_dir=tmp_path / "logs", env={"PG_TEST_PASSWORD": password}
        )
        async with sql_client(settings) as client:
            result = await call(client, "run_query", database="pg", sql="SELECT 1")
        assert result.is_error
        text = error_text(result)
        assert "database 'pg' refused" in text and named in text, text
        assert password not in text
    finally:
        with pg_cluster.admin() as admin:
            admin.execute(
                f"DROP TABLE IF EXISTS owned_by_role; DROP OWNED BY {role}; DROP ROLE {role}"
            )


def test_allow_privileged_role_is_warned_at_startup_and_in_the_start_record(pg_cluster, tmp_path):
    from mcp_fileserver.audit.lifecycle import record_start, record_stop
    from mcp_fileserver.server import build_server
    from tests.audit.helpers import events

    settings = pg_settings(
        pg_cluster, tmp_path, role="writer", extra="allow_privileged_role = true"
    )
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(str(message)), level="WARNING")
    try:
        mcp = build_server(settings)
    finally:
        logger.remove(sink)
    assert any("allow_privileged_role = true" in m for m in messages)
    record_start(mcp, settings)
    record_stop(mcp, "test")
    (start,) = events(settings.log_dir, "server_start")
    assert start["privileged_roles_allowed"] == ["pg"]
    assert start["config"]["databases"][0]["allow_privileged_role"] is True


def test_inspecting_a_role_for_check_leaves_no_uninspected_session(pg_cluster, tmp_path):
    settings = pg_settings(pg_cluster, tmp_path, role="writer")
    database = PostgresDatabase(settings.databases[0], settings.secrets)
    assert database.role_privileges()  # check's path: connects without the refusal
    with pytest.raises(PolicyViolation, match="refused: INSERT/UPDATE/DELETE/TRUNCATE"):
        database.run_query("SELECT 1", None, 10)
    database.close()
