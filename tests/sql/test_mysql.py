"""MariaDB over the real protocol, against a real MariaDB started by the session: the
tools, values, parameters, limits, time limit, reconnects and secrets. The attack suite
is test_mysql_attacks.py; the account's grants (layer 3) test_mysql_role.py."""

from __future__ import annotations

import time

import pytest

from tests.sql.conftest import call, error_text, mariadb_settings, sql_client
from tests.sql.mariadb_server import ED25519, MariaDB, restart_server
from tests.sql.mysql_corpus import CONTROLS

# Every test here runs once per driver (MariaDB Connector/Python, PyMySQL).
pytestmark = pytest.mark.usefixtures("mysql_driver")

GUARD = pytest.mark.parametrize("guard", [True, False], ids=["all-layers", "engine-only"])


def tool_form(sql: str, params: object) -> tuple[str, object]:
    """The corpus gives PyMySQL's params (a tuple for %s); the tool takes a list."""
    return sql, list(params) if isinstance(params, tuple) else params


EXPECTED = {
    "select": [[1, "Ada"], [2, "Bo"], [3, "Chen"], [4, "Dana"]],
    "join-aggregate": [
        ["CN", 2, "262.25"],
        ["GB", 2, "155.50"],
        ["US", 1, "99.99"],
        ["SE", 1, "80.00"],
    ],
    "rollup": [["paid", "505.49"], ["pending", "12.25"], ["refunded", "80.00"], [None, "597.74"]],
    "params-positional": [
        [1, 1, "120.00", "paid", "2024-04-01T10:00:00"],
        [4, 3, "250.00", "paid", "2024-05-01T14:00:00"],
        [6, 4, "99.99", "paid", "2024-06-11T18:20:00"],
    ],
    "percent-in-string": [["Ada"], ["Dana"]],
}


@pytest.mark.parametrize(("case", "sql", "params"), CONTROLS, ids=[c[0] for c in CONTROLS])
async def test_controls_answer_on_mariadb(mariadb: MariaDB, tmp_path, case, sql, params):
    settings = mariadb_settings(mariadb, tmp_path)
    sql, params = tool_form(sql, params)
    args: dict[str, object] = {"database": "maria", "sql": sql}
    if params is not None:
        args["params"] = params
    async with sql_client(settings) as client:
        result = await call(client, "run_query", **args)
        assert not result.is_error, error_text(result)
        data = result.structured_content
        assert data["truncated"] is False
        if case in EXPECTED:
            assert data["rows"] == EXPECTED[case]
        plan = await call(client, "explain_query", **args)
        assert not plan.is_error, error_text(plan)
        assert '"query_block"' in plan.structured_content["plan"]


async def test_values_are_json_safe_and_typed(mariadb: MariaDB, tmp_path):
    settings = mariadb_settings(mariadb, tmp_path)
    async with sql_client(settings) as client:
        result = await call(
            client,
            "run_query",
            database="maria",
            sql="SELECT price, born, seen, took, flags, doc, tags, mood, raw, yr, ratio, note,"
            " CAST(12345678901234567890 AS DECIMAL(30, 0)), NULL FROM kinds",
        )
    assert not result.is_error, error_text(result)
    data = result.structured_content
    assert data["rows"] == [
        [
            "12345678.90",
            "1958-06-17",
            "2026-01-02T03:04:05.678000",
            "838:59:59",
            513,
            '{"pages": 209}',  # MariaDB's JSON is LONGTEXT on the wire: text
            ["a", "c"],
            "busy",
            "iVBORw==",
            2026,
            0.5,
            'naïve \\ "quoted"',
            "12345678901234567890",
            None,
        ]
    ]
    types = [c["type"] for c in data["columns"]]
    assert types[:5] == ["decimal", "date", "datetime", "time", "bit"]
    assert types[6:9] == ["set", "enum", "varbinary"]


