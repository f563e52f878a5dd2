"""SQLite backend: layer 2 on its own, and the row/byte/time limits.

Read-only without trusting the guard:
- opened as `file:PATH?mode=ro` (URI): the file is never opened for writing. Not
  `immutable=1`: that would skip locking and change detection, and a database another
  program is writing could then be read torn. The price is that SQLite takes a shared
  lock while reading, as any reader does. One exception: a WAL database that no writer
  has open (no -wal/-shm files) is opened immutable, because a WAL reader would create
  those two files; it is reopened normally once a writer's files appear.
- an authorizer that allows only SELECT, reads of tables and columns, recursive CTEs,
  functions not on the deny-list and a few read-only PRAGMAs; everything else (writes,
  schema changes, ATTACH/DETACH, transactions, savepoints, ANALYZE, REINDEX, VACUUM,
  other PRAGMAs) is denied when the statement is compiled, before it can run.
- extensions disabled, `query_only=ON`.
- `setlimit`: no attached databases, a cap on one value's size (so `randomblob(2e9)` and
  friends fail at once), on the SQL text's length and on LIKE/GLOB patterns.
- no single function call runs unbounded: the value cap bounds the linear ones; printf,
  format and the quadratic built-ins are bounded wrappers (sqlite_printf.py,
  sqlite_functions.py). `trusted_schema` stays ON so that views may call those wrappers:
  every application function registered here is pure, and the authorizer's deny-list
  applies to functions inside views and triggers as well.
- a progress handler that interrupts the statement past its deadline or when the call is
  cancelled, and the watchdog (control.py) that calls `interrupt()` at the deadline, which
  SQLite checks at every loop jump, even where a long run of function calls leaves the
  progress handler silent.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

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
from mcp_fileserver.sql.backend import DatabaseBackend, Params, T, elapsed_ms
from mcp_fileserver.sql.control import CallControl
from mcp_fileserver.sql.denylist import SQLITE_DENIED_TABLES, SQLITE_FUNCTIONS
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
from mcp_fileserver.sql.sqlite_functions import BoundedFunctions
from mcp_fileserver.sql.sqlite_printf import BoundedPrintf
from mcp_fileserver.sql.sqlite_types import declared_types

# The largest single string or blob SQLite may build or read (SQLITE_LIMIT_LENGTH), unless
# the database's max_result_bytes is larger. Building one costs up to ~0.1-0.3 s, the
# margin by which one function call may overrun the deadline.
MAX_VALUE_BYTES = 16 * 1024 * 1024
MAX_SQL_BYTES = 1024 * 1024  # SQLITE_LIMIT_SQL_LENGTH
MAX_LIKE_PATTERN = 10_000  # SQLITE_LIMIT_LIKE_PATTERN_LENGTH (LIKE/GLOB work is text x pattern)
# VM instructions between two checks of the deadline by the progress handler, a backup of
# the watchdog (control.py), whose interrupt() needs no GIL. Each check takes the GIL: every
# 1000 instructions, two busy queries starved the event loop (a file read took 1 s).
PROGRESS_STEPS = 100_000
MAX_TABLES = 10_000  # list_tables stops here

# PRAGMAs that only read, whatever their argument; describe_table uses them.
READ_ONLY_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
)


class SQLiteDatabase(DatabaseBackend):
    """One configured SQLite file, opened lazily, used by one thread at a time."""

    dialect = Dialect.SQLITE

    def __init__(
        self, config: DatabaseConfig, secrets: SecretStore, *, enforce_guard: bool = True
    ) -> None:
        super().__init__(config, secrets, enforce_guard=enforce_guard)
        self._conn: sqlite3.Connection | None = None
        self._control: CallControl | None = None  # the call running now
        self._printf: BoundedPrintf | None = None
        self._functions: BoundedFunctions | None = None
        self._immutable = False

    # --- tools -------------------------------------------------------------------

    def list_tables(self, control: CallControl | None = None) -> list[TableInfo]:
        def run(conn: sqlite3.Connection) -> list[TableInfo]:
            rows = conn.execute(
                "SELECT name, type FROM sqlite_schema WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name LIMIT ?",
                (MAX_TABLES,),
            ).fetchall()
            return [TableInfo(name=name, kind=kind) for name, kind in rows]

        return self._run(run, control)

    def describe_table(self, table: str, control: CallControl | None = None) -> TableDescription:
        def run(conn: sqlite3.Connection) -> TableDescription:
            found = conn.execute(
                "SELECT name, type FROM sqlite_schema WHERE type IN ('table', 'view') "
                "AND name = ? COLLATE NOCASE ORDER BY name = ? DESC LIMIT 1",
                (table, table),
            ).fetchone()
            if found is None:
                raise NotAllowed(
                    detail=f"no table {table!r} in {self.config.name}", violation=False
                )
            name, kind = found
            quoted = _quote_identifier(name)
            info = conn.execute(f"PRAGMA table_info({quoted})").fetchall()
            columns = [
                ColumnInfo(
                    name=col_name,
                    type=col_type or "",
                    # An INTEGER PRIMARY KEY is the rowid: never NULL, though not NOT NULL.
                    nullable=not notnull and not (pk and (col_type or "").upper() == "INTEGER"),
                    default=default,
                    primary_key=bool(pk),
                )
                for _cid, col_name, col_type, notnull, default, pk in info
            ]
            primary_key = [row[1] for row in sorted((r for r in info if r[5]), key=lambda r: r[5])]
            foreign_keys: dict[int, ForeignKey] = {}
            for fk_id, _seq, ref_table, from_col, to_col, *_ in conn.execute(
                f"PRAGMA foreign_key_list({quoted})"
            ).fetchall():
                fk = foreign_keys.setdefault(
                    fk_id,
                    ForeignKey(columns=[], references_table=ref_table, references_columns=[]),
                )
                fk.columns.append(from_col)
                fk.references_columns.append(to_col or "")
            indexes = []
            for _seq, index_name, unique, _origin, _partial in conn.execute(
                f"PRAGMA index_list({quoted})"
            ).fetchall():
                index_columns = conn.execute(
                    f"PRAGMA index_info({_quote_identifier(index_name)})"
                ).fetchall()
                indexes.append(
                    IndexInfo(
                        name=index_name,
                        columns=[c[2] or "<expression>" for c in index_columns],
                        unique=bool(unique),
                    )
                )
            return TableDescription(
                database=self.config.name,
                name=name,
                kind=kind,
                columns=columns,
                primary_key=primary_key,
                foreign_keys=list(foreign_keys.values()),
                indexes=indexes,
            )

        return self._run(run, control)

    def run_query(
        self, sql: str, params: Params, max_rows: int, control: CallControl | None = None
    ) -> QueryResult:
        self._guard(sql)

        def run(conn: sqlite3.Connection) -> QueryResult:
            started = time.perf_counter()
            cursor = conn.execute(sql, _bindable(params))
            try:
                names = [d[0] for d in cursor.description or ()]
                types = declared_types(conn, sql, len(names))
                columns = [
                    ResultColumn(name=name, type=decl)
                    for name, decl in zip(names, types, strict=True)
                ]
                collected = collect_rows(
                    cursor.fetchmany, max_rows=max_rows, max_bytes=self.config.max_result_bytes
                )
            finally:
                cursor.close()
            return self._query_result(columns, collected, started)

        return self._run(run, control)

    def explain(self, sql: str, params: Params, control: CallControl | None = None) -> QueryPlan:
        self._guard(sql)

        def run(conn: sqlite3.Connection) -> QueryPlan:
            started = time.perf_counter()
            # The prefix compiles the query (authorizer included) without running it.
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql, _bindable(params)).fetchall()
            return QueryPlan(
                database=self.config.name,
                plan=_render_plan(rows),
                elapsed_ms=elapsed_ms(started),
            )

        return self._run(run, control)

    # --- engine ------------------------------------------------------------------

    def _run(
        self, work: Callable[[sqlite3.Connection], T], control: CallControl | None = None
    ) -> T:
        control = control or CallControl(self.config.timeout_s)
        with self._lock:
            conn = self._connection()
            assert self._printf is not None and self._functions is not None
            self._printf.problem = self._functions.problem = None
            self._control = control
            try:
                with control.bound(conn.interrupt):
                    return work(conn)
            except Refusal:
                raise
            except sqlite3.Warning as exc:  # Python 3.11: "one statement at a time"
                raise PolicyViolation(f"refused by SQLite: {self._clean(exc)}") from None
            except sqlite3.Error as exc:
                raise self._refusal(exc, control) from None
            finally:
                self._control = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._immutable and _has_wal_files(self.config.path):
            self._drop_connection()  # a writer appeared: read through its WAL from now on
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        path = self.config.path
        assert path is not None
        if not path.is_file():
            raise Unavailable(
                f"database {self.config.name!r} is unavailable: its file is missing",
                detail=str(path),
            )
        # A WAL database with no -wal/-shm beside it (no writer has it open): a reader
        # would create both files. Open it immutable instead, and reopen normally as soon
        # as a writer's files appear (checked before every call).
        self._immutable = _is_wal(path) and not _has_wal_files(path)
        uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
        if self._immutable:
            uri += "&immutable=1"
        try:
            conn = sqlite3.connect(
                uri,
                uri=True,
                isolation_level=None,  # no implicit BEGIN, ever
                check_same_thread=False,  # one thread at a time, under self._lock
                timeout=self.config.timeout_s,  # busy wait on a writer's lock
            )
        except sqlite3.Error as exc:
            raise Unavailable(
                f"database {self.config.name!r} is unavailable: {self._clean(exc)}"
            ) from None
        try:
            if hasattr(conn, "enable_load_extension"):
                conn.enable_load_extension(False)
            # ON so that views may call the bounded wrappers below (all pure functions);
            # the authorizer still vets every function a view or trigger calls.
            conn.execute("PRAGMA trusted_schema = ON")
            conn.execute("PRAGMA query_only = ON")
            conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            value_limit = max(MAX_VALUE_BYTES, self.config.max_result_bytes)
            conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, value_limit)
            conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES)
            conn.setlimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, MAX_LIKE_PATTERN)
            # printf('%.*c', 2e9, 'x') would spin for ~30 s where no handler can stop it.
            self._printf = BoundedPrintf(value_limit)
            conn.create_function("printf", -1, self._printf, deterministic=True)
            conn.create_function("format", -1, self._printf, deterministic=True)
            self._functions = BoundedFunctions(value_limit)
            self._functions.register(conn)
            conn.set_authorizer(_authorize)
            conn.set_progress_handler(self._past_deadline, PROGRESS_STEPS)
        except BaseException:
            conn.close()
            raise
        logger.debug("opened SQLite database {} read-only", self.config.name)
        return conn

    def _past_deadline(self) -> int:
        # Non-zero interrupts the running statement ("interrupted").
        control = self._control
        return int(control is not None and (control.stopped or control.remaining() < 0))

    def _refusal(self, exc: sqlite3.Error, control: CallControl) -> Refusal:
        message = self._clean(exc)
        lowered = message.lower()
        if "interrupted" in lowered:
            if control.cancelled:
                return LimitExceeded("query stopped: the call was cancelled")
            return LimitExceeded(
                f"query stopped: it ran past the {control.timeout_s:g} s time limit"
            )
        if "user-defined function raised exception" in lowered:  # only the bounded ones
            problem = (self._printf and self._printf.problem) or (
                self._functions and self._functions.problem
            )
            return LimitExceeded(f"query stopped: {problem or message} (too large)")
        if "too big" in lowered or "too long" in lowered:
            return LimitExceeded(f"query stopped: {message} (a value or the SQL is too large)")
        if "one statement at a time" in lowered:
            return PolicyViolation(f"refused by SQLite: {message}")
        if "not authorized" in lowered or "readonly" in lowered or "read-only" in lowered:
            return PolicyViolation(f"refused by SQLite's read-only policy: {message}")
        if isinstance(exc, sqlite3.OperationalError) and "unable to open" in lowered:
            self._drop_connection()
            return Unavailable(f"database {self.config.name!r} is unavailable: {message}")
        return InvalidRequest(f"SQLite error: {message}")

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._printf is not None:
            self._printf.close()
            self._printf = None
        if self._functions is not None:
            self._functions.close()
            self._functions = None

    def _clean(self, exc_or_text: BaseException | str) -> str:
        """SQLite's messages: the first line only, every known secret masked."""
        text = str(exc_or_text)
        return self._secrets.mask(text.splitlines()[0] if text else type(exc_or_text).__name__)


