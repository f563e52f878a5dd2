"""What a stdio server loads: nothing of the HTTP stack beyond what FastMCP itself
forces, and each SQL engine's stack only when that engine is configured (issue 15).

Deterministic, not timed: each server runs in a subprocess, answers `initialize` and
`tools/list` over real pipes, and on stdin's close reports its `sys.modules`. The bare
FastMCP server beside it (bench/floor_server.py) shows what the framework forces.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.rpc import Server, child_env

REPO = Path(__file__).resolve().parents[2]

# Serving HTTP, tracing, JWT/crypto, terminal UI, command lines: a stdio server uses none.
HTTP_STACK = (
    "starlette",
    "uvicorn",
    "sse_starlette",
    "httpx",
    "httpcore",
    "h11",
    "opentelemetry",
    "cryptography",
    "joserfc",
    "authlib",
    "jwt",
    "click",
    "typer",
    "cyclopts",
    "rich",
    "websockets",
    "email_validator",
)
# What registering the SQL tools loads: their models and per-database slots, no engine.
SQL_TOOL_MODULES = (
    "mcp_fileserver.sql.models",
    "mcp_fileserver.sql.slots",
    "mcp_fileserver.sql.control",
)
ENGINE_STACKS = {
    "postgresql": ("psycopg", "psycopg_c", "psycopg_binary", "pglast"),
    "mysql": ("pymysql", "mariadb"),
}

# Runs `target` (a module path or a script) as __main__, then writes sys.modules.
WRAPPER = """
import gc, json, runpy, sys
out, target, *argv = sys.argv[1:]
sys.argv = [target, *argv]
try:
    if target.endswith(".py"):
        runpy.run_path(target, run_name="__main__")
    else:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
except SystemExit:
    pass
with open(out, "w") as fh:
    json.dump(sorted(sys.modules), fh)
with open(out + ".gc", "w") as fh:
    json.dump({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}, fh)
"""


def _modules_after_tools_list(
    tmp_path: Path,
    name: str,
    target: str,
    *argv: str,
    then_call: tuple[str, dict[str, Any]] | None = None,
) -> set[str]:
    """The modules loaded once `tools/list` has answered (and `then_call`, if given)."""
    out = tmp_path / f"{name}.json"
    command = [sys.executable, "-c", WRAPPER, str(out), target, *argv]
    env = child_env({"MCP_FILESERVER_ALLOW_ROOT": "1", "PYTHONPATH": str(REPO)})
    with Server(command, env=env, cwd=REPO, stderr_path=tmp_path / f"{name}.log") as server:
        server.initialize()
        assert server.list_tools()
        if then_call is not None:  # its answer may be an error: the imports are the point
            name, arguments = then_call
            server.request("tools/call", {"name": name, "arguments": arguments})
    return set(json.loads(out.read_text()))


def _loaded(modules: set[str], packages: tuple[str, ...]) -> set[str]:
    return {m for m in modules if m.split(".", 1)[0] in packages}


@pytest.fixture(scope="module")
def floor_modules(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    tmp = tmp_path_factory.mktemp("floor")
    return _modules_after_tools_list(tmp, "floor", str(REPO / "bench" / "floor_server.py"), "/")


def _server_args(tmp_path: Path, *, sqlite: bool) -> list[str]:
    root = tmp_path / "root"
    root.mkdir()
    args = ["--allow", str(root), "--log-dir", str(tmp_path / "audit"), "--sandbox", "off"]
    if sqlite:
        db = tmp_path / "shop.db"
        sqlite3.connect(db).close()
        args += ["--db", f"shop=sqlite:///{db}"]
    return args


def test_files_and_sqlite_load_no_http_stack_the_framework_does_not_force(
    tmp_path: Path, floor_modules: set[str]
) -> None:
    ours = _modules_after_tools_list(
        tmp_path, "ours", "mcp_fileserver", *_server_args(tmp_path, sqlite=True)
    )
    assert "mcp_fileserver.sql.tools" in ours  # the server really served SQL
    # Each engine's stack waits for its database's first call (sql/tools.py).
    engine = _loaded(ours, ("sqlglot",)) | {m for m in ours if m.startswith("mcp_fileserver.sql.")}
    assert engine <= {"mcp_fileserver.sql.tools", *SQL_TOOL_MODULES}, sorted(engine)[:10]
    # Startup ran with the collector paused (startup_gc.py); it serves with it back on.
    collector = json.loads((tmp_path / "ours.json.gc").read_text())
    assert collector["enabled"], "the server serves with the cyclic collector off"
    assert collector["frozen"] > 100_000, "startup objects were not frozen"
    extra_http = _loaded(ours, HTTP_STACK) - _loaded(floor_modules, HTTP_STACK)
    assert not extra_http, sorted(extra_http)
    # Our tool schemas carry no $defs (framework.inline_schema_refs): FastMCP never needs
    # jsonref, nor the requests stack jsonref loads, to answer tools/list.
    dereferencing = _loaded(ours, ("jsonref", "requests", "urllib3", "charset_normalizer"))
    assert not dereferencing, sorted(dereferencing)[:10]
    assert not _loaded(ours, ENGINE_STACKS["postgresql"]), "PostgreSQL stack loaded for SQLite"
    assert not _loaded(ours, ENGINE_STACKS["mysql"]), "MariaDB/MySQL stack loaded for SQLite"


def test_a_mariadb_database_loads_its_driver_on_its_first_call_and_no_other(
    tmp_path: Path,
) -> None:
    args = _server_args(tmp_path, sqlite=False)
    # Connecting is lazy: nothing listens there, and tools/list still answers.
    args += ["--db", "maria=mariadb://nobody@127.0.0.1:1/none"]
    (tmp_path / "listed").mkdir()
    listed = _modules_after_tools_list(tmp_path / "listed", "ours", "mcp_fileserver", *args)
    assert not _loaded(listed, ("pymysql", "mariadb", "sqlglot")), (
        "MariaDB stack loaded before its call"
    )
    call = ("list_tables", {"database": "maria"})
    (tmp_path / "called").mkdir()
    called = _modules_after_tools_list(
        tmp_path / "called", "ours", "mcp_fileserver", *args, then_call=call
    )
    assert "mariadb" in called and "mcp_fileserver.sql.mysql" in called
    assert "pymysql" not in called, "the fallback driver loaded beside the default"
    assert not _loaded(called, ENGINE_STACKS["postgresql"]), "PostgreSQL stack loaded for MariaDB"


def test_files_only_loads_no_sql_stack(tmp_path: Path) -> None:
    ours = _modules_after_tools_list(
        tmp_path, "ours", "mcp_fileserver", *_server_args(tmp_path, sqlite=False)
    )
    assert "mcp_fileserver.files.tools" in ours
    sql = _loaded(ours, ("sqlglot", *ENGINE_STACKS["postgresql"], *ENGINE_STACKS["mysql"]))
    assert not sql, sorted(sql)[:10]


def test_errors_module_imports_no_framework() -> None:
    import subprocess

    code = (
        "import sys, mcp_fileserver.errors; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastmcp', 'mcp')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"