async def test_parameters_are_bound_never_spliced_raw(mariadb: MariaDB, tmp_path):
    settings = mariadb_settings(mariadb, tmp_path)
    hostile = "x' OR '1'='1"
    async with sql_client(settings) as client:
        by_list = await call(
            client,
            "run_query",
            database="maria",
            sql="SELECT name FROM customers WHERE name = %s OR name = %s ORDER BY id",
            params=[hostile, "Bo"],
        )
        assert by_list.structured_content["rows"] == [["Bo"]], error_text(by_list)
        by_name = await call(
            client,
            "run_query",
            database="maria",
            sql="SELECT %(a)s AS a, '%(a)s' AS b, `id`, 1-%(n)s FROM customers "
            "WHERE id = %(id)s -- %(a)s",
            params={"a": "it's \\ 50% 'x'", "id": 2, "n": -1},
        )
        assert not by_name.is_error, error_text(by_name)
        assert by_name.structured_content["rows"] == [["it's \\ 50% 'x'", "%(a)s", 2, 2]]
        wrong = await call(client, "run_query", database="maria", sql="SELECT %s, %s", params=[1])
        assert wrong.is_error and "placeholder" in error_text(wrong)
        missing = await call(
            client, "run_query", database="maria", sql="SELECT %(a)s", params={"b": 1}
        )
        assert missing.is_error and "a" in error_text(missing)


async def test_tools_describe_the_schema(mariadb: MariaDB, tmp_path):
    settings = mariadb_settings(mariadb, tmp_path)
    async with sql_client(settings) as client:
        listing = (await call(client, "list_databases")).structured_content
        assert listing["databases"] == [
            {"name": "maria", "engine": "mariadb", "description": "test mariadb"}
        ]
        tables = (await call(client, "list_tables", database="maria")).structured_content
        names = {(t["schema_name"], t["name"], t["kind"]) for t in tables["tables"]}
        assert ("shop", "orders", "table") in names
        assert ("shop", "paid", "view") in names
        orders = (
            await call(client, "describe_table", database="maria", table="shop.orders")
        ).structured_content
        assert orders["primary_key"] == ["id"]
        assert orders["foreign_keys"] == [
            {
                "columns": ["customer_id"],
                "references_schema": "shop",
                "references_table": "customers",
                "references_columns": ["id"],
            }
        ]
        assert {"name": "orders_customer", "columns": ["customer_id"], "unique": False} in orders[
            "indexes"
        ]
        amount = next(c for c in orders["columns"] if c["name"] == "amount")
        assert amount == {
            "name": "amount",
            "type": "decimal(10,2)",
            "nullable": False,
            "default": None,
            "primary_key": False,
        }
        same = (
            await call(client, "describe_table", database="maria", table="orders")
        ).structured_content
        assert same == orders
        kinds = (
            await call(client, "describe_table", database="maria", table="kinds")
        ).structured_content
        defaults = {c["name"]: c["default"] for c in kinds["columns"]}
        assert defaults["price"] == "0.00" and defaults["mood"] == "'calm'"
        assert defaults["born"] is None
        assert {"name": "kinds_born_seen", "columns": ["born", "seen"], "unique": True} in kinds[
            "indexes"
        ]
        for hidden in ("mysql.user", "user", "information_schema.tables", "other.orders"):
            missing = await call(client, "describe_table", database="maria", table=hidden)
            assert missing.is_error, hidden


@GUARD
async def test_limits_stop_fetching_early(mariadb: MariaDB, tmp_path, guard):
    settings = mariadb_settings(mariadb, tmp_path, timeout_s=30)
    async with sql_client(settings, guard=guard) as client:
        rows = await call(client, "run_query", database="maria", sql="SELECT * FROM big")
        assert rows.structured_content["row_count"] == 100
        assert rows.structured_content["truncated_reason"] == "max_rows"
        few = await call(client, "run_query", database="maria", sql="SELECT n FROM big", max_rows=3)
        assert few.structured_content["rows"] == [[1], [2], [3]]
        wide = await call(
            client, "run_query", database="maria", sql="SELECT REPEAT(h, 50) FROM big"
        )
        assert wide.structured_content["truncated_reason"] == "max_result_bytes"
        assert 0 < wide.structured_content["row_count"] < 100
        # A cut-off result is stopped on the server, not read to its end: an endless
        # cross join answers at once and leaves nothing running.
        started = time.monotonic()
        endless = await call(
            client, "run_query", database="maria", sql="SELECT a.n FROM big a, big b"
        )
        assert endless.structured_content["truncated_reason"] == "max_rows"
        assert time.monotonic() - started < 5
        ok = await call(client, "run_query", database="maria", sql="SELECT COUNT(*) FROM customers")
        assert ok.structured_content["rows"] == [[4]]
    assert running_queries(mariadb) == []


def running_queries(server: MariaDB) -> list[object]:
    with server.admin() as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT ID, INFO FROM information_schema.PROCESSLIST "
            "WHERE USER <> 'root' AND COMMAND = 'Query'"
        )
        return list(cursor.fetchall())


