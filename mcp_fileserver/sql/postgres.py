"""PostgreSQL backend (psycopg 3): layer 2 on its own, and the row/byte/time limits.

Read-only without trusting the guard:
- every call runs in its own `BEGIN READ ONLY` transaction that is always rolled back,
  on a session opened with `default_transaction_read_only=on`; `set_config` changes made
  inside a query are transactional and vanish with the rollback;
- the query runs as `DECLARE cursor FOR <query>` through the extended query protocol,
  which accepts exactly one statement (`COMMIT; DROP ...` is a protocol error), and
  DECLARE itself only accepts SELECT/VALUES and refuses data-modifying WITH;
- `statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout` are set
  in each transaction from the call's remaining time, and the watchdog (control.py)
  sends a cancel request at the deadline too, or at once when the client cancels;
- rows come from the cursor in batches (`FETCH n`), so a huge table costs no more than
  the row and byte limits;
- the role's own privileges are the last line: `mcp-fileserver check` warns when the
  role can write (see roles.py).

The connection is opened on first use; an unreachable server gives `Unavailable` and the
next call tries again.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from loguru import logger
from psycopg import errors as pg_errors

from mcp_fileserver.config import DatabaseConfig
from mcp_fileserver.errors import (
    InvalidRequest,
    LimitExceeded,
    NotAllowed,
    PolicyViolation,
    Refusal,
    Unavailable,
)
from mcp_fileserver.secrets import SecretStore
from mcp_fileserver.sql.backend import DatabaseBackend, Params, T, elapsed_ms
from mcp_fileserver.sql.control import CallControl
from mcp_fileserver.sql.guard import Dialect
from mcp_fileserver.sql.models import (
    ColumnInfo,
    ForeignKey,
    IndexInfo,
    QueryPlan,
    QueryResult,
    ResultColumn,
    TableDescription,
    TableInfo,
)
from mcp_fileserver.sql.results import collect_rows

CURSOR_NAME = "mcp_fileserver_query"
MAX_TABLES = 10_000
APPLICATION_NAME = "mcp-fileserver"
_CONNINFO = re.compile(
    r"(postgres(?:ql)?(?:\+\w+)?://\S*)|(\b(?:password|user|host|hostaddr|port|dbname)=\S+)", re.I
)


_KINDS = {
    "r": "table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "p": "partitioned table",
}


class PostgresDatabase(DatabaseBackend):
    """One configured PostgreSQL database, connected lazily, one call at a time."""

    dialect = Dialect.POSTGRESQL

    def __init__(
        self, config: DatabaseConfig, secrets: SecretStore, *, enforce_guard: bool = True
    ) -> None:
        super().__init__(config, secrets, enforce_guard=enforce_guard)
        self._conn: psycopg.Connection[Any] | None = None
        self._role_checked = False

    # --- tools -------------------------------------------------------------------

    def list_tables(self, control: CallControl | None = None) -> list[TableInfo]:
        def run(conn: psycopg.Connection[Any]) -> list[TableInfo]:
            rows = conn.execute(
                """
                SELECT n.nspname, c.relname, c.relkind
                FROM pg_catalog.pg_class c
                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p')
                  AND NOT c.relispartition  -- a partitioned table stands for its parts
                  AND n.nspname <> 'information_schema'
                  AND n.nspname NOT LIKE 'pg\\_%'
                  AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
                  AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
                ORDER BY 1, 2
                LIMIT $1
                """,
                (MAX_TABLES,),
            ).fetchall()
            return [
                TableInfo(schema_name=schema, name=name, kind=_KINDS[kind])  # type: ignore[arg-type]
                for schema, name, kind in rows
            ]

        return self._run(run, control)

    def describe_table(self, table: str, control: CallControl | None = None) -> TableDescription:
        schema, _, name = table.rpartition(".")

        def run(conn: psycopg.Connection[Any]) -> TableDescription:
            found = conn.execute(
                """
                SELECT c.oid, n.nspname, c.relname, c.relkind
                FROM pg_catalog.pg_class c
                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p')
                  AND c.relname = $2
                  AND (n.nspname = $1 OR ($1 = '' AND n.nspname = ANY(current_schemas(false))))
                  AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
                ORDER BY array_position(current_schemas(false), n.nspname::text) NULLS LAST
                LIMIT 1
                """,
                (schema, name),
            ).fetchone()
            if found is None:
                raise NotAllowed(detail=f"no table {table!r} in {self.config.name}")
            oid, schema_name, rel_name, relkind = found
            column_rows = conn.execute(
                """
                SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
                       NOT a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid)
                FROM pg_catalog.pg_attribute a
                LEFT JOIN pg_catalog.pg_attrdef d
                  ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
                ORDER BY a.attnum
                """,
                (oid,),
            ).fetchall()
            primary_key = [
                row[0]
                for row in conn.execute(
                    """
                    SELECT a.attname
                    FROM pg_catalog.pg_constraint k
                    CROSS JOIN LATERAL unnest(k.conkey) WITH ORDINALITY AS u(attnum, pos)
                    JOIN pg_catalog.pg_attribute a
                      ON a.attrelid = k.conrelid AND a.attnum = u.attnum
                    WHERE k.conrelid = $1 AND k.contype = 'p'
                    ORDER BY u.pos
                    """,
                    (oid,),
                ).fetchall()
            ]
            fk_rows = conn.execute(
                """
                SELECT k.conname,
                       array(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, p)
                             JOIN pg_catalog.pg_attribute a
                               ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.p),
                       rn.nspname, r.relname,
                       array(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, p)
                             JOIN pg_catalog.pg_attribute a
                               ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.p)
                FROM pg_catalog.pg_constraint k
                JOIN pg_catalog.pg_class r ON r.oid = k.confrelid
                JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
                WHERE k.conrelid = $1 AND k.contype = 'f'
                ORDER BY k.conname
                """,
                (oid,),
            ).fetchall()
            index_rows = conn.execute(
                """
                SELECT ic.relname, i.indisunique,
                       array(SELECT pg_catalog.pg_get_indexdef(i.indexrelid, k, true)
                             FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k)
                FROM pg_catalog.pg_index i
                JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                WHERE i.indrelid = $1
                ORDER BY ic.relname
                """,
                (oid,),
            ).fetchall()
            return TableDescription(
                database=self.config.name,
                schema_name=schema_name,
                name=rel_name,
                kind=_KINDS.get(relkind, relkind),
                columns=[
                    ColumnInfo(
                        name=col,
                        type=col_type,
                        nullable=nullable,
                        default=default,
                        primary_key=col in primary_key,
                    )
                    for col, col_type, nullable, default in column_rows
                ],
                primary_key=primary_key,
                foreign_keys=[
                    ForeignKey(
                        columns=list(cols),
                        references_schema=ref_schema,
                        references_table=ref_table,
                        references_columns=list(ref_cols),
                    )
                    for _name, cols, ref_schema, ref_table, ref_cols in fk_rows
                ],
                indexes=[
                    IndexInfo(name=index_name, columns=list(cols), unique=unique)
                    for index_name, unique, cols in index_rows
                ],
            )

        return self._run(run, control)

    def run_query(
        self, sql: str, params: Params, max_rows: int, control: CallControl | None = None
    ) -> QueryResult:
        self._guard(sql)
        values = _positional(params)

        def run(conn: psycopg.Connection[Any]) -> QueryResult:
            started = time.perf_counter()
            with psycopg.RawServerCursor(conn, CURSOR_NAME, scrollable=False) as cursor:
                # DECLARE ... FOR <sql>, always through the extended protocol.
                cursor.execute(sql, values)
                columns = [
                    ResultColumn(name=col.name, type=_type_name(conn, col.type_code))
                    for col in cursor.description or ()
                ]
                collected = collect_rows(
                    cursor.fetchmany, max_rows=max_rows, max_bytes=self.config.max_result_bytes
                )
            return self._query_result(columns, collected, started)

        return self._run(run, control)

    def explain(self, sql: str, params: Params, control: CallControl | None = None) -> QueryPlan:
        self._guard(sql)
        values = _positional(params)

        def run(conn: psycopg.Connection[Any]) -> QueryPlan:
            started = time.perf_counter()
            # Plain EXPLAIN plans without executing. binary=True forces the extended
            # protocol even without parameters, so only one statement is accepted.
            rows = conn.execute("EXPLAIN " + sql, values, binary=True).fetchall()
            return QueryPlan(
                database=self.config.name,
                plan="\n".join(str(row[0]) for row in rows),
                elapsed_ms=elapsed_ms(started),
            )

        return self._run(run, control)

    def write_privileges(self) -> list[str]:
        """What this role could change if every other layer failed (for `check`)."""
        return self._run(_write_privileges)

    # --- engine ------------------------------------------------------------------

    def _run(
        self, work: Callable[[psycopg.Connection[Any]], T], control: CallControl | None = None
    ) -> T:
        control = control or CallControl(self.config.timeout_s)
        with self._lock:
            conn = self._connection()
            canceller = _Canceller(conn)
            timeout_ms = max(1, math.ceil(control.remaining() * 1000))
            try:
                with control.bound(canceller.cancel), conn.transaction(force_rollback=True):
                    # One round trip: this transaction's timeouts, and no advisory lock
                    # left over from an earlier call (session locks survive a rollback).
                    conn.execute(
                        "SELECT pg_catalog.set_config('statement_timeout', $1, true), "
                        "pg_catalog.set_config('lock_timeout', $1, true), "
                        "pg_catalog.set_config('idle_in_transaction_session_timeout', $2, true), "
                        "pg_catalog.pg_advisory_unlock_all()",
                        (f"{timeout_ms}ms", f"{timeout_ms * 2}ms"),
                    )
                    return work(conn)
            except Refusal:
                raise
            except psycopg.Error as exc:
                if control.cancelled and isinstance(exc, pg_errors.QueryCanceled):
                    raise LimitExceeded("query stopped: the call was cancelled") from None
                raise self._refusal(exc) from None
            finally:
                canceller.wait()  # a late cancel request must not hit the next call
                if conn.closed or conn.broken:
                    self._drop_connection()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not (self._conn.closed or self._conn.broken):
            return self._conn
        self._drop_connection()
        cfg = self.config
        # libpq options: ours are defaults the URL's query may override (sslmode,
        # connect_timeout, ...), except the read-only startup option, always appended last
        # so it wins over any `-c default_transaction_read_only=off` in the URL.
        conninfo: dict[str, Any] = {
            "connect_timeout": max(2, math.ceil(cfg.timeout_s)),
            "application_name": APPLICATION_NAME,
            **dict(cfg.options),
            "host": cfg.host,
            "port": cfg.port,
            "user": cfg.user,
            "dbname": cfg.dbname,
            "password": cfg.password,
        }
        startup = "-c default_transaction_read_only=on"
        conninfo["options"] = f"{conninfo.get('options', '')} {startup}".strip()
        try:
            conn = psycopg.Connection.connect(
                autocommit=True,  # transactions only through conn.transaction()
                prepare_threshold=None,  # no server-side prepared statements left behind
                cursor_factory=psycopg.RawCursor,  # native $1 placeholders, no % parsing
                **conninfo,
            )
        except psycopg.Error as exc:
            detail = self._clean(exc)
            logger.warning("database {}: connection failed: {}", cfg.name, detail)
            raise Unavailable(
                f"database {cfg.name!r} is unavailable ({_connect_reason(detail)}); "
                "try again later",
                detail=detail,
            ) from None
        conn.read_only = True  # conn.transaction() starts with BEGIN READ ONLY
        self._conn = conn
        if not self._role_checked:
            self._role_checked = True
            self._warn_if_role_can_write(conn)
        return conn

    def _warn_if_role_can_write(self, conn: psycopg.Connection[Any]) -> None:
        """Once per process: the operator's log says when the last layer is missing."""
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("SELECT pg_catalog.set_config('statement_timeout', '2s', true)")
                found = _write_privileges(conn)
        except psycopg.Error as exc:
            logger.debug("database {}: role check failed: {}", self.config.name, self._clean(exc))
            return
        if found:
            logger.warning(
                "database {}: the role can write ({}); only the other layers keep it "
                "read-only: use a read-only role (docs/sql.md)",
                self.config.name,
                self._secrets.mask("; ".join(found)),
            )

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def _refusal(self, exc: psycopg.Error) -> Refusal:
        diag = getattr(exc, "diag", None)
        primary = getattr(diag, "message_primary", None) or str(exc).splitlines()[0:1]
        message = self._clean(primary if isinstance(primary, str) else " ".join(primary))
        state = getattr(exc, "sqlstate", None) or ""
        if isinstance(exc, pg_errors.QueryCanceled) or state == "57014":
            return LimitExceeded(
                f"query stopped: it ran past the {self.config.timeout_s:g} s time limit"
            )
        if isinstance(exc, pg_errors.LockNotAvailable):
            return LimitExceeded(f"query stopped: it waited too long for a lock ({message})")
        if state in ("25006", "42501") or state.startswith("0A") or "multiple commands" in message:
            return PolicyViolation(f"refused by PostgreSQL: {message}")
        if isinstance(exc, psycopg.OperationalError) or state.startswith(("08", "57P")):
            self._drop_connection()
            return Unavailable(
                f"database {self.config.name!r} is unavailable ({_connect_reason(message)}); "
                "try again later",
                detail=message,
            )
        if isinstance(exc, psycopg.ProgrammingError) and not state:
            return InvalidRequest(f"query refused: {message}")
        return InvalidRequest(f"PostgreSQL error: {message}")

    def _clean(self, exc_or_text: BaseException | str) -> str:
        text = str(exc_or_text) or type(exc_or_text).__name__
        text = " ".join(text.split())
        return _CONNINFO.sub("[connection details hidden]", self._secrets.mask(text))


