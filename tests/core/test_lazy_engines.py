"""Each SQL engine's stack loads on its database's first call, and only where that is
safe: under the kernel sandbox the first call still works, and an engine whose packages
the sandbox would not let be imported later loads at startup instead (issue 15).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.rpc import Server, child_env
from mcp_fileserver.sandbox.landlock import abi_version
from mcp_fileserver.sandbox.ruleset import importable_once_sandboxed
from mcp_fileserver.sql import tools as sql_tools
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parents[2]


def test_importable_once_sandboxed_only_from_folders_the_sandbox_grants_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert importable_once_sandboxed("sqlglot")  # site-packages
    assert importable_once_sandboxed("difflib")  # the standard library
    assert importable_once_sandboxed("mcp_fileserver")  # already loaded
    assert not importable_once_sandboxed("no_such_package_c15")
    # A package on a PYTHONPATH folder outside site-packages: the sandbox grants only
    # the packages already loaded from there, so this one could not be imported later.
    (tmp_path / "elsewhere_c15").mkdir()
    (tmp_path / "elsewhere_c15" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not importable_once_sandboxed("elsewhere_c15")


def _backends(settings: object) -> list[sql_tools.LazyBackend]:
    from fastmcp import FastMCP

    slots = sql_tools.register_sql_tools(FastMCP("t"), settings)  # type: ignore[arg-type]
    found = [b for s in slots.values() for b in s.backends]
    assert found and all(isinstance(b, sql_tools.LazyBackend) for b in found)
    return found  # type: ignore[return-value]


def test_an_engine_the_sandbox_would_block_later_loads_at_startup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "shop.db"
    sqlite3.connect(db).close()
    settings = make_settings(db=[f"shop=sqlite:///{db}"], log_dir=tmp_path / "logs")
    assert all(b._backend is None for b in _backends(settings))  # deferred
    monkeypatch.setitem(sql_tools.DEFERRED_ENGINE_PACKAGES, "sqlite", ("no_such_package_c15",))
    assert all(b._backend is not None for b in _backends(settings))  # built now
    monkeypatch.delitem(sql_tools.DEFERRED_ENGINE_PACKAGES, "sqlite")
    assert all(b._backend is not None for b in _backends(settings))  # unlisted: built now


@pytest.mark.skipif(abi_version() < 1, reason="needs a kernel with Landlock")
def test_first_sql_call_loads_the_engine_under_the_sandbox(tmp_path: Path) -> None:
    """`--sandbox require`: the engine's modules are imported after the sandbox is on,
    on the first SQL call, and the call works; a write is still refused."""
    root = tmp_path / "root"
    root.mkdir()
    db = tmp_path / "data" / "shop.db"
    db.parent.mkdir()
    con = sqlite3.connect(db)
    con.executescript("CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT);")
    con.execute("INSERT INTO books (title) VALUES ('Dune')")
    con.commit()
    con.close()
    stderr = tmp_path / "stderr.log"
    argv = [sys.executable, "-m", "mcp_fileserver", "--allow", str(root)]
    argv += ["--db", f"shop=sqlite:///{db}", "--log-dir", str(tmp_path / "audit")]
    argv += ["--sandbox", "require"]
    env = child_env({"MCP_FILESERVER_ALLOW_ROOT": "1", "PYTHONPROFILEIMPORTTIME": "1"})
    with Server(argv, env=env, cwd=tmp_path, stderr_path=stderr) as server:
        server.initialize()
        assert server.list_tools()
        mark = stderr.stat().st_size
        sql = "SELECT title FROM books WHERE id = ?"
        answer = server.call_tool("run_query", {"database": "shop", "sql": sql, "params": [1]})
        assert answer["structuredContent"]["rows"] == [["Dune"]]
        refused = server.request(
            "tools/call",
            {"name": "run_query", "arguments": {"database": "shop", "sql": "DELETE FROM books"}},
        )
        assert refused.get("isError") and "query refused" in json.dumps(refused)
    log = stderr.read_text(errors="replace")
    assert "sandbox enforced" in log[:mark]
    before, after = _imported(log[:mark]), _imported(log[mark:])
    assert "sqlglot" not in before and "mcp_fileserver.sql.guard" not in before
    assert {"sqlglot", "mcp_fileserver.sql.guard", "mcp_fileserver.sql.sqlite"} <= after


def _imported(stderr_text: str) -> set[str]:
    """The modules `-X importtime` (PYTHONPROFILEIMPORTTIME) reported in `stderr_text`."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr_text.splitlines()
        if line.startswith("import time:")
    }


def test_a_backend_is_built_with_the_collector_paused_and_then_frozen() -> None:
    import gc

    seen: list[bool] = []

    def build() -> Any:
        seen.append(gc.isenabled())
        return [[i] for i in range(1000)]  # stands for an engine's modules

    lazy = sql_tools.LazyBackend(None, build)  # type: ignore[arg-type]
    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    lazy.backend()
    lazy.backend()  # built once
    assert seen == [False] and gc.isenabled()
    assert gc.get_freeze_count() >= frozen + 1000
    gc.unfreeze()