def _authorize(
    action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None
) -> int:
    """Allow reads only; SQLite calls this while compiling each statement."""
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_READ:
        denied = (arg1 or "").lower() in SQLITE_DENIED_TABLES
        return sqlite3.SQLITE_DENY if denied else sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        denied = SQLITE_FUNCTIONS.denies(arg2 or "")
        return sqlite3.SQLITE_DENY if denied else sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        allowed = (arg1 or "").lower() in READ_ONLY_PRAGMAS
        return sqlite3.SQLITE_OK if allowed else sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_DENY


def _is_wal(path: Path) -> bool:
    """The header's read/write format versions are 2 in WAL mode (offsets 18 and 19)."""
    try:
        with path.open("rb") as fh:
            header = fh.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == 2 and header[19] == 2


def _has_wal_files(path: Path | None) -> bool:
    if path is None:
        return False
    return Path(f"{path}-wal").exists() or Path(f"{path}-shm").exists()


def _bindable(params: Params) -> Sequence[Any] | Mapping[str, Any]:
    if params is None:
        return ()
    return params


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _render_plan(rows: list[tuple[Any, ...]]) -> str:
    """EXPLAIN QUERY PLAN rows (id, parent, notused, detail) as an indented tree."""
    depth: dict[int, int] = {0: -1}
    lines = []
    for node_id, parent, _unused, detail in rows:
        level = depth.get(parent, -1) + 1
        depth[node_id] = level
        lines.append("  " * level + str(detail))
    return "\n".join(lines) or "(empty plan)"
