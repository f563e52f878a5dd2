"""Fixtures for the SQL tests: a SQLite file, a real PostgreSQL 15, clients with and
without layer 1, and snapshots that prove an attack changed nothing."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client, FastMCP

from mcp_fileserver.config import Settings
from mcp_fileserver.framework import map_refusals
from mcp_fileserver.sql.postgres import PostgresDatabase
from mcp_fileserver.sql.tools import register_sql_tools
from tests.conftest import in_memory_client, make_settings
from tests.sql.mariadb_server import MariaDB, start_server, stop_server
from tests.sql.pg_cluster import Cluster, start_cluster, stop_cluster

SQLITE_SCHEMA = """
CREATE TABLE authors (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    country TEXT NOT NULL DEFAULT 'unknown',
    updated_at TEXT
);
CREATE TABLE books (
    id INTEGER PRIMARY KEY,
    author_id INTEGER NOT NULL REFERENCES authors(id),
    title TEXT NOT NULL,
    price NUMERIC,
    cover BLOB
);
CREATE INDEX books_author ON books(author_id);
CREATE VIEW book_titles AS SELECT b.title, a.name FROM books b JOIN authors a ON a.id = b.author_id;
CREATE TABLE big (n INTEGER PRIMARY KEY, h TEXT);
INSERT INTO authors (id, name, country, updated_at) VALUES
    (1, 'Chinua Achebe', 'Nigeria', '2026-01-01'),
    (2, 'Ursula K. Le Guin', 'United States', '2026-01-02'),
    (3, 'Haruki Murakami', 'Japan', NULL);
INSERT INTO books (author_id, title, price, cover) VALUES
    (1, 'Things Fall Apart', 10.99, x'89504e47'),
    (2, 'A Wizard of Earthsea', 9.99, NULL),
    (3, 'Norwegian Wood', 15.95, NULL);
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 20000)
INSERT INTO big SELECT n, hex(randomblob(16)) FROM g;
"""


# The attack suites send dozens of refused queries in a row: the audit monitor would (rightly)
# lock the client out and the rate limiter slow it down. Both are tested in tests/audit.
NO_LOCKOUT = """
[monitor]
enabled = false

[rate_limit]
enabled = false
"""

_TEMPLATE: dict[str, bytes] = {}


def build_sqlite(path: Path) -> Path:
    """The test database at `path`: built once per session, then copied byte for byte."""
    if "db" not in _TEMPLATE:
        conn = sqlite3.connect(":memory:")
        conn.executescript(SQLITE_SCHEMA)
        _TEMPLATE["db"] = conn.serialize()
        conn.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_TEMPLATE["db"])
    return path


def folder_snapshot(folder: Path) -> dict[str, str]:
    """Every file beneath `folder` with its SHA-256: equal snapshots, nothing changed."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@dataclass
class SqliteSetup:
    folder: Path
    db: Path
    config: Path
    settings: Settings


def sqlite_settings(
    tmp: Path, *, timeout_s: float = 1.0, max_rows: int = 100, max_result_bytes: int = 65536
) -> SqliteSetup:
    folder = tmp / "data"
    db = build_sqlite(folder / "shop.db")
    config = tmp / "mcp.toml"
    config.write_text(
        f"""
[databases.shop]
url = "sqlite:///{db}"
description = "test shop"
max_rows = {max_rows}
max_result_bytes = {max_result_bytes}
timeout_s = {timeout_s}
{NO_LOCKOUT}""",
        encoding="utf-8",
    )
    settings = make_settings(config=config, log_dir=tmp / "logs")
    return SqliteSetup(folder=folder, db=db, config=config, settings=settings)


@pytest.fixture
def sqlite_setup(tmp_path: Path) -> SqliteSetup:
    return sqlite_settings(tmp_path)


@asynccontextmanager
async def sql_client(
    settings: Settings, *, guard: bool = True, function_policy: bool | None = None
) -> AsyncIterator[Client]:
    """The real server (every layer), or only the SQL tools with layer 1 (the guard)
    switched off, and the PostgreSQL function policy too unless `function_policy`."""
    policy = guard if function_policy is None else function_policy
    if guard and policy:
        async with in_memory_client(settings) as client:
            yield client
        return
    mcp = FastMCP("sql-layer2-only", strict_input_validation=True, mask_error_details=True)
    backends = register_sql_tools(
        mcp,
        settings,
        _enforce_guard_for_tests=guard,
        _enforce_function_policy_for_tests=policy,
    )
    map_refusals(mcp)  # as build_server does
    try:
        async with Client(mcp) as client:
            yield client
    finally:
        for slots in backends.values():
            for backend in slots.backends:
                backend.close()


async def call(client: Client, tool: str, **arguments: Any) -> Any:
    return await client.call_tool(tool, arguments, raise_on_error=False)


