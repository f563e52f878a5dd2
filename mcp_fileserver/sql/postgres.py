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
- after every call, rolled back or failed, `DISCARD ALL` resets the session: advisory
  locks, settings, LISTEN, prepared statements, temporary objects (a session that cannot
  be reset is closed);
- every function, operator and cast a query names is checked against the catalog
  (function_policy.py: no SQL-text functions, no volatile functions but an allow-list);
- every new connection inspects its role (`role_privileges`): a role that can write,
  signal other backends or reach server files is refused unless the database says
  `allow_privileged_role = true`;
- text comes back as text whatever the server encoding (pg_encoding.py).

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

import pglast.parser  # noqa: F401  (the guard's parser for this engine, see guard.py)
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
from mcp_fileserver.sql import function_policy
from mcp_fileserver.sql.backend import DatabaseBackend, Params, T, elapsed_ms
from mcp_fileserver.sql.control import CallControl
from mcp_fileserver.sql.function_policy import FunctionCatalog
from mcp_fileserver.sql.guard import READ_ONLY_HINT, Dialect
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
from mcp_fileserver.sql.pg_encoding import (
    UNDECLARED,
    adapt_to_server_encoding,
    client_encoding,
    from_wire,
    server_encoding,
    to_wire,
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
        self,
        config: DatabaseConfig,
        secrets: SecretStore,
        *,
        enforce_guard: bool = True,
        enforce_function_policy: bool = True,
    ) -> None:
        # enforce_function_policy=False exists only so tests can prove the engine and the
        # role hold without it.
        super().__init__(config, secrets, enforce_guard=enforce_guard)
        self._enforce_function_policy = enforce_function_policy
        self._conn: psycopg.Connection[Any] | None = None
        self._catalog: FunctionCatalog | None = None  # of the current connection
        self._encoding_note: str | None = None  # of the current connection
        self._undeclared = False  # learnt on connecting: the server encoding is SQL_ASCII

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
                self._wire_values([schema, name]),
            ).fetchone()
            if found is None:
                raise NotAllowed(
                    detail=f"no table {table!r} in {self.config.name}", violation=False
                )
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
            self._check_functions(conn, sql)
            with psycopg.RawServerCursor(conn, CURSOR_NAME, scrollable=False) as cursor:
                # DECLARE ... FOR <sql>, always through the extended protocol.
                cursor.execute(self._wire(sql), self._wire_values(values))
                columns = [
                    ResultColumn(name=self._unwire(col.name), type=_type_name(conn, col.type_code))
                    for col in cursor.description or ()
                ]
                collected = collect_rows(
                    cursor.fetchmany, max_rows=max_rows, max_bytes=self.config.max_result_bytes
                )
            result = self._query_result(columns, collected, started)
            if self._encoding_note:
                result.encoding_note = self._encoding_note
            return result

        return self._run(run, control)

    def explain(self, sql: str, params: Params, control: CallControl | None = None) -> QueryPlan:
        self._guard(sql)
        values = _positional(params)

        def run(conn: psycopg.Connection[Any]) -> QueryPlan:
            started = time.perf_counter()
            self._check_functions(conn, sql)
            # Plain EXPLAIN plans without executing. binary=True forces the extended
            # protocol even without parameters, so only one statement is accepted.
            rows = conn.execute(
                "EXPLAIN " + self._wire(sql), self._wire_values(values), binary=True
            ).fetchall()
            return QueryPlan(
                database=self.config.name,
                plan="\n".join(str(row[0]) for row in rows),
                elapsed_ms=elapsed_ms(started),
            )

        return self._run(run, control)

    def role_privileges(self) -> list[str]:
        """What this role could do beyond reading, if every other layer failed (`check`).
        Connects without the refusal, so that `check` can name what it found, and closes
        that connection after, so that no query ever runs on an uninspected session."""
        with self._lock:
            self._drop_connection()
            conn = self._connection(inspect_role=False)
            try:
                with conn.transaction(force_rollback=True):
                    return _inspect_role(conn)
            except psycopg.Error as exc:
                raise self._refusal(exc) from None
            finally:
                self._drop_connection()

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
            except UnicodeError:
                raise InvalidRequest("the result holds text that cannot be decoded") from None
            finally:
                canceller.wait()  # a late cancel request must not hit the next call
                self._reset_session(conn)

    def _reset_session(self, conn: psycopg.Connection[Any]) -> None:
        """After the rollback: nothing a call did to the session outlives it (advisory
        locks, settings, LISTEN, prepared statements, temporary objects). DISCARD ALL is
        refused inside a transaction, hence here; a session it cannot reset is closed."""
        if not (conn.closed or conn.broken):
            try:
                conn.execute("DISCARD ALL")
            except psycopg.Error as exc:
                logger.debug("database {}: reset failed: {}", self.config.name, self._clean(exc))
                self._drop_connection()
        if conn.closed or conn.broken:
            self._drop_connection()

    def _check_functions(self, conn: psycopg.Connection[Any], sql: str) -> None:
        if not self._enforce_function_policy:
            return
        if self._catalog is None or function_policy.is_stale(sql, self._catalog):
            # A function created since the catalog was read is judged like the others.
            self._catalog = _read_catalog(conn)
        reason = function_policy.refusal_reason(
            sql, self._catalog, self.config.allowed_volatile_functions
        )
        if reason is not None:
            raise PolicyViolation(f"query refused: {reason}; {READ_ONLY_HINT}")

    def _connection(self, *, inspect_role: bool = True) -> psycopg.Connection[Any]:
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
        # UTF8: the server converts from its encoding (pg_encoding.py), but SQL_ASCII.
        conninfo["client_encoding"] = client_encoding(self._undeclared)
        conn = self._open(conninfo)
        if server_encoding(conn) == UNDECLARED and not self._undeclared:
            self._undeclared = True  # learnt once: reconnect with a byte-transparent encoding
            conn.close()
            conninfo["client_encoding"] = client_encoding(True)
            conn = self._open(conninfo)
        conn.read_only = True  # conn.transaction() starts with BEGIN READ ONLY
        self._encoding_note = adapt_to_server_encoding(conn)
        self._conn = conn
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("SELECT pg_catalog.set_config('statement_timeout', '10s', true)")
                privileges = _inspect_role(conn) if inspect_role else []
                self._catalog = _read_catalog(conn)
        except psycopg.Error as exc:
            detail = self._clean(exc)
            self._drop_connection()
            raise Unavailable(
                f"database {cfg.name!r}: its role and catalog could not be read; try again later",
                detail=detail,
            ) from None
        if privileges:
            self._judge_role(privileges)
        return conn

    def _open(self, conninfo: dict[str, Any]) -> psycopg.Connection[Any]:
        try:
            return psycopg.Connection.connect(
                autocommit=True,  # transactions only through conn.transaction()
                prepare_threshold=None,  # no server-side prepared statements left behind
                cursor_factory=psycopg.RawCursor,  # native $1 placeholders, no % parsing
                **conninfo,
            )
        except psycopg.Error as exc:
            detail = self._clean(exc)
            logger.warning("database {}: connection failed: {}", self.config.name, detail)
            raise Unavailable(
                f"database {self.config.name!r} is unavailable ({_connect_reason(detail)}); "
                "try again later",
                detail=detail,
            ) from None

    def _wire(self, text: str) -> str:
        return to_wire(text) if self._undeclared else text

    def _unwire(self, text: str) -> str:
        return from_wire(text) if self._undeclared else text

    def _wire_values(self, values: Sequence[Any] | None) -> Sequence[Any] | None:
        if values is None or not self._undeclared:
            return values
        return [to_wire(v) if isinstance(v, str) else v for v in values]

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
            self._catalog = None

    def _refusal(self, exc: psycopg.Error) -> Refusal:
        diag = getattr(exc, "diag", None)
        primary = getattr(diag, "message_primary", None) or str(exc).splitlines()[0:1]
        text = primary if isinstance(primary, str) else " ".join(primary)
        message = self._clean(self._unwire(text))
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
        return _CONNINFO.sub("[connection details hidden]", super()._clean(exc_or_text))


