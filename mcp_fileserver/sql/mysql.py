"""MariaDB and MySQL backend: layer 2 on its own, and the row/byte/time limits.

The driver is MariaDB Connector/Python (C) by default, PyMySQL with `+pymysql`
(mysql_drivers.py): both are held to what follows.

Read-only without trusting the guard:
- the client never asks for multi-statements (no CLIENT_MULTI_STATEMENTS, checked at
  connect) and never for LOAD DATA LOCAL (`local_infile=False`): one call, one statement;
- every call starts with one `SET SESSION` (`tx_read_only`/`transaction_read_only` = 1, a
  fixed `sql_mode`, `time_zone` UTC, utf8mb4, lock timeouts, and the server-side statement
  limit from the call's remaining time: `max_statement_time` in seconds on MariaDB,
  `max_execution_time` in ms on MySQL), then `START TRANSACTION READ ONLY` (kept apart
  from the SET, not folded into it as `autocommit = 0`: statements such as `XA START`
  must find a transaction already open). A write is
  refused inside the transaction; DDL commits the transaction implicitly, and is then
  refused by the session's read-only default, unless the statement itself lifts it
  (MariaDB's `SET STATEMENT tx_read_only=0 FOR ...`), which the guard refuses and the
  role cannot do without privileges (mysql_grants.py);
- after every call `COM_RESET_CONNECTION` rolls back and resets the session (user
  variables, temporary tables, `GET_LOCK` locks, prepared statements, session variables),
  and the account's role is restored; a session it cannot reset is closed;
- at the deadline or on cancellation, `KILL QUERY <connection id>` goes over a
  short-lived side connection, and the connection serves again only after it returned;
- rows stream from an unbuffered cursor: fetching stops at the row and byte limits, and
  the rest of a cut-off result is stopped with `KILL QUERY` rather than read;
- every new connection inspects the account's grants (mysql_grants.py).

Parameters (`%s` with a list, `%(name)s` with an object) become literals where the guard
saw the placeholders (mysql_params.py, mysql_literal.py), and the guard judges that final
text too. The connection is opened on first use; an unreachable
server gives `Unavailable` and the next call tries again.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from loguru import logger

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
from mcp_fileserver.sql import mysql_grants
from mcp_fileserver.sql.backend import DatabaseBackend, Params, T, elapsed_ms
from mcp_fileserver.sql.control import CallControl
from mcp_fileserver.sql.guard import Dialect
from mcp_fileserver.sql.models import (
    ColumnInfo,
    ForeignKey,
    IndexInfo,
    QueryPlan,
    QueryResult,
    TableDescription,
    TableInfo,
)
from mcp_fileserver.sql.mysql_drivers import Connection, Driver, Stream, Target
from mcp_fileserver.sql.mysql_drivers import load as load_driver
from mcp_fileserver.sql.mysql_literal import literal
from mcp_fileserver.sql.mysql_params import bind_parameters
from mcp_fileserver.sql.results import CollectedRows, collect_rows

Flavour = Literal["mariadb", "mysql"]
MAX_TABLES = 10_000
PROGRAM_NAME = "mcp-fileserver"
# A mode both servers accept that fixes how text is read: no ANSI_QUOTES ("..." is a
# string, as the guard reads it), no NO_BACKSLASH_ESCAPES (PyMySQL escapes parameters
# with backslashes), no PIPES_AS_CONCAT, no IGNORE_SPACE.
SQL_MODE = "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
KILL_TIMEOUT_S = 2.0  # connect + KILL QUERY on the side connection
READ_TIMEOUT_MARGIN_S = 10  # the client's socket timeout beyond timeout_s: the last line

# Server error codes (MariaDB and MySQL share them below 1900).
_INTERRUPTED = {1317, 1969, 3024}  # KILL QUERY; max_statement_time; max_execution_time
_LOCK_TIMEOUT = {1205}
_REFUSED = {1044, 1142, 1143, 1227, 1290, 1370, 1792, 1836}
_CONNECTION_LOST = {2006, 2013, 2055}

_KINDS = {
    "BASE TABLE": "table",
    "SYSTEM VERSIONED": "table",
    "VIEW": "view",
    "SEQUENCE": "sequence",
}


class MySQLDatabase(DatabaseBackend):
    """One configured MariaDB or MySQL database, connected lazily, one call at a time."""

    dialect = Dialect.MYSQL

    def __init__(
        self, config: DatabaseConfig, secrets: SecretStore, *, enforce_guard: bool = True
    ) -> None:
        super().__init__(config, secrets, enforce_guard=enforce_guard)
        self._conn: Connection | None = None
        self._flavour: Flavour = "mysql" if config.engine == "mysql" else "mariadb"
        # The statement restoring the account's role after a reset (None: it holds none).
        self._restore_role: str | None = None
        self._driver: Driver = load_driver(
            "pymysql" if config.driver == "pymysql" else "mariadbconnector"
        )

    @property
    def flavour(self) -> Flavour:
        """The server's flavour, read from its version at connect (the URL's until then)."""
        return self._flavour

    # --- tools -------------------------------------------------------------------

    def list_tables(self, control: CallControl | None = None) -> list[TableInfo]:
        def run(conn: Connection) -> list[TableInfo]:
            rows = self._fetch(
                conn,
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE IN %s ORDER BY TABLE_NAME LIMIT %s",
                (self.config.dbname, tuple(_KINDS), MAX_TABLES),
            )
            return [
                TableInfo(schema_name=self.config.dbname, name=name, kind=_KINDS[kind])  # type: ignore[arg-type]
                for name, kind in rows
            ]

        return self._run(run, control)

    def describe_table(self, table: str, control: CallControl | None = None) -> TableDescription:
        schema, _, name = table.rpartition(".")
        schema = schema.strip("`")
        name = name.strip("`")

        def run(conn: Connection) -> TableDescription:
            db = self.config.dbname
            found = self._fetch(
                conn,
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND TABLE_TYPE IN %s",
                (db, name, tuple(_KINDS)),
            )
            if (schema and schema != db) or not found:
                raise NotAllowed(
                    detail=f"no table {table!r} in {self.config.name}", violation=False
                )
            rel_name, kind = found[0]
            columns = self._fetch(
                conn,
                "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA "
                "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                "ORDER BY ORDINAL_POSITION",
                (db, rel_name),
            )
            statistics = self._fetch(
                conn,
                "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY INDEX_NAME, SEQ_IN_INDEX",
                (db, rel_name),
            )
            references = self._fetch(
                conn,
                "SELECT CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, "
                "REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME "
                "FROM information_schema.KEY_COLUMN_USAGE "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                "AND REFERENCED_TABLE_NAME IS NOT NULL "
                "ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION",
                (db, rel_name),
            )
            indexes: dict[str, IndexInfo] = {}
            for index_name, non_unique, column in statistics:
                entry = indexes.setdefault(
                    index_name, IndexInfo(name=index_name, columns=[], unique=not non_unique)
                )
                entry.columns.append(column if column is not None else "<expression>")
            primary_key = list(indexes["PRIMARY"].columns) if "PRIMARY" in indexes else []
            foreign: dict[str, ForeignKey] = {}
            for constraint, column, ref_schema, ref_table, ref_column in references:
                key = foreign.setdefault(
                    constraint,
                    ForeignKey(
                        columns=[],
                        references_schema=ref_schema,
                        references_table=ref_table,
                        references_columns=[],
                    ),
                )
                key.columns.append(column)
                key.references_columns.append(ref_column)
            return TableDescription(
                database=self.config.name,
                schema_name=db,
                name=rel_name,
                kind=_KINDS.get(kind, kind.lower()),
                columns=[
                    ColumnInfo(
                        name=column,
                        type=column_type,
                        nullable=nullable == "YES",
                        default=self._default_sql(default, extra),
                        primary_key=column in primary_key,
                    )
                    for column, column_type, nullable, default, extra in columns
                ],
                primary_key=primary_key,
                foreign_keys=list(foreign.values()),
                indexes=list(indexes.values()),
            )

        return self._run(run, control)

    def run_query(
        self, sql: str, params: Params, max_rows: int, control: CallControl | None = None
    ) -> QueryResult:
        final = self._bound_and_guarded(sql, params)

        def run(conn: Connection) -> QueryResult:
            started = time.perf_counter()
            stream = self._driver.stream(conn, final)
            try:
                if stream.columns:
                    collected = collect_rows(
                        stream.fetchmany, max_rows=max_rows, max_bytes=self.config.max_result_bytes
                    )
                else:  # a statement without rows (only ever reached without the guard)
                    collected = CollectedRows([], None, [])
            finally:
                self._stop_unread(conn, stream)
            return self._query_result(stream.columns, collected, started)

        return self._run(run, control)

    def explain(self, sql: str, params: Params, control: CallControl | None = None) -> QueryPlan:
        final = self._bound_and_guarded(sql, params)

        def run(conn: Connection) -> QueryPlan:
            started = time.perf_counter()
            # Plain EXPLAIN plans without executing (never EXPLAIN ANALYZE, and never
            # MariaDB's ANALYZE statement, both of which run the query).
            rows = self._fetch(conn, "EXPLAIN FORMAT=JSON " + final)
            return QueryPlan(
                database=self.config.name,
                plan="\n".join(str(row[0]) for row in rows),
                elapsed_ms=elapsed_ms(started),
            )

        return self._run(run, control)

    def role_privileges(self) -> list[str]:
        """What this account could do beyond reading, if every other layer failed."""
        with self._lock:
            conn = self._connection(inspect_role=False)
            try:
                return self._inspect_grants(conn)
            except self._driver.errors as exc:
                raise self._refusal(exc) from None
            finally:
                self._reset_session(conn)

    # --- engine ------------------------------------------------------------------

    def _bound_and_guarded(self, sql: str, params: Params) -> str:
        """The text the server will run, judged by the guard as it will be run."""
        if params is None:
            final = sql
        elif isinstance(params, Mapping | Sequence):
            final = bind_parameters(sql, params, literal)
        else:
            raise InvalidRequest("params must be a list (for %s) or an object (for %(name)s)")
        self._guard(final)  # the text the server will parse, values included
        return final

    def _run(
        self,
        work: Callable[[Connection], T],
        control: CallControl | None,
    ) -> T:
        control = control or CallControl(self.config.timeout_s)
        with self._lock:
            # Bound from the first statement on: a server that hangs on the session's
            # SET is stopped at the deadline like a query.
            killer = _Killer(self._driver, self._open_side, self._thread_id)
            conn: Connection | None = None
            try:
                with control.bound(killer.kill):
                    conn = self._begin(control)
                    return work(conn)
            except Refusal:
                raise
            except self._driver.errors as exc:
                code = self._driver.code(exc)
                if control.cancelled and code in _INTERRUPTED:
                    raise LimitExceeded("query stopped: the call was cancelled") from None
                raise self._refusal(exc) from None
            except UnicodeError:
                raise InvalidRequest("the result holds text that cannot be decoded") from None
            finally:
                killer.wait()  # a late KILL QUERY must not hit the next call
                if conn is not None:
                    self._reset_session(conn)

    def _thread_id(self) -> int | None:
        """The server's id for the current connection (what KILL QUERY names)."""
        conn = self._conn
        return self._driver.thread_id(conn) if conn is not None else None

    def _begin(self, control: CallControl) -> Connection:
        """A connection in a fresh READ ONLY transaction bounded by the call's deadline;
        a connection found dead (server restarted, session killed) is replaced once."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                remaining = max(control.remaining(), 0.001)
                self._driver.execute(conn, self._session_sql(remaining))
                self._driver.execute(conn, "START TRANSACTION READ ONLY")
                return conn
            except self._driver.errors as exc:
                self._drop_connection()
                if attempt == 1 and self._driver.code(exc) in _CONNECTION_LOST:
                    continue
                raise self._refusal(exc) from None
        raise AssertionError("unreachable")

    def _session_sql(self, remaining_s: float) -> str:
        lock_s = max(1, math.ceil(remaining_s))
        if self._flavour == "mariadb":
            read_only = "tx_read_only = 1"
            limit = f"max_statement_time = {max(remaining_s, 0.001):.3f}"
        else:
            read_only = "transaction_read_only = 1"
            limit = f"max_execution_time = {max(1, math.ceil(remaining_s * 1000))}"
        return (
            f"SET SESSION {read_only}, sql_mode = '{SQL_MODE}', time_zone = '+00:00', "
            "character_set_client = utf8mb4, character_set_connection = utf8mb4, "
            "character_set_results = utf8mb4, "
            f"lock_wait_timeout = {lock_s}, innodb_lock_wait_timeout = {lock_s}, {limit}"
        )

    def _reset_session(self, conn: Connection) -> None:
        """After every call: roll back and reset the session (COM_RESET_CONNECTION), and
        give the account its role back (MariaDB keeps SET ROLE across a reset)."""
        mine = self._conn
        if mine is None or mine is not conn or not self._driver.is_open(mine):
            self._drop_connection()  # dropped during the call, or closed by the driver
            return
        try:
            self._driver.reset(mine)
            if self._restore_role is not None:
                self._driver.execute(mine, self._restore_role)
        except (*self._driver.errors, OSError) as exc:  # type: ignore[misc]  # not trusted again
            logger.debug("database {}: reset failed: {}", self.config.name, self._clean(exc))
            self._drop_connection()

    def _stop_unread(self, conn: Connection, stream: Stream) -> None:
        """Leave no result half read: a result cut off by a limit (or an error) is stopped
        with KILL QUERY, then the rows already sent are discarded."""
        if stream.unread():
            killer = _Killer(self._driver, self._open_side, lambda: self._driver.thread_id(conn))
            if not killer.kill_now():
                self._drop_connection()  # closing the socket stops the server's sending
                return
            try:
                stream.finish()
            except self._driver.errors as exc:
                if self._driver.code(exc) not in _INTERRUPTED:
                    self._drop_connection()
                    return
        with contextlib.suppress(*self._driver.errors):
            stream.close()

    def _connection(self, *, inspect_role: bool = True) -> Connection:
        if self._conn is not None and self._driver.is_open(self._conn):
            return self._conn
        self._drop_connection()
        conn = self._open(self._target(timeout=max(2, math.ceil(self.config.timeout_s))))
        if self._driver.multi_statements(conn):  # never asked for; checked anyway
            conn.close()
            raise Unavailable(f"database {self.config.name!r}: multi-statements are on")
        server_info = self._driver.server_info(conn).lower()
        self._flavour = "mariadb" if "mariadb" in server_info else "mysql"
        self._conn = conn
        if not inspect_role:
            return conn
        try:
            privileges = self._inspect_grants(conn)
        except self._driver.errors as exc:
            detail = self._clean(exc)
            self._drop_connection()
            raise Unavailable(
                f"database {self.config.name!r}: its account's grants could not be read; "
                "try again later",
                detail=detail,
            ) from None
        finally:
            if self._conn is conn:
                self._reset_session(conn)
        if privileges:
            self._judge_role(privileges)
        return conn

    def _target(self, *, timeout: int, side: bool = False) -> Target:
        cfg = self.config
        options = dict(cfg.options)
        io_timeout = math.ceil(cfg.timeout_s) + READ_TIMEOUT_MARGIN_S
        if side:  # a short-lived connection for KILL QUERY: no database needed
            io_timeout = math.ceil(KILL_TIMEOUT_S)
        return Target(
            host=cfg.host or "localhost",
            port=cfg.port or 3306,
            user=cfg.user or "",
            password=cfg.password or "",
            database=None if side else cfg.dbname,
            connect_timeout=int(options.pop("connect_timeout", timeout)),
            read_timeout=io_timeout,
            write_timeout=io_timeout,
            program_name=PROGRAM_NAME,
            options=options,
        )

    def _open(self, target: Target) -> Connection:
        try:
            return self._driver.connect(target)
        except self._driver.errors as exc:
            detail = self._clean(exc)
            logger.warning("database {}: connection failed: {}", self.config.name, detail)
            raise Unavailable(
                f"database {self.config.name!r} is unavailable "
                f"({_connect_reason(self._driver, exc)}); try again later",
                detail=detail,
            ) from None
        except Exception as exc:  # TLS files, a socket path, an auth plugin it lacks
            detail = self._clean(exc)
            raise Unavailable(
                f"database {self.config.name!r} is unavailable (connection failed); "
                "try again later",
                detail=detail,
            ) from None

    def _open_side(self) -> Connection:
        """A short-lived connection for KILL QUERY (same account, no database needed)."""
        return self._driver.connect(self._target(timeout=math.ceil(KILL_TIMEOUT_S), side=True))

    def _inspect_grants(self, conn: Connection) -> list[str]:
        """Every privilege beyond reading of the account, its roles and PUBLIC."""
        own = [row[0] for row in self._fetch(conn, "SHOW GRANTS FOR CURRENT_USER()")]
        found = mysql_grants.findings(own, "the account")
        roles = self._fetch(conn, "SELECT ROLE_NAME FROM information_schema.APPLICABLE_ROLES")
        self._restore_role = None
        if self._flavour == "mariadb":
            if roles:
                current = self._fetch(conn, "SELECT CURRENT_ROLE()")[0][0]
                self._restore_role = f"SET ROLE {_quote(current) if current else 'NONE'}"
            for (role,) in roles:
                try:
                    self._fetch(conn, f"SET ROLE {_quote(role)}")
                    lines = [row[0] for row in self._fetch(conn, f"SHOW GRANTS FOR {_quote(role)}")]
                except self._driver.errors:
                    found.append(f"the grants of role {role} could not be read")
                    continue
                found += mysql_grants.findings(lines, f"role {role}")
            with contextlib.suppress(*self._driver.errors):  # MariaDB 10.11+: grants to PUBLIC
                public = [row[0] for row in self._fetch(conn, "SHOW GRANTS FOR PUBLIC")]
                found += mysql_grants.findings(public, "PUBLIC")
        else:
            names = mysql_grants.role_names(own)
            if names:
                self._restore_role = "SET ROLE DEFAULT"
                lines = [
                    row[0]
                    for row in self._fetch(
                        conn, f"SHOW GRANTS FOR CURRENT_USER() USING {', '.join(names)}"
                    )
                ]
                found += mysql_grants.findings(lines, "the account's roles")
        return list(dict.fromkeys(found))

    def _default_sql(self, default: str | None, extra: str | None) -> str | None:
        """COLUMN_DEFAULT as SQL text: MariaDB gives it so (NULL as 'NULL'); MySQL gives
        a literal's bare value, and an expression only with DEFAULT_GENERATED."""
        if default is None or (self._flavour == "mariadb" and default == "NULL"):
            return None
        if self._flavour == "mysql" and "DEFAULT_GENERATED" not in (extra or ""):
            return "'" + default.replace("\\", "\\\\").replace("'", "''") + "'"
        return default

    def _fetch(
        self, conn: Connection, template: str, args: Sequence[Any] = ()
    ) -> tuple[tuple[Any, ...], ...]:
        """Rows of one of our own statements, each `%s` of `template` filled with the
        literal of a value (a tuple becomes a parenthesised list)."""
        sql = template % tuple(_literals(value) for value in args) if args else template
        return self._driver.fetch(conn, sql)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def _refusal(self, exc: BaseException) -> Refusal:
        code = self._driver.code(exc)
        message = self._clean(self._driver.message(exc))
        server = "MariaDB" if self._flavour == "mariadb" else "MySQL"
        if code in _INTERRUPTED:
            return LimitExceeded(
                f"query stopped: it ran past the {self.config.timeout_s:g} s time limit"
            )
        if code in _LOCK_TIMEOUT:
            return LimitExceeded(f"query stopped: it waited too long for a lock ({message})")
        if code in _REFUSED:
            return PolicyViolation(f"refused by {server}: {message}")
        if code is None or code >= 2000 or isinstance(exc, self._driver.interface_errors):
            self._drop_connection()
            return Unavailable(
                f"database {self.config.name!r} is unavailable "
                f"({_connect_reason(self._driver, exc)}); try again later",
                detail=message,
            )
        return InvalidRequest(f"{server} error: {message}")


