"""The SQL tools' structured outputs; clients see these as output schemas."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr

Engine = Literal["sqlite", "postgresql", "mariadb", "mysql"]
JsonValue = Any  # None, bool, int, float, str, or lists/objects of these


class DatabaseInfo(BaseModel):
    name: str
    engine: Engine
    description: str


class DatabaseList(BaseModel):
    databases: list[DatabaseInfo]


class TableInfo(BaseModel):
    schema_name: str | None = Field(
        None, description="PostgreSQL schema, MariaDB/MySQL database; None on SQLite"
    )
    name: str
    kind: Literal[
        "table", "view", "materialized view", "foreign table", "partitioned table", "sequence"
    ]


class TableList(BaseModel):
    database: str
    tables: list[TableInfo]


class ColumnInfo(BaseModel):
    name: str
    type: str
    nullable: bool
    default: str | None = Field(None, description="the default expression, as SQL text")
    primary_key: bool


class ForeignKey(BaseModel):
    columns: list[str]
    references_schema: str | None = None
    references_table: str
    references_columns: list[str]


class IndexInfo(BaseModel):
    name: str
    columns: list[str]
    unique: bool


class TableDescription(BaseModel):
    database: str
    schema_name: str | None = Field(None, description="PostgreSQL schema; None on SQLite")
    name: str
    kind: str
    columns: list[ColumnInfo]
    primary_key: list[str]
    foreign_keys: list[ForeignKey]
    indexes: list[IndexInfo]


class ResultColumn(BaseModel):
    name: str
    type: str | None = Field(None, description="the engine's type name, when it reports one")


class QueryResult(BaseModel):
    database: str
    columns: list[ResultColumn]
    rows: list[list[JsonValue]] = Field(
        description="values are JSON-safe: bytes as base64 strings; decimals, dates, "
        "times, intervals and UUIDs as strings; NaN/Infinity as strings"
    )
    row_count: int = Field(description="number of rows returned")
    truncated: bool = Field(description="true when more rows exist than were returned")
    truncated_reason: Literal["max_rows", "max_result_bytes"] | None = None
    elapsed_ms: float
    encoding_note: str | None = Field(
        None,
        description="set when text was not stored in a declared encoding (PostgreSQL "
        "SQL_ASCII): it was decoded as UTF-8 and undecodable bytes replaced",
    )
    # `rows` as the compact JSON the byte limit counted (set by the engines, so the tool
    # layer does not encode the rows a second time); None when built another way.
    _rows_json: str | None = PrivateAttr(default=None)


class QueryPlan(BaseModel):
    database: str
    plan: str = Field(description="the engine's plan as text; the query was not executed")
    elapsed_ms: float