# Predefined roles that reach past this database's data: other sessions, server files,
# server programs, or writes everywhere.
DANGEROUS_MEMBERSHIPS = (
    "pg_signal_backend",
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_write_all_data",
)

_ROLE_SQL = """
SELECT current_user, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb,
       array(SELECT m FROM unnest($1::text[]) AS m
             WHERE pg_catalog.pg_has_role(current_user, m, 'MEMBER')),
       pg_catalog.has_database_privilege(current_database(), 'CREATE')
FROM pg_catalog.pg_roles r WHERE r.rolname = current_user
"""
# Tables (and sequences) outside the system schemas the role owns or may write.
_TABLES_SQL = """
SELECT n.nspname || '.' || c.relname,
       pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE') AS owned
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  AND (pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')
       OR (c.relkind <> 'S' AND (pg_catalog.has_table_privilege(c.oid, 'INSERT')
           OR pg_catalog.has_table_privilege(c.oid, 'UPDATE')
           OR pg_catalog.has_table_privilege(c.oid, 'DELETE')
           OR pg_catalog.has_table_privilege(c.oid, 'TRUNCATE')))
       OR (c.relkind = 'S' AND pg_catalog.has_sequence_privilege(c.oid, 'UPDATE')))
ORDER BY 1
"""
_SCHEMAS_SQL = """
SELECT nspname FROM pg_catalog.pg_namespace
WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%'
  AND pg_catalog.has_schema_privilege(oid, 'CREATE') ORDER BY 1
"""


def _inspect_role(conn: psycopg.Connection[Any]) -> list[str]:
    """Every privilege beyond reading this role holds, one phrase each, worst first."""
    found: list[str] = []
    role = conn.execute(_ROLE_SQL, (list(DANGEROUS_MEMBERSHIPS),)).fetchone()
    if role is not None:
        name, superuser, bypassrls, createrole, createdb, members_of, create_db = role
        if superuser:
            found.append(f"role {name} is a superuser")
        for member_of in members_of:
            found.append(f"role {name} is a member of {member_of}")
        if bypassrls:
            found.append(f"role {name} bypasses row-level security (BYPASSRLS)")
        if createrole or createdb:
            found.append(f"role {name} may create roles or databases")
        if create_db:
            found.append(f"role {name} has CREATE on the database")
    rows = conn.execute(_TABLES_SQL).fetchall()
    owned = [table for table, is_owner in rows if is_owner]
    writable = [table for table, is_owner in rows if not is_owner]
    if owned:
        found.append(f"the role owns {len(owned)} table(s) or sequence(s): {_some(owned)}")
    if writable:
        found.append(
            f"INSERT/UPDATE/DELETE/TRUNCATE on {len(writable)} table(s): {_some(writable)}"
        )
    schemas = [row[0] for row in conn.execute(_SCHEMAS_SQL).fetchall()]
    if schemas:
        found.append("CREATE in schema(s): " + ", ".join(schemas))
    return found


def _some(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def _read_catalog(conn: psycopg.Connection[Any]) -> FunctionCatalog:
    return FunctionCatalog.from_rows(conn.execute(function_policy.CATALOG_SQL).fetchall())


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
