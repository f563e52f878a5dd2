"""The two MariaDB/MySQL drivers behind the one small interface mysql.py uses.

- MariaDB Connector/Python (`mariadb`, C, LGPL, by MariaDB Corporation), the default for
  `mariadb://` and `mysql://` and explicit as `+mariadbconnector`: it reads and decodes a
  10,000-row result ~4x faster than PyMySQL (bench/RESULTS.md, issue 17), which is most
  of what a large `run_query` costs. Built from source against libmariadb (Debian's
  `libmariadb-dev`); libmariadb loads its authentication plugins from `plugin_dir`.
- PyMySQL (pure Python), as `mariadb+pymysql://` and `mysql+pymysql://`: no C build, and
  the only one taking `ssl_key_password`.

Both are held to the same contract: no multi-statements (checked after connect), no
LOAD DATA LOCAL, no option file read, the statement sent as text with nothing formatted
into it, rows streamed from an unbuffered result, COM_RESET_CONNECTION as the reset.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from mcp_fileserver.errors import InvalidRequest
from mcp_fileserver.sql.models import ResultColumn

DriverName = Literal["mariadbconnector", "pymysql"]
Connection = Any  # neither driver ships type information
Row = Sequence[Any]

BINARY_CHARSET = 63
# Protocol field types and flags (the same numbers in both drivers' constants).
_DECIMAL, _TINY, _SHORT, _LONG, _FLOAT, _DOUBLE, _NULL, _TIMESTAMP = 0, 1, 2, 3, 4, 5, 6, 7
_LONGLONG, _INT24, _DATE, _TIME, _DATETIME, _YEAR, _NEWDATE, _VARCHAR, _BIT = (
    8, 9, 10, 11, 12, 13, 14, 15, 16,
)  # fmt: skip
_JSON, _NEWDECIMAL, _ENUM, _SET, _TINY_BLOB, _MEDIUM_BLOB, _LONG_BLOB, _BLOB = (
    245, 246, 247, 248, 249, 250, 251, 252,
)  # fmt: skip
_VAR_STRING, _STRING, _GEOMETRY = 253, 254, 255
_FLAG_ENUM, _FLAG_SET = 256, 2048

_TYPE_NAMES = {
    _DECIMAL: "decimal",
    _NEWDECIMAL: "decimal",
    _TINY: "tinyint",
    _SHORT: "smallint",
    _INT24: "mediumint",
    _LONG: "int",
    _LONGLONG: "bigint",
    _FLOAT: "float",
    _DOUBLE: "double",
    _NULL: "null",
    _TIMESTAMP: "timestamp",
    _DATE: "date",
    _NEWDATE: "date",
    _TIME: "time",
    _DATETIME: "datetime",
    _YEAR: "year",
    _BIT: "bit",
    _JSON: "json",
    _ENUM: "enum",
    _SET: "set",
    _GEOMETRY: "geometry",
}
_TEXT_TYPES = {  # name when the column's charset is text, name when binary (charset 63)
    _VARCHAR: ("varchar", "varbinary"),
    _VAR_STRING: ("varchar", "varbinary"),
    _STRING: ("char", "binary"),
    _TINY_BLOB: ("tinytext", "tinyblob"),
    _BLOB: ("text", "blob"),
    _MEDIUM_BLOB: ("mediumtext", "mediumblob"),
    _LONG_BLOB: ("longtext", "longblob"),
}


@dataclass(frozen=True)
class Target:
    """Where and as whom to connect, in neither driver's terms."""

    host: str
    port: int
    user: str
    password: str
    database: str | None
    connect_timeout: int
    read_timeout: int
    write_timeout: int
    program_name: str
    options: dict[str, str] = field(default_factory=dict)  # TLS, unix_socket


class Stream(Protocol):
    """One statement's result, read as the caller asks for rows."""

    columns: list[ResultColumn]

    def fetchmany(self, size: int) -> Sequence[Row]: ...
    def unread(self) -> bool:
        """Whether rows may still be on their way from the server."""
        ...

    def finish(self) -> None:
        """Read and drop what is left (after KILL QUERY stopped the server)."""
        ...

    def close(self) -> None: ...


