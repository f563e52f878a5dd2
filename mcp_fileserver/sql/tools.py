"""The SQL tools: thin adapters from MCP calls to the backends of each configured database.

Every call that touches a database goes through its `DatabaseSlots` (slots.py): its own
connections and worker threads, its deadline set on arrival, cancellation honoured."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Protocol

from fastmcp import FastMCP
from fastmcp.tools import FunctionTool, ToolResult
from loguru import logger
from mcp.types import TextContent, ToolAnnotations
from pydantic import Field

from mcp_fileserver.config import DatabaseConfig, Settings
from mcp_fileserver.errors import InvalidRequest
from mcp_fileserver.sandbox.ruleset import importable_once_sandboxed
from mcp_fileserver.secrets import SecretStore
from mcp_fileserver.sql.control import CallControl
from mcp_fileserver.sql.models import (
    DatabaseInfo,
    DatabaseList,
    QueryPlan,
    QueryResult,
    TableDescription,
    TableInfo,
    TableList,
)
from mcp_fileserver.sql.slots import DatabaseSlots
from mcp_fileserver.startup_gc import collector_paused

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
MAX_SQL_CHARS = 100_000  # the longest query text accepted

Scalar = str | int | float | bool | None
DatabaseName = Annotated[
    str, Field(min_length=1, max_length=64, description="a name from list_databases")
]
Sql = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_SQL_CHARS,
        description="one read-only statement: SELECT, VALUES or WITH ... SELECT",
    ),
]
QueryParams = Annotated[
    list[Scalar] | dict[str, Scalar] | None,
    Field(
        description="values bound by the driver, never formatted into the SQL. SQLite: a "
        "list for ? placeholders or an object for :name; PostgreSQL: a list for $1, $2, "
        "...; MariaDB and MySQL: a list for %s or an object for %(name)s"
    ),
]


class Backend(Protocol):
    config: DatabaseConfig

    def list_tables(self, control: CallControl | None = None) -> list[TableInfo]: ...
    def describe_table(
        self, table: str, control: CallControl | None = None
    ) -> TableDescription: ...
    def run_query(
        self,
        sql: str,
        params: list[Scalar] | dict[str, Scalar] | None,
        max_rows: int,
        control: CallControl | None = None,
    ) -> QueryResult: ...
    def explain(
        self,
        sql: str,
        params: list[Scalar] | dict[str, Scalar] | None,
        control: CallControl | None = None,
    ) -> QueryPlan: ...
    def close(self) -> None: ...


def _output_schema(model: type[QueryResult]) -> dict[str, Any] | None:
    """The output schema fastmcp derives for `model`, for a tool returning a ToolResult."""

    async def probe() -> QueryResult:
        raise NotImplementedError  # never called: only its signature is read

    return FunctionTool.from_function(probe).output_schema


QUERY_RESULT_SCHEMA = _output_schema(QueryResult)


def query_answer(result: QueryResult) -> ToolResult:
    """The MCP answer of `run_query`, built in the worker thread.

    Structured content: the complete `QueryResult`. Text (what a model reads): one line
    saying what came back, the column names and types once, then the rows as one compact
    JSON array of arrays, the very text the byte limit counted: no key repeated per row,
    strings quoted, null distinct from "null". Built with `model_construct`: both parts
    are JSON-safe by construction, and walking 10,000 rows again to check costs more
    than fetching them.
    """
    rows_json = result._rows_json
    if rows_json is None:
        rows_json = json.dumps(result.rows, ensure_ascii=False, separators=(",", ":"))
    if result.truncated_reason == "max_rows":
        status = "more rows exist (max_rows reached): narrow the query or page with LIMIT/OFFSET"
    elif result.truncated_reason == "max_result_bytes":
        status = (
            "more rows exist (max_result_bytes reached): select fewer columns or page "
            "with LIMIT/OFFSET"
        )
    else:
        status = "complete"
    names = json.dumps([c.name for c in result.columns], ensure_ascii=False)
    types = json.dumps([c.type for c in result.columns], ensure_ascii=False)
    note = f"\nnote: {result.encoding_note}" if result.encoding_note else ""
    text = (
        f"{result.row_count} row(s) from {result.database}, {status}; "
        f"{result.elapsed_ms:g} ms{note}\ncolumns: {names}\ntypes: {types}\nrows: {rows_json}"
    )
    structured = {
        "database": result.database,
        "columns": [{"name": c.name, "type": c.type} for c in result.columns],
        "rows": result.rows,
        "row_count": result.row_count,
        "truncated": result.truncated,
        "truncated_reason": result.truncated_reason,
        "elapsed_ms": result.elapsed_ms,
        "encoding_note": result.encoding_note,
    }
    return ToolResult.model_construct(
        content=[TextContent(type="text", text=text)],
        structured_content=structured,
        meta=None,
        is_error=False,
    )


# The top-level packages each engine's backend module loads. Such an engine's stack
# (sqlglot and the guard, the driver, pglast) loads on its database's first call, not at
# startup: it is a third of an idle server's memory (bench/RESULTS.md, issue 15), and a
# configured database may never be queried. An engine not listed here, or one whose
# packages the sandbox would not let be imported later, loads while the server is built.
DEFERRED_ENGINE_PACKAGES: dict[str, tuple[str, ...]] = {
    "sqlite": ("sqlglot",),
    "postgresql": ("sqlglot", "pglast", "psycopg", "psycopg_binary"),
    # Both drivers (sql/mysql_drivers.py): a URL picks one, the other stays unloaded.
    "mariadb": ("sqlglot", "mariadb", "pymysql"),
    "mysql": ("sqlglot", "mariadb", "pymysql"),
}


def engine_loads_on_first_call(engine: str) -> bool:
    """Whether `engine`'s stack may wait for its first call: listed, and each of its
    packages still importable once the sandbox is on (docs/sandbox.md)."""
    packages = DEFERRED_ENGINE_PACKAGES.get(engine)
    return packages is not None and all(importable_once_sandboxed(p) for p in packages)


class LazyBackend:
    """One slot's backend, built (its engine's modules imported) on the slot's first
    call, in that call's worker thread, so the event loop keeps serving meanwhile.
    A slot serves one call at a time (slots.py): building needs no lock."""

    def __init__(self, config: DatabaseConfig, build: Callable[[], Backend]) -> None:
        self.config = config
        self._build = build
        self._backend: Backend | None = None

    def backend(self) -> Backend:
        if self._backend is None:
            # Long-lived, like what startup builds: imported without cyclic collections,
            # then frozen so that later full collections do not rescan it (startup_gc.py).
            with collector_paused():
                self._backend = self._build()
        return self._backend

    def list_tables(self, control: CallControl | None = None) -> list[TableInfo]:
        return self.backend().list_tables(control)

    def describe_table(self, table: str, control: CallControl | None = None) -> TableDescription:
        return self.backend().describe_table(table, control)

    def run_query(
        self,
        sql: str,
        params: list[Scalar] | dict[str, Scalar] | None,
        max_rows: int,
        control: CallControl | None = None,
    ) -> QueryResult:
        return self.backend().run_query(sql, params, max_rows, control)

    def explain(
        self,
        sql: str,
        params: list[Scalar] | dict[str, Scalar] | None,
        control: CallControl | None = None,
    ) -> QueryPlan:
        return self.backend().explain(sql, params, control)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


def open_backend(
    config: DatabaseConfig,
    secrets: SecretStore,
    *,
    enforce_guard: bool = True,
    enforce_function_policy: bool = True,
) -> Backend:
    """The backend for one database; nothing connects until the first call. Each
    engine's module is imported here, so it loads only when that engine is used."""
    if config.engine == "sqlite":
        from mcp_fileserver.sql.sqlite import SQLiteDatabase

        return SQLiteDatabase(config, secrets, enforce_guard=enforce_guard)
    if config.engine in ("mariadb", "mysql"):
        from mcp_fileserver.sql.mysql import MySQLDatabase

        return MySQLDatabase(config, secrets, enforce_guard=enforce_guard)
    from mcp_fileserver.sql.postgres import PostgresDatabase

    return PostgresDatabase(
        config,
        secrets,
        enforce_guard=enforce_guard,
        enforce_function_policy=enforce_function_policy,
    )


