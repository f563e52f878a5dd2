"""The MariaDB attack suite over the MCP protocol, once with every layer and once with the
guard off: the engine (read-only session and transaction, one statement per call, session
reset) and the account's grants must stop every write and every side effect on their own.

After each attack a second connection (root) checks that no row changed, no table,
routine, user or grant appeared, no file was written, no user lock is held and nothing
was killed; and the next call on the same session sees no user variable, no changed
session setting, no role change and a read-only transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from mcp_fileserver.errors import Refusal
from mcp_fileserver.sql.mysql import MySQLDatabase
from tests.sql.conftest import call, error_text, mariadb_settings, sql_client
from tests.sql.mariadb_server import MariaDB, fingerprint
from tests.sql.mysql_corpus import ATTACKS

GUARD = pytest.mark.parametrize("guard", [True, False], ids=["all-layers", "engine-only"])


@dataclass(frozen=True)
class Attack:
    id: str
    sql: str  # {out}: the server's secure_file_priv folder; {canary}; {admin}: a thread id
    engine_refuses: bool  # refused even without the guard (a write, DDL, file, privilege)

    def render(self, out: Path, canary: Path, admin: int) -> str:
        return self.sql.format(out=out, canary=canary, admin=admin)


def _corpus(attack_id: str, sql: str) -> Attack:
    # m17a's corpus has no {placeholders}; its braces are SQL.
    return Attack(attack_id, sql.replace("{", "{{").replace("}", "}}"), attack_id in _WRITES)


# Without the guard, m17a's ~700 variants are not each expected to fail (a SLEEP is cut
# off, a GET_LOCK undone, a LOAD_FILE answers NULL for want of FILE); the checks after
# each prove that none left anything behind. These few are writes the engine refuses.


# m17a's attacks the engine itself refuses; the others (SLEEP, GET_LOCK, SET @a, HANDLER,
# FOR UPDATE...) the engine lets run, bounded and undone, which the checks below prove.
_WRITES = {
    "exec-comment-delete",
    "into-outfile",
    "delete",
    "cte-update",
    "lock-tables",
    "call",
    "multi",
}

ENGINE_ATTACKS = [
    # Writes inside the read-only transaction.
    Attack("insert", "INSERT INTO customers VALUES (9, 'Eve', 'XX', NOW())", True),
    Attack("update", "UPDATE orders SET amount = 0", True),
    Attack("replace", "REPLACE INTO customers VALUES (1, 'Eve', 'XX', NOW())", True),
    Attack("insert-select", "INSERT INTO big SELECT n + 100000, h FROM big", True),
    Attack("delete-join", "DELETE o FROM orders o JOIN customers c ON c.id = o.customer_id", True),
    Attack("insert-returning", "INSERT INTO big VALUES (0, 'x') RETURNING n", True),
    Attack("delete-returning", "DELETE FROM big WHERE n = 1 RETURNING n", True),
    # DDL: commits implicitly, then meets the session's read-only default and the grants.
    Attack("create-table", "CREATE TABLE evil (a INT)", True),
    Attack("create-table-select", "CREATE TABLE evil AS SELECT * FROM orders", True),
    Attack("drop-table", "DROP TABLE big", True),
    Attack("truncate", "TRUNCATE TABLE orders", True),
    Attack("alter", "ALTER TABLE orders ADD COLUMN evil INT", True),
    Attack("rename", "RENAME TABLE orders TO evil", True),
    Attack("create-view", "CREATE VIEW evil AS SELECT 1", True),
    Attack("create-index", "CREATE INDEX evil ON big (h)", True),
    Attack("create-database", "CREATE DATABASE evil", True),
    Attack("create-temporary", "CREATE TEMPORARY TABLE evil (a INT)", True),
    Attack("create-procedure", "CREATE PROCEDURE evil() SELECT 1", True),
    Attack("create-user", "CREATE USER evil IDENTIFIED BY 'x'", True),
    Attack("grant", "GRANT ALL ON shop.* TO reader", True),
    Attack("set-password", "SET PASSWORD = PASSWORD('evil')", True),
    Attack(
        "ddl-lifting-read-only",
        "SET STATEMENT tx_read_only = 0 FOR CREATE TABLE evil (a INT)",
        True,
    ),
    Attack("ddl-lifting-read-only-drop", "SET STATEMENT tx_read_only = 0 FOR DROP TABLE big", True),
    Attack("exec-comment-ddl", "/*!CREATE TABLE evil (a INT)*/", True),
    Attack("exec-comment-drop", "SELECT 1 /*!, (SELECT 1); DROP TABLE big */", True),
    Attack("cte-delete", "WITH x AS (SELECT 1) DELETE FROM orders", True),
    Attack("analyze-executes", "ANALYZE SELECT * FROM orders", False),
    Attack("optimize", "OPTIMIZE TABLE orders", True),
    # Files: FILE is not granted; secure_file_priv is the only folder the server writes.
    Attack("outfile", "SELECT 'pwned' INTO OUTFILE '{out}/x.txt'", True),
    Attack("dumpfile", "SELECT 'pwned' INTO DUMPFILE '{out}/y.bin'", True),
    Attack("outfile-canary", "SELECT * FROM orders INTO OUTFILE '{canary}.copy'", True),
    Attack("load-file-canary", "SELECT LOAD_FILE('{canary}')", False),
    Attack("load-data", "LOAD DATA INFILE '{canary}' INTO TABLE customers", True),
    Attack("load-data-local", "LOAD DATA LOCAL INFILE '{canary}' INTO TABLE customers", True),
    # Routines: EXECUTE is not granted.
    Attack("call-procedure", "CALL touch()", True),
    Attack("write-function", "SELECT bump()", True),
    # Other sessions and the server.
    Attack("kill-other", "KILL CONNECTION {admin}", True),
    Attack("kill-query-other", "KILL QUERY {admin}", True),
    Attack("flush", "FLUSH TABLES", True),
    Attack("shutdown", "SHUTDOWN", True),
    Attack("set-global", "SET GLOBAL max_statement_time = 0", True),
    Attack("set-global-read-only", "SET GLOBAL read_only = 1", True),
    Attack("xa", "XA START 'evil'", True),
    # Session state: allowed by the engine, undone by the reset (checked below).
    Attack("user-variable", "SET @evil = 1", False),
    Attack("user-variable-select", "SELECT @evil2 := 2", False),
    Attack("session-read-write", "SET SESSION tx_read_only = 0", False),
    Attack("session-no-time-limit", "SET SESSION max_statement_time = 0", False),
    Attack("session-sql-mode", "SET SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'", False),
    Attack("set-role-none", "SET ROLE NONE", False),
    Attack("get-lock-named", "SELECT GET_LOCK('m17b', 0)", False),
    Attack("prepare", "PREPARE evil FROM 'DELETE FROM orders'", False),
    Attack("handler-open", "HANDLER orders OPEN", False),
    Attack("lock-in-share-mode", "SELECT * FROM orders LOCK IN SHARE MODE", False),
    Attack("commit", "COMMIT", False),
    Attack("begin-read-write", "START TRANSACTION READ WRITE", False),  # nothing follows it
]

ALL_ATTACKS = [_corpus(attack_id, sql) for attack_id, sql in ATTACKS] + ENGINE_ATTACKS

STATE_SQL = (
    "SELECT @evil, @evil2, @a, @@tx_read_only, @@max_statement_time > 0, @@sql_mode, "
    "CURRENT_ROLE(), IS_USED_LOCK('m17b'), IS_USED_LOCK('m17')"
)  # no table: MariaDB 10.11 shows @@tx_read_only as 0 in a statement that reads one
CLEAN_STATE = [
    None,
    None,
    None,
    1,
    1,
    "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION",
    None,
    None,
    None,
]


@pytest.fixture
def backends(monkeypatch: pytest.MonkeyPatch) -> list[MySQLDatabase]:
    """Every MySQLDatabase the test's server makes, to look at its session directly."""
    made: list[MySQLDatabase] = []
    original = MySQLDatabase.__init__

    def recording(self: MySQLDatabase, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(MySQLDatabase, "__init__", recording)
    return made


def session_state(backend: MySQLDatabase) -> list[Any] | str:
    """STATE_SQL on the attacked session itself (the guard would refuse its functions)."""
    enforced = backend._enforce_guard
    backend._enforce_guard = False
    try:
        return backend.run_query(STATE_SQL, None, 10).rows[0]
    except Refusal as exc:
        return exc.message
    finally:
        backend._enforce_guard = enforced


@GUARD
async def test_every_attack_is_stopped_and_leaves_nothing_behind(
    mariadb: MariaDB,
    tmp_path: Path,
    guard: bool,
    backends: list[MySQLDatabase],
    mysql_driver: str,  # once per driver: layer 2 must hold with each
) -> None:
    # One connection slot: the state check after each attack runs on the attacked session.
    settings = mariadb_settings(mariadb, tmp_path, max_concurrent_queries=1, timeout_s=0.3)
    canary = tmp_path / "canary.txt"
    canary.write_text("MARIADB-CANARY-5e1f")
    canary.chmod(0o644)
    tmp_path.chmod(0o755)
    before = fingerprint(mariadb)
    failures: list[str] = []
    watcher = mariadb.admin()  # a session nobody may kill
    try:
        with watcher.cursor() as cursor:
            cursor.execute("SELECT CONNECTION_ID()")
            admin_id = cursor.fetchone()[0]
        async with sql_client(settings, guard=guard) as client:
            for attack in ALL_ATTACKS:
                sql = attack.render(mariadb.out_dir, canary, admin_id)
                result = await call(client, "run_query", database="maria", sql=sql)
                plan = await call(client, "explain_query", database="maria", sql=sql)
                texts = [
                    error_text(result),
                    error_text(plan),
                    json.dumps(result.structured_content),
                    json.dumps(plan.structured_content),
                ]
                (backend,) = backends
                state = await anyio.to_thread.run_sync(session_state, backend)
                must_refuse = guard or attack.engine_refuses
                with watcher.cursor() as cursor:
                    cursor.execute("SELECT 1")  # still alive: nothing killed it
                problems = [
                    "run_query succeeded" * (must_refuse and not result.is_error),
                    "explain_query succeeded" * (guard and not plan.is_error),
                    "canary leaked" * any("MARIADB-CANARY" in t for t in texts),
                    "password shown" * any(mariadb.passwords["reader"] in t for t in texts),
                    "traceback shown" * any("Traceback" in t for t in texts),
                    "internal error (masked)" * any("Error calling tool" in t for t in texts),
                    f"session state left behind: {state}" * (state != CLEAN_STATE),
                    "database changed" * (fingerprint(mariadb, watcher) != before),
                    "file written" * bool(list(mariadb.out_dir.iterdir())),
                    "file written beside the canary"
                    * (
                        sorted(p.name for p in tmp_path.iterdir() if "canary" in p.name)
                        != ["canary.txt"]
                    ),
                ]
                failures += [f"{attack.id}: {p}" for p in problems if p]
    finally:
        watcher.close()
    assert not failures, "\n".join(failures)