def _write_privileges(conn: psycopg.Connection[Any]) -> list[str]:
    """Superuser, role-creation, RLS bypass, table DML and schema CREATE privileges."""
    found: list[str] = []
    role = conn.execute(
        "SELECT current_user, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls "
        "FROM pg_catalog.pg_roles WHERE rolname = current_user"
    ).fetchone()
    if role is not None:
        name, superuser, createrole, createdb, bypassrls = role
        if superuser:
            found.append(f"role {name} is a superuser")
        if createrole or createdb:
            found.append(f"role {name} may create roles or databases")
        if bypassrls:
            found.append(f"role {name} bypasses row-level security")
    tables = conn.execute(
        """
        SELECT n.nspname || '.' || c.relname
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
          AND (pg_catalog.has_table_privilege(c.oid, 'INSERT')
               OR pg_catalog.has_table_privilege(c.oid, 'UPDATE')
               OR pg_catalog.has_table_privilege(c.oid, 'DELETE')
               OR pg_catalog.has_table_privilege(c.oid, 'TRUNCATE'))
        ORDER BY 1
        """
    ).fetchall()
    if tables:
        shown = ", ".join(t[0] for t in tables[:5]) + (", ..." if len(tables) > 5 else "")
        found.append(f"INSERT/UPDATE/DELETE/TRUNCATE on {len(tables)} table(s): {shown}")
    schemas = conn.execute(
        "SELECT nspname FROM pg_catalog.pg_namespace "
        "WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%' "
        "AND pg_catalog.has_schema_privilege(oid, 'CREATE') ORDER BY 1"
    ).fetchall()
    if schemas:
        found.append("CREATE in schema(s): " + ", ".join(s[0] for s in schemas))
    return found