class Driver(Protocol):
    name: DriverName
    errors: tuple[type[Exception], ...]
    interface_errors: tuple[type[Exception], ...]

    def connect(self, target: Target) -> Connection: ...
    def thread_id(self, conn: Connection) -> int: ...
    def is_open(self, conn: Connection) -> bool: ...
    def server_info(self, conn: Connection) -> str: ...
    def multi_statements(self, conn: Connection) -> bool: ...
    def fetch(self, conn: Connection, sql: str) -> tuple[tuple[Any, ...], ...]: ...
    def execute(self, conn: Connection, sql: str) -> None: ...
    def stream(self, conn: Connection, sql: str) -> Stream: ...
    def reset(self, conn: Connection) -> None: ...
    def code(self, exc: BaseException) -> int | None: ...
    def message(self, exc: BaseException) -> str: ...


def load(name: DriverName) -> Driver:
    """The driver `name`; its package is imported here, on the database's first call."""
    if name == "pymysql":
        return PyMySQLDriver()
    return MariaDBConnectorDriver()


def column_type(type_code: int, flags: int, charset: int) -> str:
    if flags & _FLAG_SET:
        return "set"
    if flags & _FLAG_ENUM:
        return "enum"
    if type_code in _TEXT_TYPES:
        return _TEXT_TYPES[type_code][1 if charset == BINARY_CHARSET else 0]
    return _TYPE_NAMES.get(type_code, str(type_code))


def _bits(data: bytes | None) -> int | None:
    return None if data is None else int.from_bytes(data, "big")