def register_sql_tools(
    mcp: FastMCP,
    settings: Settings,
    *,
    _enforce_guard_for_tests: bool = True,
    _enforce_function_policy_for_tests: bool = True,
) -> dict[str, DatabaseSlots[Backend]]:
    """Register the five SQL tools; returns each database's slots by name.

    The `_for_tests` flags switch layer 1 (the guard) or the PostgreSQL function policy
    off so the tests can show that each remaining layer stands alone. They are not
    reachable from any configuration.
    """

    def slot_backend(db: DatabaseConfig) -> Backend:
        build = partial(
            open_backend,
            db,
            settings.secrets,
            enforce_guard=_enforce_guard_for_tests,
            enforce_function_policy=_enforce_function_policy_for_tests,
        )
        lazy = LazyBackend(db, build)
        if not engine_loads_on_first_call(db.engine):
            lazy.backend()  # now, before the sandbox
        return lazy

    databases: dict[str, DatabaseSlots[Backend]] = {}
    for db in settings.databases:
        if db.allow_privileged_role and db.engine != "sqlite":
            logger.warning(
                "database {}: allow_privileged_role = true: a role with more than read "
                "privileges is accepted; only the other layers keep it read-only",
                db.name,
            )
        databases[db.name] = DatabaseSlots(db, partial(slot_backend, db))
    listing = DatabaseList(
        databases=[
            DatabaseInfo(name=db.name, engine=db.engine, description=db.description)
            for db in settings.databases
        ]
    )

    def lookup(name: str) -> DatabaseSlots[Backend]:
        found = databases.get(name)
        if found is None:
            raise InvalidRequest(
                f"unknown database {name!r}: call list_databases for the configured names"
            )
        return found

    @mcp.tool(annotations=READ_ONLY)
    def list_databases() -> DatabaseList:
        """The databases you may query: name, engine (sqlite, postgresql, mariadb or mysql),
        description."""
        return listing

    @mcp.tool(annotations=READ_ONLY)
    async def list_tables(database: DatabaseName) -> TableList:
        """Tables and views in a database (with their schema, or MariaDB/MySQL database)."""
        tables = await lookup(database).call(lambda db, control: db.list_tables(control))
        return TableList(database=database, tables=tables)

    @mcp.tool(annotations=READ_ONLY)
    async def describe_table(
        database: DatabaseName,
        table: Annotated[
            str,
            Field(
                min_length=1,
                max_length=256,
                description="a table or view name; on PostgreSQL optionally schema.table, on "
                "MariaDB/MySQL optionally database.table",
            ),
        ],
    ) -> TableDescription:
        """Columns (type, nullability, default), primary key, foreign keys and indexes."""
        return await lookup(database).call(lambda db, control: db.describe_table(table, control))

    @mcp.tool(annotations=READ_ONLY, output_schema=QUERY_RESULT_SCHEMA)
    async def run_query(
        database: DatabaseName,
        sql: Sql,
        params: QueryParams = None,
        max_rows: Annotated[
            int | None,
            Field(ge=1, description="return at most this many rows (capped by the server)"),
        ] = None,
    ) -> ToolResult:
        """Run one read-only query and return its rows as JSON-safe values.

        Writes, schema changes, several statements, file or extension functions are
        refused. Results stop at the database's row, byte and time limits; `truncated`
        says when rows were left out.
        """
        chosen = lookup(database)
        limit = min(max_rows or chosen.config.max_rows, chosen.config.max_rows)
        return await chosen.call(
            lambda db, control: query_answer(db.run_query(sql, params, limit, control))
        )

    @mcp.tool(annotations=READ_ONLY)
    async def explain_query(
        database: DatabaseName, sql: Sql, params: QueryParams = None
    ) -> QueryPlan:
        """The engine's plan for a read-only query, without running it (no ANALYZE)."""
        return await lookup(database).call(lambda db, control: db.explain(sql, params, control))

    return databases
