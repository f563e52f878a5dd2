"""MariaDB layer 3 (the account's grants, roles included), `check`, and cancellation over
the MCP protocol, against the session's throwaway MariaDB."""

from __future__ import annotations

import time

from loguru import logger

from mcp_fileserver.sql.check import database_findings
from mcp_fileserver.sql.mysql import MySQLDatabase
from mcp_fileserver.sql.mysql_grants import findings, parse_grant
from tests.conftest import in_memory_client
from tests.sql.conftest import call, error_text, mariadb_settings, sql_client
from tests.sql.mariadb_server import MariaDB
from tests.sql.test_isolation import audit_records, cancel_after
from tests.sql.test_postgres import run_check


def test_grant_lines_are_read_by_an_allow_list() -> None:
    lines = [
        "GRANT USAGE ON *.* TO `r`@`%` IDENTIFIED BY PASSWORD '*SECRETHASH'",
        "GRANT SELECT, SHOW VIEW ON `shop`.* TO `r`@`%`",
        "GRANT SELECT (`a`, `b on c`), INSERT (`x`) ON `shop`.`t` TO `r`@`%`",
        "GRANT EXECUTE ON PROCEDURE `shop`.`p` TO `r`@`%`",
        "GRANT ALL PRIVILEGES ON `to ON x`.* TO `r`@`%` WITH GRANT OPTION",
        "GRANT `role a` TO `r`@`%` WITH ADMIN OPTION",
        "GRANT SELECT ON *.* TO `r`@`%`",
        "GRANT BINLOG MONITOR ON *.* TO `r`@`%`",
        "SET DEFAULT ROLE `role a` FOR `r`@`%`",
        "nonsense",
    ]
    found = findings(lines, "the account")
    assert found == [
        "the account has INSERT on `shop`.`t`",
        "the account has EXECUTE on PROCEDURE `shop`.`p`",
        "the account has ALL PRIVILEGES on `to ON x`.*",
        "the account has GRANT OPTION on `to ON x`.*",
        "the account may grant role(s) `role a` to others",
        "the account has SELECT on *.*, which reaches the mysql schema (account password hashes)",
        "the account has BINLOG MONITOR on *.*",
        "the account has a grant that could not be read",
    ]
    assert not any("SECRETHASH" in f for f in found)
    assert parse_grant("GRANT `a`,`b`@`%` TO `r`@`%`").roles == ("`a`", "`b`@`%`")  # type: ignore[union-attr]


async def test_least_privilege_reader_and_a_default_role_are_accepted(mariadb: MariaDB, tmp_path):
    for account in ("reader", "roled"):
        settings = mariadb_settings(mariadb, tmp_path, account=account)
        assert database_findings(settings) == []
        async with sql_client(settings) as client:
            result = await call(
                client, "run_query", database="maria", sql="SELECT COUNT(*) FROM orders"
            )
            assert result.structured_content["rows"] == [[6]], error_text(result)
            # The default role is back after every reset.
            again = await call(client, "run_query", database="maria", sql="SELECT id FROM paid")
            assert not again.is_error, error_text(again)


async def test_a_privileged_account_or_role_is_refused(mariadb: MariaDB, tmp_path):
    expected = {
        "writer": "refused: the account has PROCESS, FILE on *.*",
        # A role that is not the default one still counts: SET ROLE would enable it.
        "sneaky": "refused: role file_role has FILE on *.*",
    }
    for account, message in expected.items():
        settings = mariadb_settings(mariadb, tmp_path, account=account)
        async with sql_client(settings, guard=False) as client:
            result = await call(client, "run_query", database="maria", sql="SELECT 1")
            tables = await call(client, "list_tables", database="maria")
        assert result.is_error and tables.is_error
        assert message in error_text(result), error_text(result)
        assert "allow_privileged_role = true" in error_text(result)
        assert mariadb.passwords[account] not in error_text(result)


async def test_an_allowed_privileged_account_is_served_and_warned_about(mariadb: MariaDB, tmp_path):
    settings = mariadb_settings(
        mariadb, tmp_path, account="writer", extra="allow_privileged_role = true"
    )
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    try:
        async with sql_client(settings) as client:
            result = await call(client, "run_query", database="maria", sql="SELECT 1")
            # The engine still refuses a write, and DDL meets the read-only session.
            async with sql_client(settings, guard=False) as raw:
                write = await call(raw, "run_query", database="maria", sql="DELETE FROM orders")
                ddl = await call(raw, "run_query", database="maria", sql="DROP TABLE big")
    finally:
        logger.remove(sink)
    assert result.structured_content["rows"] == [[1]]
    assert write.is_error and ddl.is_error
    assert "READ ONLY" in error_text(ddl), error_text(ddl)
    assert any("allow_privileged_role = true" in w and "FILE" in w for w in warnings), warnings
    findings_ = database_findings(settings)
    assert [f.level for f in findings_] == ["warning"]


def test_check_cli_refuses_a_privileged_account_unless_allowed(mariadb: MariaDB, tmp_path):
    mariadb_settings(mariadb, tmp_path, account="writer")
    password = mariadb.passwords["writer"]
    env = {"MARIADB_TEST_PASSWORD": password}
    refused = run_check(tmp_path / "maria-writer.toml", env)
    assert refused.returncode == 1, refused.stderr
    assert "error: database 'maria' will be refused" in refused.stderr
    assert "PROCESS, FILE on *.*" in refused.stderr
    assert "ALL PRIVILEGES on `shop`.*" in refused.stderr
    assert password not in refused.stdout + refused.stderr
    mariadb_settings(mariadb, tmp_path, account="reader")
    clean = run_check(
        tmp_path / "maria-reader.toml", {"MARIADB_TEST_PASSWORD": mariadb.passwords["reader"]}
    )
    assert clean.returncode == 0, clean.stderr
    assert "database 'maria'" not in clean.stderr


async def test_a_cancelled_query_stops_on_the_server_frees_its_slot_and_is_audited(
    mariadb: MariaDB, tmp_path
):
    settings = mariadb_settings(mariadb, tmp_path, timeout_s=30.0, max_concurrent_queries=1)
    slow = "SELECT COUNT(*) FROM big a, big b"
    async with in_memory_client(settings) as client:
        started = time.monotonic()
        cancelled_at = await cancel_after(client, "maria", slow, 0.8)
        result = await call(client, "run_query", database="maria", sql="SELECT 42")
        freed_s = time.monotonic() - cancelled_at
        with mariadb.admin() as admin, admin.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                "WHERE USER = 'reader' AND INFO LIKE '%big a%'"
            )
            running = cursor.fetchone()
    assert result.structured_content["rows"] == [[42]]
    assert running == (0,)
    assert freed_s < 1.5, freed_s
    record = next(r for r in audit_records(tmp_path / "logs") if r.get("outcome") == "cancelled")
    assert record["tool"] == "run_query"
    assert record["duration_ms"] < (cancelled_at - started) * 1000 + 500, record


def test_role_privileges_reads_roles_without_changing_the_session(mariadb: MariaDB, tmp_path):
    settings = mariadb_settings(mariadb, tmp_path, account="sneaky")
    database = MySQLDatabase(settings.databases[0], settings.secrets, enforce_guard=False)
    try:
        assert database.role_privileges() == ["role file_role has FILE on *.*"]
        assert database.flavour == "mariadb"
    finally:
        database.close()