def _set_members(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return text.split(",") if text else []


def _json(text: str | bytes | None) -> Any:
    return None if text is None else json.loads(text)


# --- MariaDB Connector/Python ------------------------------------------------------


def bundled_plugin_dir() -> str | None:
    """libmariadb's client plugins shipped inside the frozen binary (PyInstaller puts
    them under sys._MEIPASS), or None to use the system's."""
    base = getattr(sys, "_MEIPASS", None)
    if base is None:
        return None
    folder = Path(base) / "libmariadb-plugin"
    return str(folder) if folder.is_dir() else None


class StreamError(Exception):
    """An error the server sent in the middle of a result (a KILL QUERY, the statement
    time limit, an overflow at row n), which Connector/Python's unbuffered fetch ends the
    rows on without raising (1.1.14): read from libmariadb's `mysql_errno`."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno


# Releases whose connection object was read and found laid out as `_LibMariaDB.handle`
# expects. Another release is refused before its memory is read, not guessed at.
CHECKED_CONNECTOR_RELEASES = frozenset({(1, 1, 14)})


class _LibMariaDB:
    """The three libmariadb calls Connector/Python does not expose, on the MYSQL handle
    its connection object holds first (checked against the connection id at connect)."""

    def __init__(self, release: tuple[int, ...]) -> None:
        self._checked = tuple(release[:3]) in CHECKED_CONNECTOR_RELEASES
        # Already loaded by the extension: dlopen finds it by its soname.
        lib = ctypes.CDLL("libmariadb.so.3")
        lib.mysql_errno.argtypes = [ctypes.c_void_p]
        lib.mysql_errno.restype = ctypes.c_uint
        lib.mysql_error.argtypes = [ctypes.c_void_p]
        lib.mysql_error.restype = ctypes.c_char_p
        lib.mysql_thread_id.argtypes = [ctypes.c_void_p]
        lib.mysql_thread_id.restype = ctypes.c_ulong
        self._lib = lib

    def handle(self, conn: Connection) -> int:
        """The connection's MYSQL*, or ValueError when the object is not laid out as the
        checked releases lay it out (PyObject_HEAD, then the MYSQL*)."""
        if not self._checked:
            raise ValueError("unchecked MariaDB Connector/Python release")
        pointer = ctypes.c_void_p.from_address(id(conn) + object.__basicsize__).value
        if not pointer or self._lib.mysql_thread_id(pointer) != conn.connection_id:
            raise ValueError("unrecognised MariaDB Connector/Python connection layout")
        return int(pointer)

    def check(self, handle: int) -> None:
        errno = int(self._lib.mysql_errno(handle))
        if errno:
            message = (self._lib.mysql_error(handle) or b"").decode("utf-8", "replace")
            raise StreamError(errno, message)


class MariaDBConnectorDriver:
    name: DriverName = "mariadbconnector"

    def __init__(self) -> None:
        import mariadb

        self._mariadb = mariadb
        self._lib = _LibMariaDB(tuple(mariadb.__version_info__))
        self.errors: tuple[type[Exception], ...] = (mariadb.Error, StreamError)
        self.interface_errors: tuple[type[Exception], ...] = (mariadb.InterfaceError,)
        self._plugin_dir = os.environ.get("MARIADB_PLUGIN_DIR") or bundled_plugin_dir()

    def connect(self, target: Target) -> Connection:
        options = dict(target.options)
        host = target.host
        if host == "localhost" and "unix_socket" not in options:
            # Connector/C reads the name "localhost" as "the default UNIX socket"; the URL
            # means TCP to that host and port, as PyMySQL reads it.
            host = _loopback_address(target.port)
        args: dict[str, Any] = {
            "host": host,
            "port": target.port,
            "user": target.user,
            "password": target.password,
            "connect_timeout": target.connect_timeout,
            "read_timeout": target.read_timeout,
            "write_timeout": target.write_timeout,
            "autocommit": True,  # transactions only as the engine opens them
            "client_flag": 0,  # no MULTI_STATEMENTS
            "local_infile": False,
            # No default_file: Connector/C then reads no option file (~/.my.cnf).
        }
        if target.database is not None:
            args["database"] = target.database
        if self._plugin_dir is not None:
            args["plugin_dir"] = self._plugin_dir
        wants_tls = any(key.startswith("ssl_") for key in options)  # as PyMySQL reads them
        verify = any(
            options.pop(key, "false").lower() in ("true", "1", "yes", "on")
            for key in ("ssl_verify_cert", "ssl_verify_identity")
        )
        if options.pop("ssl_key_password", None) is not None:
            raise ValueError("ssl_key_password needs the PyMySQL driver (+pymysql)")
        tls_files = {k: v for k, v in options.items() if k.startswith("ssl_")}
        if wants_tls:  # any ssl_* option: TLS required (Connector/C's `ssl`)
            args.update(tls_files, ssl=True)
            # Connector/C's server certificate check covers the host name as well.
            args["ssl_verify_cert"] = verify
        if "unix_socket" in options:
            args["unix_socket"] = options["unix_socket"]
        conn = _unwrapped(self._mariadb.connect, **args)
        try:
            conn._mcpfs_handle = self._lib.handle(conn)
        except ValueError:
            conn.close()
            raise
        return conn

    def thread_id(self, conn: Connection) -> int:
        return int(conn.connection_id)

    def is_open(self, conn: Connection) -> bool:
        return not conn._closed

    def server_info(self, conn: Connection) -> str:
        return str(conn.server_info)

    def multi_statements(self, conn: Connection) -> bool:
        from mariadb.constants import CLIENT

        return bool(conn.client_capabilities & CLIENT.MULTI_STATEMENTS)

    def fetch(self, conn: Connection, sql: str) -> tuple[tuple[Any, ...], ...]:
        cursor = conn.cursor()  # buffered: mysql_store_result reports its errors
        try:
            _unwrapped(cursor.execute, sql)
            return tuple(cursor.fetchall()) if cursor.field_count else ()
        finally:
            cursor.close()

    def execute(self, conn: Connection, sql: str) -> None:
        """A statement answering OK (SET, START TRANSACTION, KILL QUERY): sent and its
        answer read as Connector/Python's own commit() does, with no cursor to build."""
        _unwrapped(conn._execute_command, sql)
        _unwrapped(conn._read_response)

    def stream(self, conn: Connection, sql: str) -> Stream:
        return _MariaDBStream(conn.cursor(buffered=False), sql, self._lib, conn._mcpfs_handle)

    def reset(self, conn: Connection) -> None:
        _unwrapped(conn.reset)  # COM_RESET_CONNECTION

    def code(self, exc: BaseException) -> int | None:
        errno = getattr(exc, "errno", None)
        return errno if isinstance(errno, int) and errno > 0 else None

    def message(self, exc: BaseException) -> str:
        args: tuple[Any, ...] = getattr(exc, "args", ())
        return args[0] if args and isinstance(args[0], str) else str(exc)


def _loopback_address(port: int) -> str:
    """The first address "localhost" resolves to (127.0.0.1 or ::1)."""
    try:
        found = socket.getaddrinfo("localhost", port, type=socket.SOCK_STREAM)
    except OSError:
        return "127.0.0.1"
    return str(found[0][4][0]) if found else "127.0.0.1"


def _unwrapped(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`call`, with the driver's error raised as itself: Connector/Python reports some
    (a charset it cannot follow after `SET NAMES`) as a SystemError around it."""
    try:
        return call(*args, **kwargs)
    except SystemError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, Exception) and type(cause).__module__.startswith("mariadb"):
            raise cause from None
        raise


class _MariaDBStream:
    def __init__(self, cursor: Any, sql: str, lib: _LibMariaDB, handle: int) -> None:
        self._cursor = cursor
        self._lib = lib
        self._handle = handle
        self._done = False
        try:
            _unwrapped(cursor.execute, sql)  # no data: the text goes as it is (text protocol)
        except Exception as exc:
            # Connector/Python reads ?, %s and %(name)s in code as placeholders even with
            # no data, and refuses the text before sending it (the server would have
            # refused it as a syntax error): say so, and keep the connection.
            if getattr(exc, "errno", 0) or "number of data elements" not in str(exc):
                raise
            raise InvalidRequest(
                "the query holds a placeholder (?, %s or %(name)s) outside a string and "
                "no params: pass params, or quote the text"
            ) from None
        self.columns: list[ResultColumn] = []
        self._converters: list[tuple[int, Callable[[Any], Any]]] = []
        if not cursor.field_count:
            self._done = True
            return
        meta = cursor.metadata
        for index, described in enumerate(cursor.description):
            # MariaDB's JSON is a LONGTEXT on the wire (described as 245 from its extended
            # type): text, as PyMySQL reads it; MySQL's JSON type is JSON.
            type_code, flags, charset = described[1], described[7], meta["charset"][index]
            if type_code == _JSON and meta["type"][index] != _JSON:
                type_code = meta["type"][index]
            self.columns.append(
                ResultColumn(name=described[0], type=column_type(type_code, flags, charset))
            )
            if flags & _FLAG_SET:
                self._converters.append((index, _set_members))
            elif type_code == _BIT:
                self._converters.append((index, _bits))
            elif type_code == _TIME:
                self._converters.append((index, _time_text(described[5])))
            elif type_code == _JSON:
                self._converters.append((index, _json))

    def fetchmany(self, size: int) -> Sequence[Row]:
        if self._done:
            return []
        rows: Sequence[Row] = _unwrapped(self._cursor.fetchmany, size)
        if len(rows) < size:
            self._done = True
            self._lib.check(self._handle)  # the end, or an error the fetch swallowed
        if self._converters and rows:
            converted = []
            for row in rows:
                values = list(row)
                for index, convert in self._converters:
                    values[index] = convert(values[index])
                converted.append(values)
            return converted
        return rows

    def unread(self) -> bool:
        return not self._done

    def finish(self) -> None:
        self._done = True
        self._cursor.close()  # drains what the server sent before it stopped

    def close(self) -> None:
        self._cursor.close()


def _time_text(decimals: int) -> Callable[[dt.timedelta | None], str | None]:
    """TIME as the server writes it ('838:59:59', '-01:00:00.500'): a duration, not a
    time of day."""
    digits = decimals if 0 < decimals <= 6 else 0

    def text(value: dt.timedelta | None) -> str | None:
        if value is None:
            return None
        micros = value // dt.timedelta(microseconds=1)
        sign = "-" if micros < 0 else ""
        seconds, fraction = divmod(abs(micros), 1_000_000)
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        tail = f".{fraction:06d}"[: digits + 1] if digits else ""
        return f"{sign}{hours:02d}:{minutes:02d}:{secs:02d}{tail}"

    return text


# --- PyMySQL -------------------------------------------------------------------------

# The protocol's session reset (MariaDB 10.2.4+, MySQL 5.7.3+); PyMySQL has no name for it.
COM_RESET_CONNECTION = 0x1F


class PyMySQLDriver:
    name: DriverName = "pymysql"

    def __init__(self) -> None:
        import pymysql
        import pymysql.cursors

        self._pymysql = pymysql
        self.errors: tuple[type[Exception], ...] = (pymysql.MySQLError,)
        self.interface_errors: tuple[type[Exception], ...] = (pymysql.err.InterfaceError,)

    def connect(self, target: Target) -> Connection:
        args: dict[str, Any] = {
            "host": target.host,
            "port": target.port,
            "user": target.user,
            "password": target.password,
            "database": target.database,
            "charset": "utf8mb4",
            "autocommit": True,  # transactions only as the engine opens them
            "client_flag": 0,  # PyMySQL's defaults, which hold no MULTI_STATEMENTS
            "local_infile": False,
            "connect_timeout": target.connect_timeout,
            "read_timeout": target.read_timeout,
            "write_timeout": target.write_timeout,
            "program_name": target.program_name,
            "read_default_file": None,  # never ~/.my.cnf
        }
        for key, value in target.options.items():
            if key in ("ssl_verify_cert", "ssl_verify_identity"):
                args[key] = value.lower() in ("true", "1", "yes", "on")
            else:
                args[key] = value
        return self._pymysql.connect(**args)

    def thread_id(self, conn: Connection) -> int:
        return int(conn.thread_id())

    def is_open(self, conn: Connection) -> bool:
        return bool(conn.open)

    def server_info(self, conn: Connection) -> str:
        return str(conn.get_server_info())

    def multi_statements(self, conn: Connection) -> bool:
        from pymysql.constants import CLIENT

        return bool(conn.client_flag & CLIENT.MULTI_STATEMENTS)

    def fetch(self, conn: Connection, sql: str) -> tuple[tuple[Any, ...], ...]:
        with conn.cursor() as cursor:
            cursor.execute(sql)  # no args: PyMySQL does no %-formatting
            return tuple(cursor.fetchall())

    def execute(self, conn: Connection, sql: str) -> None:
        with conn.cursor() as cursor:
            cursor.execute(sql)

    def stream(self, conn: Connection, sql: str) -> Stream:
        return _PyMySQLStream(self._pymysql.cursors.SSCursor(conn), sql)

    def reset(self, conn: Connection) -> None:
        conn._execute_command(COM_RESET_CONNECTION, b"")
        conn._read_ok_packet()

    def code(self, exc: BaseException) -> int | None:
        args: tuple[Any, ...] = getattr(exc, "args", ())
        return args[0] if args and isinstance(args[0], int) else None

    def message(self, exc: BaseException) -> str:
        args: tuple[Any, ...] = getattr(exc, "args", ())
        if len(args) >= 2 and isinstance(args[1], str):
            return args[1]
        return str(exc)


class _PyMySQLStream:
    def __init__(self, cursor: Any, sql: str) -> None:
        self._cursor = cursor
        cursor.execute(sql)  # no args: PyMySQL does no %-formatting
        self.columns = _prepare_pymysql_columns(cursor)
        self.fetchmany = cursor.fetchmany

    def unread(self) -> bool:
        result = self._cursor._result
        return result is not None and bool(result.unbuffered_active)

    def finish(self) -> None:
        self._cursor._result._finish_unbuffered_query()

    def close(self) -> None:
        self._cursor.close()


def _prepare_pymysql_columns(cursor: Any) -> list[ResultColumn]:
    """Column names and types, and each column's decoding made JSON-friendly before the
    first row is read: BIT as an integer, TIME as the server's text ('838:59:59' is no
    time of day), JSON as JSON, SET as a list; the rest as PyMySQL decodes them."""
    result = cursor._result
    if result is None or not getattr(result, "fields", None):  # no result set (an OK)
        return []
    columns: list[ResultColumn] = []
    for index, described in enumerate(result.fields):
        type_code, flags = described.type_code, described.flags
        name = column_type(type_code, flags, described.charsetnr)
        encoding = result.converters[index][0]
        if type_code == _BIT:
            result.converters[index] = (None, _bits)
        elif type_code == _TIME:
            result.converters[index] = ("ascii", None)
        elif type_code == _JSON:
            result.converters[index] = (encoding, json.loads)
        elif flags & _FLAG_SET:
            result.converters[index] = (encoding, _set_members)
        columns.append(ResultColumn(name=described.name, type=name))
    return columns
