"""The server driven by the official MCP Inspector CLI: a real client no one here wrote.

The Inspector is pinned in bench/package.json and installed by `make peers` (which
`.ci/run` runs); the tests use that copy and its Node.js 22, never the network. With
CI=true a missing Inspector fails the run instead of skipping it.

The Inspector CLI declares the MCP `roots` capability, so the session file gives it the
workspace as its root: our server only serves the intersection of the client's roots
and the configured directories (roots can narrow, never widen), which is tested too.
Every case plants a canary outside the allowed root and asserts it never shows up.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = REPO / "bench" / "node_modules" / ".bin"
INSPECTOR = NODE_BIN / "inspector"
NODE = NODE_BIN / "node"
TIMEOUT_S = 120

CANARY = "CANARY-7f3e2b-outside-the-root"
HELLO = "hello from inside the allowed root\nsecond line\n"
REFUSED = "not found or not allowed"
FILE_TOOLS = {
    "list_allowed_directories",
    "list_directory",
    "directory_tree",
    "read_text_file",
    "read_multiple_files",
    "read_media_file",
    "get_file_info",
    "search_files",
    "search_file_contents",
}
SQL_TOOLS = {"list_databases", "list_tables", "describe_table", "run_query", "explain_query"}

pytestmark = pytest.mark.slow


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def inspector() -> Path:
    if not (INSPECTOR.exists() and NODE.exists()):
        reason = "the MCP Inspector is not installed in bench/node_modules: run `make peers`"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    return INSPECTOR


@dataclass(frozen=True)
class Workspace:
    base: Path
    root: Path
    outside: Path
    database: Path
    logs: Path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    base = tmp_path_factory.mktemp("inspector")
    root = base / "workspace"
    outside = base / "outside"
    (root / "docs").mkdir(parents=True)
    outside.mkdir()
    (root / "hello.txt").write_text(HELLO)
    (root / "docs" / "guide.md").write_text("# Guide\n")
    (outside / "canary.txt").write_text(CANARY + "\n")
    (root / "escape").symlink_to(outside / "canary.txt")  # leaves the root
    (root / "escape-dir").symlink_to(outside, target_is_directory=True)
    sibling = base / "workspace-evil"  # a string-prefix sibling of the root
    sibling.mkdir()
    (sibling / "canary.txt").write_text(CANARY + "\n")
    database = base / "shop.db"  # beside the root, not inside it
    con = sqlite3.connect(database)
    con.executescript(
        """
        CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT NOT NULL, price REAL);
        INSERT INTO books (title, price) VALUES ('Dune', 9.5), ('Emma', 4.25), ('Ulysses', 12);
        """
    )
    con.commit()
    con.close()
    return Workspace(base, root, outside, database, base / "audit")


def session_file(ws: Workspace, roots: Sequence[Path], name: str) -> Path:
    """An Inspector session file (read-only `--config`) that starts our server."""
    server = {
        "command": sys.executable,
        "args": [
            "-m",
            "mcp_fileserver",
            "--allow",
            str(ws.root),
            "--db",
            f"shop=sqlite:///{ws.database}",
            "--log-dir",
            str(ws.logs),
        ],
        # Tests run as root in CI; the server refuses root unless told it is intended.
        "env": {"MCP_FILESERVER_ALLOW_ROOT": "1"},
        "roots": [{"uri": r.as_uri(), "name": r.name} for r in roots],
    }
    path = ws.base / f"{name}.json"
    path.write_text(json.dumps({"mcpServers": {"fileserver": server}}, indent=2))
    return path


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def result(self) -> dict[str, Any]:
        data = json.loads(self.stdout)
        assert isinstance(data, dict), self.stdout
        return data

    @property
    def text(self) -> str:
        return "".join(c.get("text", "") for c in self.result.get("content", []))


Run = Callable[..., Outcome]


@pytest.fixture(scope="module")
def run(inspector: Path, workspace: Workspace) -> Run:
    home = workspace.base / "home"  # the Inspector keeps its catalog under $HOME
    home.mkdir()
    default_session = session_file(workspace, [workspace.root], "session")

    def invoke(*args: str, session: Path | None = None) -> Outcome:
        env = {
            "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(home),
            "NO_COLOR": "1",
        }
        argv = [str(NODE), str(inspector), "--cli", "--config", str(session or default_session)]
        argv += ["--server", "fileserver", *args]
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=TIMEOUT_S, cwd=workspace.base
        )
        return Outcome(proc.returncode, proc.stdout, proc.stderr)

    return invoke


def call(run: Run, tool: str, *pairs: str, session: Path | None = None) -> Outcome:
    args = ["--method", "tools/call", "--tool-name", tool]
    if pairs:
        args += ["--tool-arg", *pairs]
    return run(*args, session=session)


def assert_refused(outcome: Outcome, ws: Workspace) -> None:
    assert outcome.code != 0, outcome
    assert outcome.result.get("isError") is True, outcome.stdout
    assert REFUSED in outcome.text, outcome.text
    assert CANARY not in outcome.stdout + outcome.stderr
    assert str(ws.outside) not in outcome.stdout


def test_lists_every_tool_as_read_only(run: Run) -> None:
    outcome = run("--method", "tools/list")
    assert outcome.code == 0, outcome.stderr
    tools = {tool["name"]: tool for tool in outcome.result["tools"]}
    assert set(tools) >= FILE_TOOLS
    if find_spec("mcp_fileserver.sql.tools") is not None:
        assert set(tools) >= SQL_TOOLS
    for name, tool in tools.items():
        assert tool["annotations"]["readOnlyHint"] is True, name
        assert tool["annotations"].get("openWorldHint") is False, name
        assert tool["inputSchema"].get("additionalProperties") is False, name
        assert "outputSchema" in tool, name


def test_reads_a_file(run: Run, workspace: Workspace) -> None:
    outcome = call(run, "read_text_file", f"path={workspace.root / 'hello.txt'}")
    assert outcome.code == 0, outcome.stderr
    assert outcome.result.get("isError") is not True
    assert outcome.result["structuredContent"]["text"] == HELLO
    assert outcome.result["structuredContent"]["truncated"] is False


ATTACKS = [
    "workspace/../outside/canary.txt",
    "outside/canary.txt",
    "workspace/escape",
    "workspace/escape-dir/canary.txt",
    "workspace-evil/canary.txt",
]


@pytest.mark.parametrize("attack", [ATTACKS[0], ATTACKS[2]])
def test_traversal_is_refused(run: Run, workspace: Workspace, attack: str) -> None:
    outcome = call(run, "read_text_file", f"path={workspace.base}/{attack}")
    assert_refused(outcome, workspace)


def read_many(run: Run, paths: Sequence[Path | str], session: Path | None = None) -> Outcome:
    arguments = json.dumps({"paths": [str(p) for p in paths]})
    return run(
        "--method",
        "tools/call",
        "--tool-name",
        "read_multiple_files",
        "--tool-args-json",
        arguments,
        session=session,
    )


def test_every_escape_is_refused_path_by_path(run: Run, workspace: Workspace) -> None:
    hello = workspace.root / "hello.txt"
    outcome = read_many(run, [*(f"{workspace.base}/{a}" for a in ATTACKS), hello])
    assert outcome.code == 0, outcome.stdout + outcome.stderr
    assert CANARY not in outcome.stdout + outcome.stderr
    files = outcome.result["structuredContent"]["files"]
    assert len(files) == len(ATTACKS) + 1
    for entry in files[:-1]:
        assert entry["text"] is None, entry
        assert REFUSED in entry["error"], entry
    assert files[-1]["text"] == HELLO  # the control beside the attacks still works


def test_listing_never_follows_a_symlink_out(run: Run, workspace: Workspace) -> None:
    outcome = call(run, "directory_tree", f"path={workspace.root}", "max_depth=5")
    assert outcome.code == 0, outcome.stderr
    assert CANARY not in outcome.stdout + outcome.stderr
    assert "canary.txt" not in outcome.stdout  # escape-dir is reported, never entered


def test_client_roots_narrow_and_never_widen(run: Run, workspace: Workspace) -> None:
    # A client whose only root is outside the configured directory gets nothing at all:
    # not the outside file (roots never widen) and not the allowed file (they narrow).
    session = session_file(workspace, [workspace.outside], "outside-roots")
    outcome = read_many(
        run, [workspace.outside / "canary.txt", workspace.root / "hello.txt"], session=session
    )
    assert CANARY not in outcome.stdout + outcome.stderr
    assert HELLO.splitlines()[0] not in outcome.stdout
    if outcome.result.get("isError"):  # refused as a whole: no usable root at all
        assert REFUSED in outcome.text, outcome.text
    else:
        for entry in outcome.result["structuredContent"]["files"]:
            assert entry["text"] is None and REFUSED in entry["error"], entry


def test_runs_a_parameterised_query(run: Run) -> None:
    arguments = {
        "database": "shop",
        "sql": "SELECT title, price FROM books WHERE price < ? ORDER BY id",
        "params": [10],
    }
    outcome = run(
        "--method",
        "tools/call",
        "--tool-name",
        "run_query",
        "--tool-args-json",
        json.dumps(arguments),
    )
    assert outcome.code == 0, outcome.stdout + outcome.stderr
    result = outcome.result["structuredContent"]
    assert result["rows"] == [["Dune", 9.5], ["Emma", 4.25]]
    assert result["row_count"] == 2
    assert result["truncated"] is False


def test_refuses_a_write_and_leaves_the_database_untouched(run: Run, workspace: Workspace) -> None:
    before = hashlib.sha256(workspace.database.read_bytes()).hexdigest()
    files_before = sorted(p.name for p in workspace.database.parent.iterdir())
    outcome = call(run, "run_query", "database=shop", "sql=DELETE FROM books")
    assert outcome.code != 0
    assert outcome.result.get("isError") is True, outcome.stdout
    assert hashlib.sha256(workspace.database.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in workspace.database.parent.iterdir()) == files_before


def _config_file(ws: Workspace) -> Path:
    path = ws.base / "server.toml"
    path.write_text(
        f"[files]\nallowed_dirs = [{json.dumps(str(ws.root))}]\n"
        f"[audit]\nlog_dir = {json.dumps(str(ws.logs))}\n"
        "[sandbox]\nallow_root = true\n"
    )
    return path


@pytest.mark.parametrize("form", ["--config-file", "-c", "env"])
def test_a_config_file_reaches_the_server_through_the_inspector(
    inspector: Path, workspace: Workspace, form: str
) -> None:
    """The Inspector's CLI takes `--config` for itself (a session file), so
    `inspector --cli mcp-fileserver --config x.toml` cannot work; these forms do."""
    config = _config_file(workspace)
    home = workspace.base / "home-config"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "NO_COLOR": "1",
    }
    argv = [str(NODE), str(inspector), "--cli"]
    if form == "env":
        argv += ["-e", f"MCP_FILESERVER_CONFIG={config}", sys.executable, "-m", "mcp_fileserver"]
    else:
        argv += [sys.executable, "-m", "mcp_fileserver", form, str(config)]
    argv += ["--method", "tools/call", "--tool-name", "list_allowed_directories"]
    proc = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=TIMEOUT_S, cwd=workspace.base
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["structuredContent"]["directories"] == [str(workspace.root)]
