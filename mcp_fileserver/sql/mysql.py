"""MariaDB and MySQL backend (PyMySQL): layer 2 on its own, and the row/byte/time limits.

Read-only without trusting the guard:
- the client never asks for multi-statements (no CLIENT_MULTI_STATEMENTS, checked at
  connect) and never for LOAD DATA LOCAL (`local_infile=False`): one call, one statement;
- every call starts with one `SET SESSION` (`tx_read_only`/`transaction_read_only` = 1, a
  fixed `sql_mode`, `time_zone` UTC, utf8mb4, lock timeouts, and the server-side statement
  limit from the call's remaining time: `max_statement_time` in seconds on MariaDB,
  `max_execution_time` in ms on MySQL), then `START TRANSACTION READ ONLY`. A write is
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
import json
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import pymysql
import pymysql.cursors
from loguru import logger
from pymysql.constants import CLIENT, FIELD_TYPE, FLAG

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
    ResultColumn,
    TableDescription,
    TableInfo,
)
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
# The protocol's session reset (MariaDB 10.2.4+, MySQL 5.7.3+); PyMySQL has no name for it.
COM_RESET_CONNECTION = 0x1F
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
_TYPE_NAMES = {
    FIELD_TYPE.DECIMAL: "decimal",
    FIELD_TYPE.NEWDECIMAL: "decimal",
    FIELD_TYPE.TINY: "tinyint",
    FIELD_TYPE.SHORT: "smallint",
    FIELD_TYPE.INT24: "mediumint",
    FIELD_TYPE.LONG: "int",
    FIELD_TYPE.LONGLONG: "bigint",
    FIELD_TYPE.FLOAT: "float",
    FIELD_TYPE.DOUBLE: "double",
    FIELD_TYPE.NULL: "null",
    FIELD_TYPE.TIMESTAMP: "timestamp",
    FIELD_TYPE.DATE: "date",
    FIELD_TYPE.NEWDATE: "date",
    FIELD_TYPE.TIME: "time",
    FIELD_TYPE.DATETIME: "datetime",
    FIELD_TYPE.YEAR: "year",
    FIELD_TYPE.BIT: "bit",
    FIELD_TYPE.JSON: "json",
    FIELD_TYPE.ENUM: "enum",
    FIELD_TYPE.SET: "set",
    FIELD_TYPE.GEOMETRY: "geometry",
}
_TEXT_TYPES = {  # name when the column's charset is text, name when binary (charset 63)
    FIELD_TYPE.VARCHAR: ("varchar", "varbinary"),
    FIELD_TYPE.VAR_STRING: ("varchar", "varbinary"),
    FIELD_TYPE.STRING: ("char", "binary"),
    FIELD_TYPE.TINY_BLOB: ("tinytext", "tinyblob"),
    FIELD_TYPE.BLOB: ("text", "blob"),
    FIELD_TYPE.MEDIUM_BLOB: ("mediumtext", "mediumblob"),
    FIELD_TYPE.LONG_BLOB: ("longtext", "longblob"),
}
BINARY_CHARSET = 63
Connection = Any  # pymysql.connections.Connection: PyMySQL ships no type information


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

    @property
    def flavour(self) -> Flavour:
        """The server's flavour, read from its version at connect (the URL's until then)."""
        return self._flavour

    # --- tools -------------------------------------------------------------------

    def list_tables(self, control: CallControl | None = None) -> list[TableInfo]:
        def run(conn: Connection) -> list[TableInfo]:
            rows = _fetch(
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
            found = _fetch(
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
            columns = _fetch(
                conn,
                "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA "
                "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                "ORDER BY ORDINAL_POSITION",
                (db, rel_name),
            )
            statistics = _fetch(
                conn,
                "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY INDEX_NAME, SEQ_IN_INDEX",
                (db, rel_name),
            )
            references = _fetch(
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
            cursor = pymysql.cursors.SSCursor(conn)
            try:
                cursor.execute(final)  # no args: PyMySQL does no %-formatting
                columns = _prepare_columns(cursor)
                if columns:
                    collected = collect_rows(
                        cursor.fetchmany, max_rows=max_rows, max_bytes=self.config.max_result_bytes
                    )
                else:  # a statement without rows (only ever reached without the guard)
                    collected = CollectedRows([], None, [])
            finally:
                self._stop_unread(conn, cursor)
            return self._query_result(columns, collected, started)

        return self._run(run, control)

    def explain(self, sql: str, params: Params, control: CallControl | None = None) -> QueryPlan:
        final = self._bound_and_guarded(sql, params)

        def run(conn: Connection) -> QueryPlan:
            started = time.perf_counter()
            # Plain EXPLAIN plans without executing (never EXPLAIN ANALYZE, and never
            # MariaDB's ANALYZE statement, both of which run the query).
            rows = _fetch(conn, "EXPLAIN FORMAT=JSON " + final)
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
            except pymysql.MySQLError as exc:
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
            killer = _Killer(self._open_side, self._thread_id)
            conn: Connection | None = None
            try:
                with control.bound(killer.kill):
                    conn = self._begin(control)
                    return work(conn)
            except Refusal:
                raise
            except pymysql.MySQLError as exc:
                code = _code(exc)
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
        return int(conn.thread_id()) if conn is not None else None

    def _begin(self, control: CallControl) -> Connection:
        """A connection in a fresh READ ONLY transaction bounded by the call's deadline;
        a connection found dead (server restarted, session killed) is replaced once."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                remaining = max(control.remaining(), 0.001)
                with conn.cursor() as cursor:
                    cursor.execute(self._session_sql(remaining))
                    cursor.execute("START TRANSACTION READ ONLY")
                return conn
            except pymysql.MySQLError as exc:
                self._drop_connection()
                if attempt == 1 and _code(exc) in _CONNECTION_LOST:
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
        if mine is None or mine is not conn or not mine.open:
            self._drop_connection()  # dropped during the call, or closed by the driver
            return
        try:
            mine._execute_command(COM_RESET_CONNECTION, b"")
            mine._read_ok_packet()
            if self._restore_role is not None:
                with mine.cursor() as cursor:
                    cursor.execute(self._restore_role)
        except (pymysql.MySQLError, OSError) as exc:  # this session is not trusted again
            logger.debug("database {}: reset failed: {}", self.config.name, self._clean(exc))
            self._drop_connection()

    def _stop_unread(self, conn: Connection, cursor: pymysql.cursors.SSCursor) -> None:
        """Leave no result half read: a result cut off by a limit (or an error) is stopped
        with KILL QUERY, then the rows already sent are discarded."""
        result = cursor._result
        if result is not None and result.unbuffered_active:
            if not _Killer(self._open_side, conn.thread_id).kill_now():
                self._drop_connection()  # closing the socket stops the server's sending
                return
            try:
                result._finish_unbuffered_query()
            except pymysql.MySQLError as exc:
                if _code(exc) not in _INTERRUPTED:
                    self._drop_connection()
                    return
        with contextlib.suppress(pymysql.MySQLError):
            cursor.close()

    def _connection(self, *, inspect_role: bool = True) -> Connection:
        if self._conn is not None and self._conn.open:
            return self._conn
        self._drop_connection()
        conn = self._open(self._connect_args(timeout=max(2, math.ceil(self.config.timeout_s))))
        if conn.client_flag & CLIENT.MULTI_STATEMENTS:  # never asked for; checked anyway
            conn.close()
            raise Unavailable(f"database {self.config.name!r}: multi-statements are on")
        self._flavour = "mariadb" if "mariadb" in conn.get_server_info().lower() else "mysql"
        self._conn = conn
        if not inspect_role:
            return conn
        try:
            privileges = self._inspect_grants(conn)
        except pymysql.MySQLError as exc:
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

    def _connect_args(self, *, timeout: int) -> dict[str, Any]:
        cfg = self.config
        options = dict(cfg.options)
        args: dict[str, Any] = {
            "host": cfg.host,
            "port": cfg.port,
            "user": cfg.user or "",
            "password": cfg.password or "",
            "database": cfg.dbname,
            "charset": "utf8mb4",
            "autocommit": True,  # transactions only as START TRANSACTION READ ONLY
            "client_flag": 0,  # PyMySQL's defaults, which hold no MULTI_STATEMENTS
            "local_infile": False,
            "connect_timeout": int(options.pop("connect_timeout", timeout)),
            "read_timeout": math.ceil(cfg.timeout_s) + READ_TIMEOUT_MARGIN_S,
            "write_timeout": math.ceil(cfg.timeout_s) + READ_TIMEOUT_MARGIN_S,
            "program_name": PROGRAM_NAME,
            "read_default_file": None,  # never ~/.my.cnf
        }
        for key, value in options.items():
            if key in ("ssl_verify_cert", "ssl_verify_identity"):
                args[key] = value.lower() in ("true", "1", "yes", "on")
            else:
                args[key] = value
        return args

    def _open(self, args: dict[str, Any]) -> Connection:
        try:
            return pymysql.connect(**args)
        except pymysql.MySQLError as exc:
            detail = self._clean(exc)
            logger.warning("database {}: connection failed: {}", self.config.name, detail)
            raise Unavailable(
                f"database {self.config.name!r} is unavailable ({_connect_reason(exc)}); "
                "try again later",
                detail=detail,
            ) from None
        except (OSError, ValueError) as exc:  # TLS files, bad socket path
            detail = self._clean(exc)
            raise Unavailable(
                f"database {self.config.name!r} is unavailable (connection failed); "
                "try again later",
                detail=detail,
            ) from None

    def _open_side(self) -> Connection:
        """A short-lived connection for KILL QUERY (same account, no database needed)."""
        args = self._connect_args(timeout=math.ceil(KILL_TIMEOUT_S))
        args.update(database=None, read_timeout=KILL_TIMEOUT_S, write_timeout=KILL_TIMEOUT_S)
        return pymysql.connect(**args)

    def _inspect_grants(self, conn: Connection) -> list[str]:
        """Every privilege beyond reading of the account, its roles and PUBLIC."""
        own = [row[0] for row in _fetch(conn, "SHOW GRANTS FOR CURRENT_USER()")]
        found = mysql_grants.findings(own, "the account")
        roles = _fetch(conn, "SELECT ROLE_NAME FROM information_schema.APPLICABLE_ROLES")
        self._restore_role = None
        if self._flavour == "mariadb":
            if roles:
                current = _fetch(conn, "SELECT CURRENT_ROLE()")[0][0]
                self._restore_role = f"SET ROLE {_quote(current) if current else 'NONE'}"
            for (role,) in roles:
                try:
                    _fetch(conn, f"SET ROLE {_quote(role)}")
                    lines = [row[0] for row in _fetch(conn, f"SHOW GRANTS FOR {_quote(role)}")]
                except pymysql.MySQLError:
                    found.append(f"the grants of role {role} could not be read")
                    continue
                found += mysql_grants.findings(lines, f"role {role}")
            with contextlib.suppress(pymysql.MySQLError):  # MariaDB 10.11+: grants to PUBLIC
                public = [row[0] for row in _fetch(conn, "SHOW GRANTS FOR PUBLIC")]
                found += mysql_grants.findings(public, "PUBLIC")
        else:
            names = mysql_grants.role_names(own)
            if names:
                self._restore_role = "SET ROLE DEFAULT"
                lines = [
                    row[0]
                    for row in _fetch(
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

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def _refusal(self, exc: pymysql.MySQLError) -> Refusal:
        code = _code(exc)
        message = self._clean(_message(exc))
        server = "MariaDB" if self._flavour == "mariadb" else "MySQL"
        if code in _INTERRUPTED:
            return LimitExceeded(
                f"query stopped: it ran past the {self.config.timeout_s:g} s time limit"
            )
        if code in _LOCK_TIMEOUT:
            return LimitExceeded(f"query stopped: it waited too long for a lock ({message})")
        if code in _REFUSED:
            return PolicyViolation(f"refused by {server}: {message}")
        if code is None or code >= 2000 or isinstance(exc, pymysql.err.InterfaceError):
            self._drop_connection()
            return Unavailable(
                f"database {self.config.name!r} is unavailable ({_connect_reason(exc)}); "
                "try again later",
                detail=message,
            )
        return InvalidRequest(f"{server} error: {message}")


class _Killer:
    """KILL QUERY over a short-lived side connection: from a thread when pulled by the
    watchdog or a cancellation (the hook must not block), inline for a cut-off result."""

    def __init__(
        self, open_side: Callable[[], Connection], thread_id: Callable[[], int | None]
    ) -> None:
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
            with side.cursor() as cursor:
                cursor.execute(f"KILL QUERY {int(target)}")
            return True
        except pymysql.MySQLError as exc:  # 1094: the connection is already gone
            logger.debug("KILL QUERY failed: {}", _code(exc))
            return False
        finally:
            with contextlib.suppress(Exception):
                side.close()

    def wait(self) -> None:
        for thread in self._threads:
            thread.join(timeout=KILL_TIMEOUT_S + 1)


def _fetch(
    conn: Connection, sql: str, args: Sequence[Any] | None = None
) -> tuple[tuple[Any, ...], ...]:
    with conn.cursor() as cursor:
        cursor.execute(sql, args)
        return tuple(cursor.fetchall())


def _prepare_columns(cursor: pymysql.cursors.SSCursor) -> list[ResultColumn]:
    """Column names and types, and each column's decoding made JSON-friendly before the
    first row is read: BIT as an integer, TIME as the server's text ('838:59:59' is no
    time of day), JSON as JSON, SET as a list; the rest as PyMySQL decodes them."""
    result = cursor._result
    if result is None or not getattr(result, "fields", None):  # no result set (an OK)
        return []
    columns: list[ResultColumn] = []
    for index, field in enumerate(result.fields):
        type_code = field.type_code
        binary = field.charsetnr == BINARY_CHARSET
        if type_code in _TEXT_TYPES:
            name = _TEXT_TYPES[type_code][1 if binary else 0]
        else:
            name = _TYPE_NAMES.get(type_code, str(type_code))
        encoding = result.converters[index][0]
        if type_code == FIELD_TYPE.BIT:
            result.converters[index] = (None, _bits)
        elif type_code == FIELD_TYPE.TIME:
            result.converters[index] = ("ascii", None)
        elif type_code == FIELD_TYPE.JSON:
            result.converters[index] = (encoding, json.loads)
        elif field.flags & FLAG.SET:
            name = "set"
            result.converters[index] = (encoding, _set_members)
        elif field.flags & FLAG.ENUM:
            name = "enum"
        columns.append(ResultColumn(name=field.name, type=name))
    return columns


def _bits(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _set_members(text: str) -> list[str]:
    return text.split(",") if text else []


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _code(exc: BaseException) -> int | None:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _message(exc: BaseException) -> str:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[1], str):
        return args[1]
    return str(exc)


def _connect_reason(exc: BaseException) -> str:
    code = _code(exc)
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
    lowered = _message(exc).lower()
    for needle, reason in (
        ("connection refused", "connection refused"),
        ("timed out", "connection timed out"),
        ("name or service not known", "unknown host"),
        ("no route to host", "host unreachable"),
        ("no such file", "no server socket"),
        ("ssl", "TLS handshake failed"),
    ):
        if needle in lowered:
            return reason
    return "connection failed"