@GUARD
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT SLEEP(30)",
        "SELECT BENCHMARK(1000000000, MD5('x'))",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT COUNT(*) FROM r",
        "SELECT COUNT(*) FROM big a, big b",
        "SET STATEMENT max_statement_time = 0 FOR SELECT SLEEP(30)",
    ],
    ids=["sleep", "benchmark", "endless-recursive-cte", "cross-join", "set-statement-no-limit"],
)
async def test_runaway_query_is_cut_off_and_the_next_call_answers(
    mariadb: MariaDB, tmp_path, guard, sql
):
    settings = mariadb_settings(mariadb, tmp_path)
    async with sql_client(settings, guard=guard) as client:
        started = time.monotonic()
        result = await call(client, "run_query", database="maria", sql=sql)
        took = time.monotonic() - started
        assert result.is_error or not guard or "RECURSIVE" in sql  # guard refuses the rest
        assert took < 1.0 + 2.5, took  # timeout_s = 1, plus a loaded machine's slack
        # Stopped (MariaDB ends BENCHMARK and recursion quietly, with a result) or refused.
        if result.is_error and not guard:
            assert any(word in error_text(result) for word in ("time limit", "recursive")), (
                error_text(result)
            )
        ok = await call(client, "run_query", database="maria", sql="SELECT COUNT(*) FROM customers")
        assert ok.structured_content["rows"] == [[4]]
    assert running_queries(mariadb) == []


async def test_unreachable_database_fails_clearly(mariadb: MariaDB, tmp_path):
    from tests.sql.mariadb_server import _free_port

    down = _free_port()
    url = mariadb.url("reader", "MARIADB_TEST_PASSWORD").replace(f":{mariadb.port}/", f":{down}/")
    settings = mariadb_settings(mariadb, tmp_path, url=url)
    async with sql_client(settings) as client:
        result = await call(client, "run_query", database="maria", sql="SELECT 1")
    assert result.is_error
    text = error_text(result)
    assert "unavailable" in text and "connection refused" in text
    assert str(down) not in text and "127.0.0.1" not in text


async def test_wrong_password_is_reported_without_any_secret(mariadb: MariaDB, tmp_path):
    settings = mariadb_settings(mariadb, tmp_path, account="nobody")
    async with sql_client(settings) as client:
        result = await call(client, "run_query", database="maria", sql="SELECT 1")
    assert result.is_error
    assert "authentication failed" in error_text(result)
    for password in mariadb.passwords.values():
        assert password not in error_text(result)


async def test_reconnects_after_the_connection_is_killed(mariadb: MariaDB, tmp_path):
    settings = mariadb_settings(mariadb, tmp_path, max_concurrent_queries=1)
    async with sql_client(settings) as client:
        first = await call(client, "run_query", database="maria", sql="SELECT CONNECTION_ID()")
        pid = first.structured_content["rows"][0][0]
        with mariadb.admin() as admin, admin.cursor() as cursor:
            cursor.execute(f"KILL CONNECTION {int(pid)}")
        again = await call(client, "run_query", database="maria", sql="SELECT CONNECTION_ID()")
        assert not again.is_error, error_text(again)
        assert again.structured_content["rows"][0][0] != pid


async def test_reconnects_after_a_server_restart(mariadb: MariaDB, tmp_path):
    settings = mariadb_settings(mariadb, tmp_path, max_concurrent_queries=1, timeout_s=5)
    async with sql_client(settings) as client:
        first = await call(client, "run_query", database="maria", sql="SELECT 1")
        assert not first.is_error, error_text(first)
        restart_server(mariadb)
        again = await call(client, "run_query", database="maria", sql="SELECT 2")
        assert not again.is_error, error_text(again)
        assert again.structured_content["rows"] == [[2]]


async def test_the_server_side_statement_limit_stands_without_the_watchdog(
    mariadb: MariaDB, tmp_path, monkeypatch
):
    """max_statement_time alone stops a runaway query: the second line behind KILL QUERY."""
    from mcp_fileserver.sql import mysql

    monkeypatch.setattr(mysql._Killer, "kill", lambda self: None)
    settings = mariadb_settings(mariadb, tmp_path)
    async with sql_client(settings, guard=False) as client:
        started = time.monotonic()
        result = await call(client, "run_query", database="maria", sql="SELECT SLEEP(30)")
        took = time.monotonic() - started
        assert result.is_error and "time limit" in error_text(result), error_text(result)
        assert took < 3.5, took
        ok = await call(client, "run_query", database="maria", sql="SELECT 1")
        assert ok.structured_content["rows"] == [[1]]