def error_text(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


# --- PostgreSQL ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _close_postgres_sessions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A server keeps one session per database for its lifetime; a test's server is
    dropped, not shut down, so close its sessions before the throwaway cluster runs out
    of connection slots."""
    opened: list[PostgresDatabase] = []
    original = PostgresDatabase.__init__

    def recording(self: PostgresDatabase, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(PostgresDatabase, "__init__", recording)
    yield
    for database in opened:
        database.close()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


def pg_settings(
    cluster: Cluster,
    tmp: Path,
    *,
    role: str = "reader",
    timeout_s: float = 1.0,
    max_rows: int = 100,
    max_result_bytes: int = 65536,
    port: int | None = None,
    dbname: str | None = None,
    extra: str = "",
) -> Settings:
    """Settings for database `pg` (the cluster's `shop`, or `dbname`); `extra` adds lines to
    its [databases.pg] table."""
    password = cluster.reader_password if role == "reader" else cluster.writer_password
    url = cluster.url(role, "PG_TEST_PASSWORD")
    if port is not None:
        url = url.replace(f":{cluster.port}/", f":{port}/")
    if dbname is not None:
        url = url.rsplit("/", 1)[0] + f"/{dbname}"
    config = tmp / f"pg-{role}.toml"
    config.write_text(
        f"""
[databases.pg]
url = "{url}"
description = "test postgres"
max_rows = {max_rows}
max_result_bytes = {max_result_bytes}
timeout_s = {timeout_s}
{extra}
{NO_LOCKOUT}""",
        encoding="utf-8",
    )
    return make_settings(config=config, log_dir=tmp / "logs", env={"PG_TEST_PASSWORD": password})


def pg_fingerprint(cluster: Cluster) -> dict[str, Any]:
    """Everything an attack could change, read as the superuser."""
    with cluster.admin() as conn:

        def one(sql: str) -> Any:
            row = conn.execute(sql).fetchone()
            return row[0] if row else None

        return {
            "authors": one("SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM authors t"),
            "books": one("SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM books t"),
            "big": one("SELECT count(*)::text || ':' || sum(n)::text FROM big"),
            "relations": one(
                "SELECT string_agg(relname || ':' || relkind::text || ':'"
                " || relpersistence::text, ',' ORDER BY relname)"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
            ),
            "sequence": one("SELECT last_value::text || ':' || is_called::text FROM counter"),
            "large_objects": one("SELECT count(*) FROM pg_largeobject_metadata"),
            "role_settings": one(
                "SELECT coalesce(string_agg(array_to_string(setconfig, ';'), '|'), '')"
                " FROM pg_db_role_setting"
            ),
            "prepared_xacts": one("SELECT count(*) FROM pg_prepared_xacts"),
        }


# --- MariaDB ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _close_mysql_sessions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As for PostgreSQL: close the sessions of each test's dropped servers."""
    from mcp_fileserver.sql.mysql import MySQLDatabase

    opened: list[MySQLDatabase] = []
    original = MySQLDatabase.__init__

    def recording(self: MySQLDatabase, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(MySQLDatabase, "__init__", recording)
    yield
    for database in opened:
        database.close()


# The URL scheme mariadb_settings writes: `mariadb://` (the default driver, MariaDB
# Connector/Python) unless a test asks for the `mysql_driver` fixture.
MYSQL_DRIVERS = ("mariadbconnector", "pymysql")
_MARIADB_SCHEME = {"scheme": "mariadb"}


@pytest.fixture(params=MYSQL_DRIVERS)
def mysql_driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per driver: mariadb_settings then writes mariadb+<driver>://."""
    monkeypatch.setitem(_MARIADB_SCHEME, "scheme", f"mariadb+{request.param}")
    return str(request.param)


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    server = start_server()
    try:
        yield server
    finally:
        stop_server(server)


def mariadb_settings(
    server: MariaDB,
    tmp: Path,
    *,
    account: str = "reader",
    timeout_s: float = 1.0,
    max_rows: int = 100,
    max_result_bytes: int = 65536,
    max_concurrent_queries: int = 4,
    url: str | None = None,
    extra: str = "",
) -> Settings:
    """Settings for database `maria` (the server's `shop` as `account`); `extra` adds
    lines to its [databases.maria] table."""
    config = tmp / f"maria-{account}.toml"
    chosen = url or server.url(account, "MARIADB_TEST_PASSWORD")
    if chosen.startswith("mariadb://"):
        chosen = _MARIADB_SCHEME["scheme"] + chosen.removeprefix("mariadb")
    config.write_text(
        f"""
[databases.maria]
url = "{chosen}"
description = "test mariadb"
max_rows = {max_rows}
max_result_bytes = {max_result_bytes}
timeout_s = {timeout_s}
max_concurrent_queries = {max_concurrent_queries}
{extra}
{NO_LOCKOUT}""",
        encoding="utf-8",
    )
    return make_settings(
        config=config,
        log_dir=tmp / "logs",
        env={"MARIADB_TEST_PASSWORD": server.passwords.get(account, "")},
    )