class _Canceller:
    """A cancel request sent from a short-lived thread (the hook must not block: it runs
    on the event loop or the watchdog), joined before the connection serves again."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._threads: list[threading.Thread] = []

    def cancel(self) -> None:
        thread = threading.Thread(target=_cancel, args=(self._conn,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def wait(self) -> None:
        for thread in self._threads:
            thread.join(timeout=3.0)


def _cancel(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.cancel_safe(timeout=2.0)
    except Exception as exc:  # the query may just have finished: nothing to cancel
        logger.debug("cancel after timeout failed: {}", type(exc).__name__)


def _positional(params: Params) -> Sequence[Any] | None:
    if params is None:
        return None
    if isinstance(params, Mapping):
        raise InvalidRequest(
            "PostgreSQL placeholders are positional ($1, $2, ...): pass params as a list"
        )
    return list(params)


def _type_name(conn: psycopg.Connection[Any], oid: int) -> str | None:
    info = conn.adapters.types.get(oid)
    return info.name if info is not None else None


def _connect_reason(message: str) -> str:
    lowered = message.lower()
    for needle, reason in (
        ("password authentication failed", "authentication failed"),
        ("authentication", "authentication failed"),
        ("connection refused", "connection refused"),
        ("timeout", "connection timed out"),
        ("timed out", "connection timed out"),
        ("does not exist", "the database or role does not exist"),
        ("could not translate host name", "unknown host"),
        ("no route to host", "host unreachable"),
        ("too many connections", "too many connections"),
        ("terminating connection", "the connection was closed by the server"),
        ("server closed the connection", "the connection was closed by the server"),
        ("the database system is", "the server is starting up or shutting down"),
    ):
        if needle in lowered:
            return reason
    return "connection failed"