async def test_a_role_dropped_by_a_query_is_back_for_the_next_call(mariadb: MariaDB, tmp_path):
    settings = mariadb_settings(mariadb, tmp_path, account="roled", max_concurrent_queries=1)
    async with sql_client(settings, guard=False) as client:
        dropped = await call(client, "run_query", database="maria", sql="SET ROLE NONE")
        assert not dropped.is_error, error_text(dropped)
        after = await call(client, "run_query", database="maria", sql="SELECT CURRENT_ROLE()")
        assert after.structured_content["rows"] == [["read_role"]]
        reads = await call(client, "run_query", database="maria", sql="SELECT COUNT(*) FROM orders")
        assert reads.structured_content["rows"] == [[6]], error_text(reads)


@GUARD
async def test_an_error_in_the_middle_of_a_result_is_an_error_not_a_short_answer(
    mariadb: MariaDB, tmp_path, guard
):
    """The server sends row 1, then an overflow error at row 2: the answer is that error,
    never one row called complete (Connector/Python's fetch alone ends the rows quietly)."""
    settings = mariadb_settings(mariadb, tmp_path)
    async with sql_client(settings, guard=guard) as client:
        result = await call(
            client,
            "run_query",
            database="maria",
            sql="SELECT n * 4611686018427387904 AS big_n FROM big ORDER BY n",
        )
        assert result.is_error, result.structured_content
        assert "out of range" in error_text(result)
        ok = await call(client, "run_query", database="maria", sql="SELECT COUNT(*) FROM customers")
        assert ok.structured_content["rows"] == [[4]]
    assert running_queries(mariadb) == []


async def test_an_account_whose_auth_plugin_libmariadb_loads_from_its_plugin_folder(
    mariadb: MariaDB, tmp_path, mysql_driver
):
    """ed25519 is no built-in of libmariadb: client_ed25519.so is dlopened at connect
    (PyMySQL speaks it only with PyNaCl, which is not installed: a clear refusal)."""
    settings = mariadb_settings(mariadb, tmp_path, account=ED25519)
    async with sql_client(settings) as client:
        result = await call(
            client, "run_query", database="maria", sql="SELECT COUNT(*) FROM customers"
        )
    if mysql_driver == "mariadbconnector":
        assert result.structured_content["rows"] == [[4]], error_text(result)
    else:
        assert result.is_error and "unavailable" in error_text(result)
        assert mariadb.passwords[ED25519] not in error_text(result)


@GUARD
async def test_a_placeholder_without_params_is_a_clear_error_not_an_outage(
    mariadb: MariaDB, tmp_path, guard
):
    """Connector/Python refuses `?`/`%s` in code with no params before sending; that is
    the query's fault (PyMySQL sends it and the server says syntax error), never
    'database unavailable', and the connection keeps serving."""
    settings = mariadb_settings(mariadb, tmp_path)
    async with sql_client(settings, guard=guard) as client:
        for sql in ("SELECT 5 ? 2", "SELECT n %s 2 FROM big"):
            result = await call(client, "run_query", database="maria", sql=sql)
            assert result.is_error and "unavailable" not in error_text(result), error_text(result)
        quoted = await call(client, "run_query", database="maria", sql="SELECT '%s', '?', 7 % 2")
        assert quoted.structured_content["rows"] == [["%s", "?", 1]]


async def test_an_unchecked_connector_release_is_unavailable_never_read_by_guesswork(
    mariadb: MariaDB, tmp_path, mysql_driver, monkeypatch
):
    """The C driver's error check reads the connection object's memory, laid out as the
    checked releases lay it out; any other release is refused before that read."""
    from mcp_fileserver.sql import mysql_drivers

    monkeypatch.setattr(mysql_drivers, "CHECKED_CONNECTOR_RELEASES", frozenset())
    settings = mariadb_settings(mariadb, tmp_path)
    async with sql_client(settings) as client:
        result = await call(client, "run_query", database="maria", sql="SELECT 1 AS one")
    if mysql_driver == "pymysql":
        assert result.structured_content["rows"] == [[1]], error_text(result)
    else:
        assert result.is_error
        assert "unavailable" in error_text(result)
