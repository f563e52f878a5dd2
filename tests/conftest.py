"""Shared fixtures: settings built in isolation, an in-memory client, a stdio subprocess."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from mcp_fileserver.config import CliOptions, Settings, load_settings
from mcp_fileserver.sandbox.landlock import abi_version
from mcp_fileserver.server import build_server
from tests.run_summary import summary_line

REPO = Path(__file__).resolve().parents[1]
E2E_SANDBOX = "require" if abi_version() else "on"


def make_settings(
    *,
    allow: Sequence[Path | str] = (),
    db: Sequence[str] = (),
    config: Path | None = None,
    log_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    sandbox: str = "off",
) -> Settings:
    """Settings from explicit inputs only: the developer's environment never leaks in."""
    return load_settings(
        CliOptions(
            config=str(config) if config else None,
            allow=tuple(str(p) for p in allow),
            db=tuple(db),
            log_dir=str(log_dir) if log_dir else None,
            sandbox=sandbox,  # type: ignore[arg-type]
        ),
        environ=dict(env or {}),
    )


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    def factory(**kwargs: object) -> Settings:
        kwargs.setdefault("log_dir", tmp_path / "audit-logs")
        return make_settings(**kwargs)  # type: ignore[arg-type]

    return factory


@asynccontextmanager
async def in_memory_client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(settings)) as client:
        yield client


def server_command(*args: str) -> list[str]:
    """The installed server as a subprocess command line (module form, same interpreter)."""
    return [sys.executable, "-m", "mcp_fileserver", *args]


def stdio_transport(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> StdioTransport:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    # End-to-end servers run confined, as users run them: `require` where the kernel has
    # Landlock (a sandbox that fails to apply fails the test), `on` elsewhere. Tests run
    # as root in CI, which the server refuses without MCP_FILESERVER_ALLOW_ROOT.
    base_env.setdefault("MCP_FILESERVER_SANDBOX", E2E_SANDBOX)
    base_env.setdefault("MCP_FILESERVER_ALLOW_ROOT", "1")
    return StdioTransport(
        command=sys.executable,
        args=["-m", "mcp_fileserver", *args],
        env={**base_env, **(env or {})},
        cwd=str(cwd) if cwd else None,
        keep_alive=False,
    )


def wal_database(path: Path) -> Path:
    """A SQLite database in WAL mode holding `t(x)` = 1, closed: no -wal/-shm left."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    return path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter,
) -> Generator[None, None, None]:
    """End every run with one line, after pytest's own skip list and before its count:
    what ran, and what was skipped for lack of what."""
    yield
    terminalreporter.write_line(summary_line(terminalreporter.stats))