class _Killer:
    """KILL QUERY over a short-lived side connection: from a thread when pulled by the
    watchdog or a cancellation (the hook must not block), inline for a cut-off result."""

    def __init__(
        self,
        driver: Driver,
        open_side: Callable[[], Connection],
        thread_id: Callable[[], int | None],
    ) -> None:
        self._driver = driver
        self._open_side = open_side
        self._thread_id = thread_id
        self._threads: list[threading.Thread] = []

    def kill(self) -> None:
        thread = threading.Thread(target=self.kill_now, daemon=True)
        thread.start()
        self._threads.append(thread)

    def kill_now(self) -> bool:
        target = self._thread_id()
        if target is None:
            return False
        try:
            side = self._open_side()
        except Exception as exc:
            logger.debug("KILL QUERY: no side connection: {}", type(exc).__name__)
            return False
        try:
            self._driver.execute(side, f"KILL QUERY {int(target)}")
            return True
        except self._driver.errors as exc:  # 1094: the connection is already gone
            logger.debug("KILL QUERY failed: {}", self._driver.code(exc))
            return False
        finally:
            with contextlib.suppress(Exception):
                side.close()

    def wait(self) -> None:
        for thread in self._threads:
            thread.join(timeout=KILL_TIMEOUT_S + 1)


def _literals(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(item) for item in value) + ")"
    return literal(value)


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _connect_reason(driver: Driver, exc: BaseException) -> str:
    code = driver.code(exc)
    if code == 1045:
        return "authentication failed"
    if code in (1044, 1049):
        return "the database does not exist or is not accessible"
    if code == 1040:
        return "too many connections"
    if code == 1130:
        return "this host may not connect"
    if code in _CONNECTION_LOST:
        return "the connection was closed by the server"
    lowered = driver.message(exc).lower()
    for needle, reason in (
        ("connection refused", "connection refused"),
        # Connector/C names the errno: "Can't connect to server on 'h' (111)".
        ("(111)", "connection refused"),
        ("(115)", "connection refused"),  # its non-blocking connect, refused
        ("(110)", "connection timed out"),
        ("(113)", "host unreachable"),
        ("unknown server host", "unknown host"),
        ("through socket", "no server socket"),
        ("timed out", "connection timed out"),
        ("name or service not known", "unknown host"),
        ("no route to host", "host unreachable"),
        ("no such file", "no server socket"),
        ("ssl", "TLS handshake failed"),
    ):
        if needle in lowered:
            return reason
    return "connection failed"
