"""The SQL tools: thin adapters from MCP calls to one backend per configured database."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastmcp import FastMCP
from loguru import logger
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_fileserver.config import DatabaseConfig, Settings
from mcp_fileserver.errors import InvalidRequest
from mcp_fileserver.secrets import SecretStore
from mcp_fileserver.sql.models import (
    DatabaseInfo,
    DatabaseList,
    QueryPlan,
    QueryResult,
    TableDescription,
    TableInfo,
    TableList,
)
from mcp_fileserver.sql.sqlite import SQLiteDatabase

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
        "list for ? placeholders or an object for :name; PostgreSQL: a list for $1, $2, ..."
    ),
]


class Backend(Protocol):
    config: DatabaseConfig

    def list_tables(self) -> list[TableInfo]: ...
    def describe_table(self, table: str) -> TableDescription: ...
    def run_query(
        self, sql: str, params: list[Scalar] | dict[str, Scalar] | None, max_rows: int
    ) -> QueryResult: ...
    def explain(self, sql: str, params: list[Scalar] | dict[str, Scalar] | None) -> QueryPlan: ...
    def close(self) -> None: ...


def open_backend(
    config: DatabaseConfig,
    secrets: SecretStore,
    *,
    enforce_guard: bool = True,
    enforce_function_policy: bool = True,
) -> Backend:
    """The backend for one database; nothing connects until the first call."""
    if config.engine == "sqlite":
        return SQLiteDatabase(config, secrets, enforce_guard=enforce_guard)
    if config.allow_privileged_role:
        logger.warning(
            "database {}: allow_privileged_role = true: a role with more than read "
            "privileges is accepted; only the other layers keep it read-only",
            config.name,
        )
    # psycopg and pglast load only when a PostgreSQL database is configured; this runs
    # while the server is built, never on a request.
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
) -> dict[str, Backend]:
    """Register the five SQL tools; returns the backends by database name.

    The `_for_tests` flags switch layer 1 (the guard) or the PostgreSQL function policy
    off so the tests can show that each remaining layer stands alone. They are not
    reachable from any configuration.
    """
    backends = {
        db.name: open_backend(
            db,
            settings.secrets,
            enforce_guard=_enforce_guard_for_tests,
            enforce_function_policy=_enforce_function_policy_for_tests,
        )
        for db in settings.databases
    }
    listing = DatabaseList(
        databases=[
            DatabaseInfo(name=db.name, engine=db.engine, description=db.description)
            for db in settings.databases
        ]
    )

    def backend(name: str) -> Backend:
        found = backends.get(name)
        if found is None:
            raise InvalidRequest(
                f"unknown database {name!r}: call list_databases for the configured names"
            )
        return found

    @mcp.tool(annotations=READ_ONLY)
    def list_databases() -> DatabaseList:
        """The databases you may query: name, engine (sqlite or postgresql), description."""
        return listing

    @mcp.tool(annotations=READ_ONLY)
    def list_tables(database: DatabaseName) -> TableList:
        """Tables and views in a database (with their schema on PostgreSQL)."""
        return TableList(database=database, tables=backend(database).list_tables())

    @mcp.tool(annotations=READ_ONLY)
    def describe_table(
        database: DatabaseName,
        table: Annotated[
            str,
            Field(
                min_length=1,
                max_length=256,
                description="a table or view name; on PostgreSQL optionally schema.table",
            ),
        ],
    ) -> TableDescription:
        """Columns (type, nullability, default), primary key, foreign keys and indexes."""
        return backend(database).describe_table(table)

    @mcp.tool(annotations=READ_ONLY)
    def run_query(
        database: DatabaseName,
        sql: Sql,
        params: QueryParams = None,
        max_rows: Annotated[
            int | None,
            Field(ge=1, description="return at most this many rows (capped by the server)"),
        ] = None,
    ) -> QueryResult:
        """Run one read-only query and return its rows as JSON-safe values.

        Writes, schema changes, several statements, file or extension functions are
        refused. Results stop at the database's row, byte and time limits; `truncated`
        says when rows were left out.
        """
        chosen = backend(database)
        limit = min(max_rows or chosen.config.max_rows, chosen.config.max_rows)
        return chosen.run_query(sql, params, limit)

    @mcp.tool(annotations=READ_ONLY)
    def explain_query(database: DatabaseName, sql: Sql, params: QueryParams = None) -> QueryPlan:
        """The engine's plan for a read-only query, without running it (no ANALYZE)."""
        return backend(database).explain(sql, params)

    return backends
