"""The first `tools/list` and the first call of every tool pay no import cost, except
the first SQL call, which loads its engine's stack and nothing else.

ARCHITECTURE.md: everything a request needs is imported when the server starts, but each
SQL engine's stack, which loads on its database's first call (sql/tools.py). A module
first imported while serving a request (by us, or lazily by a library) makes that first
request slow in a way no steady-state benchmark shows. Python's `-X importtime` output
(PYTHONPROFILEIMPORTTIME) is written to stderr synchronously as each module loads, so
once a response is back, every import it caused is already in the stderr file: the test
is exact, with no timing involved.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.rpc import Server, child_env

REPO = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("first-request")
    root = base / "root"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_text("hello world\n")
    (root / "sub" / "notes.md").write_text("# notes\n")
    (root / "image.png").write_bytes(PNG)
    con = sqlite3.connect(base / "shop.db")
    con.executescript("CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT); ")
    con.execute("INSERT INTO books (title) VALUES ('Dune')")
    con.commit()
    con.close()
    return base


@pytest.fixture(scope="module")
def server(workspace: Path) -> Iterator[tuple[Server, Path]]:
    stderr = workspace / "stderr.log"
    proc = Server(
        [
            sys.executable,
            "-m",
            "mcp_fileserver",
            "--allow",
            str(workspace / "root"),
            "--db",
            f"shop=sqlite:///{workspace / 'shop.db'}",
            "--log-dir",
            str(workspace / "audit"),
        ],
        env=child_env({"PYTHONPROFILEIMPORTTIME": "1", "MCP_FILESERVER_ALLOW_ROOT": "1"}),
        stderr_path=stderr,
    )
    try:
        proc.initialize()
        yield proc, stderr
    finally:
        proc.close()


def imports_during(stderr: Path, request: Any) -> tuple[list[str], Any]:
    """Modules first imported while `request()` ran, and its result."""
    mark = stderr.stat().st_size
    result = request()
    with stderr.open("rb") as fh:
        fh.seek(mark)
        text = fh.read().decode(errors="replace")
    modules = [
        line.rsplit("|", 1)[1].strip()
        for line in text.splitlines()
        if line.startswith("import time:")
    ]
    return modules, result


def test_first_tools_list_imports_nothing(server: tuple[Server, Path]) -> None:
    proc, stderr = server
    modules, tools = imports_during(stderr, proc.list_tools)
    assert tools, "the server lists no tools"
    assert modules == [], f"first tools/list imported {len(modules)} modules: {modules[:10]}"


def calls(workspace: Path) -> list[tuple[str, dict[str, Any]]]:
    root = str(workspace / "root")
    return [
        ("list_allowed_directories", {}),
        ("read_text_file", {"path": f"{root}/hello.txt"}),
        ("read_text_file", {"path": f"{root}/hello.txt", "head": 1}),
        ("read_multiple_files", {"paths": [f"{root}/hello.txt", f"{root}/missing"]}),
        ("read_media_file", {"path": f"{root}/image.png"}),
        ("list_directory", {"path": root}),
        ("directory_tree", {"path": root}),
        ("get_file_info", {"path": f"{root}/hello.txt"}),
        ("search_files", {"path": root, "pattern": "*.md"}),
        ("search_file_contents", {"path": root, "pattern": "hel+o", "regex": True}),
        ("read_text_file", {"path": f"{root}/../shop.db"}),  # a refusal is a request too
        ("list_databases", {}),
        ("list_tables", {"database": "shop"}),
        ("describe_table", {"database": "shop", "table": "books"}),
        (
            "run_query",
            {"database": "shop", "sql": "SELECT title FROM books WHERE id = ?", "params": [1]},
        ),
        ("run_query", {"database": "shop", "sql": "DELETE FROM books"}),
        ("explain_query", {"database": "shop", "sql": "SELECT * FROM books"}),
    ]


SQL_TOOLS = {"list_tables", "describe_table", "run_query", "explain_query"}


def sqlite_engine_stack() -> set[str]:
    """What importing the SQLite backend imports (or tries: `-X importtime` lists failed
    optional imports too) in a process that has loaded the server's other modules."""
    code = (
        "import sys, mcp_fileserver.runner, mcp_fileserver.sql.tools; "
        "print('MARK', file=sys.stderr, flush=True); import mcp_fileserver.sql.sqlite"
    )
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    after = out.stderr.split("MARK\n", 1)[1]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in after.splitlines()
        if line.startswith("import time:")
    }


def test_first_call_of_each_tool_imports_nothing(
    server: tuple[Server, Path], workspace: Path
) -> None:
    proc, stderr = server
    served = {tool["name"] for tool in proc.list_tools()}
    lazy: dict[str, list[str]] = {}
    exercised = 0
    for name, arguments in calls(workspace):
        if name not in served:
            continue
        exercised += 1
        modules, response = imports_during(
            stderr,
            lambda n=name, a=arguments: proc.request("tools/call", {"name": n, "arguments": a}),
        )
        assert "content" in response, f"{name}: {response}"
        if modules:
            lazy[name] = modules
    assert exercised >= 1
    # The first call that touches the database loads the SQLite engine's stack (sqlglot,
    # the guard, the backend), and only that; every other first call loads nothing.
    first_sql = next(name for name, _ in calls(workspace) if name in SQL_TOOLS)
    loaded = set(lazy.pop(first_sql, []))
    assert "mcp_fileserver.sql.guard" in loaded and "sqlglot" in loaded, sorted(loaded)[:10]
    assert loaded <= sqlite_engine_stack(), sorted(loaded - sqlite_engine_stack())
    assert lazy == {}, f"first calls imported modules: {lazy}"
