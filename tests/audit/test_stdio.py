"""End to end over a real stdio pipe: pipelined calls, then EOF or SIGTERM. Every call
has exactly one record, start and stop are recorded, the chain verifies (HMAC), no
secret reaches a file, a stderr line or a result, and stdout carries only JSON-RPC."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mcp_fileserver.audit.verify import verify_folder
from tests.audit.helpers import all_log_text, events, records
from tests.conftest import REPO

SECRET = "hmac-key-canary-9f8e7d6c5b4a"
CANARY = "CANARY-outside-the-root-31337"
CALLS = 120


class Session:
    """The server as a subprocess, spoken to in raw JSON-RPC lines."""

    def __init__(self, tmp_path: Path, *extra: str) -> None:
        root = tmp_path / "root"
        root.mkdir()
        (root / "notes.txt").write_text("just notes\n")
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "canary.txt").write_text(CANARY)
        self.log_dir = tmp_path / "logs"
        config = tmp_path / "server.toml"
        config.write_text(
            '[audit]\nhmac_key = "${AUDIT_HMAC}"\nrotation_bytes = 2048\ncompression = "gz"\n'
            "retention_files = 10000\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
        env.update(
            MCP_FILESERVER_SANDBOX="off",
            MCP_FILESERVER_ALLOW_ROOT="1",
            PYTHONPATH=str(REPO),
            AUDIT_HMAC=SECRET,
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mcp_fileserver", "--config", str(config), "--allow",
             str(root), "--log-dir", str(self.log_dir), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )  # fmt: skip
        self.stdout = bytearray()
        self.stderr = bytearray()
        self._lines: list[bytes] = []
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._drain_stdout, daemon=True),
            threading.Thread(target=self._drain_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _drain_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            with self._cond:
                self.stdout += line
                self._lines.append(line)
                self._cond.notify_all()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for chunk in iter(lambda: self.proc.stderr.read(4096), b""):  # type: ignore[union-attr]
            self.stderr += chunk

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def responses(self, count: int, timeout: float = 120) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._lines) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"only {len(self._lines)} of {count} responses"
                self._cond.wait(remaining)
            return [json.loads(line) for line in self._lines[:count]]

    def initialize(self) -> None:
        self.send(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "audit-e2e", "version": "7.0"},
                },
            }
        )
        self.responses(1)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def pipelined_calls(self) -> dict[int, dict[str, Any]]:
        """CALLS requests sent without waiting (the server runs them concurrently)."""
        variants = [
            ("list_allowed_directories", {}),
            ("read_text_file", {"path": "notes.txt"}),
            ("read_text_file", {"path": "../outside/canary.txt"}),
            ("no_such_tool", {"token": SECRET, "text": f"see {SECRET}"}),
        ]
        for n in range(1, CALLS + 1):
            name, arguments = variants[n % len(variants)]
            self.send(
                {
                    "jsonrpc": "2.0",
                    "id": n,
                    "method": "tools/call",
                    "params": {"name": name, "arguments": arguments},
                }
            )
        answers = self.responses(CALLS + 1)[1:]
        return {a["id"]: a for a in answers}

    def finish(self, timeout: float = 60) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        for thread in self._threads:
            thread.join(10)
        return code


def check_audit_and_leaks(session: Session, answers: dict[int, dict[str, Any]]) -> None:
    assert sorted(answers) == list(range(1, CALLS + 1))
    calls = events(session.log_dir, "tool_call")
    assert sorted(int(r["request_id"]) for r in calls) == list(range(1, CALLS + 1))
    assert {r["client_name"] for r in calls} == {"audit-e2e"}
    everything = records(session.log_dir)
    assert everything[0]["event"] == "server_start"
    assert everything[0]["config"]["audit"]["hmac_key"] == "***"
    assert everything[-1]["event"] == "server_stop"
    verdict = verify_folder(session.log_dir, SECRET)
    assert verdict.ok, verdict.problem
    assert not verify_folder(session.log_dir).ok  # the chain is keyed
    blobs = [all_log_text(session.log_dir), session.stderr.decode(), session.stdout.decode()]
    for blob in blobs:
        assert SECRET not in blob
        assert CANARY not in blob
    # every byte on stdout is a JSON-RPC message, one per line
    for line in bytes(session.stdout).splitlines():
        assert json.loads(line)["jsonrpc"] == "2.0"


@pytest.mark.slow
def test_stdio_eof_every_call_recorded_then_stop(tmp_path: Path) -> None:
    session = Session(tmp_path)
    session.initialize()
    answers = session.pipelined_calls()
    assert session.proc.stdin is not None
    session.proc.stdin.close()  # EOF
    assert session.finish() == 0
    check_audit_and_leaks(session, answers)
    assert events(session.log_dir, "server_stop")[0]["reason"] == "stdin closed"


@pytest.mark.slow
def test_stdio_sigterm_every_call_recorded_then_stop(tmp_path: Path) -> None:
    session = Session(tmp_path)
    session.initialize()
    answers = session.pipelined_calls()
    session.proc.send_signal(signal.SIGTERM)  # stdin stays open: the client did not quit
    assert session.finish() == 0
    check_audit_and_leaks(session, answers)
    assert events(session.log_dir, "server_stop")[0]["reason"] == "SIGTERM"


def test_config_error_is_recorded_when_the_log_dir_is_known(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    env["PYTHONPATH"] = str(REPO)
    log_dir = tmp_path / "logs"
    result = subprocess.run(
        [sys.executable, "-m", "mcp_fileserver", "--log-dir", str(log_dir),
         "--allow", str(tmp_path / "missing")],
        capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    (record,) = records(log_dir)
    assert record["event"] == "config_error" and record["outcome"] == "error"
    assert "does not exist" in record["reason"]
    assert verify_folder(log_dir).ok


def test_unusable_log_dir_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    env.update(MCP_FILESERVER_SANDBOX="off", MCP_FILESERVER_ALLOW_ROOT="1", PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-m", "mcp_fileserver", "--log-dir", str(not_a_dir / "logs"),
         "--allow", str(tmp_path / "root")],
        capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert "audit log folder" in result.stderr and "fail_open" in result.stderr


SLOW_SERVER = """
import asyncio, sys
from fastmcp import FastMCP
from mcp_fileserver.audit import install_audit
from mcp_fileserver.audit.lifecycle import install_signal_handlers, record_start, record_stop
from tests.conftest import make_settings
from pathlib import Path

settings = make_settings(allow=[Path(sys.argv[1])], log_dir=Path(sys.argv[2]))
mcp = FastMCP("slow")

@mcp.tool
async def slow(seconds: float) -> str:
    (Path(sys.argv[1]) / "started").touch()
    await asyncio.sleep(seconds)
    return "done"

install_audit(mcp, settings)
record_start(mcp, settings)
install_signal_handlers(mcp)
try:
    mcp.run(transport="stdio", show_banner=False)
finally:
    record_stop(mcp, "stdin closed")
"""


def test_sigterm_lets_calls_in_flight_finish_and_record(tmp_path: Path) -> None:
    """SIGTERM while a call runs: the call completes and is recorded, new calls are
    refused (and recorded), then server_stop, exit 0, all before the client closes."""
    script = tmp_path / "slow_server.py"
    script.write_text(SLOW_SERVER)
    log_dir = tmp_path / "logs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path), str(log_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None

    def send(message: dict[str, Any]) -> None:
        proc.stdin.write(json.dumps(message).encode() + b"\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]

    try:
        send(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "t", "version": "1"}}}
        )  # fmt: skip
        assert json.loads(proc.stdout.readline())["id"] == 0
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
             "params": {"name": "slow", "arguments": {"seconds": 1.5}}}
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():  # the call is running (1.5 s)
            assert time.monotonic() < deadline, "the slow call never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        send(
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
             "params": {"name": "slow", "arguments": {"seconds": 0}}}
        )  # fmt: skip
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    calls = {r["request_id"]: r for r in events(log_dir, "tool_call")}
    assert calls["1"]["outcome"] == "ok"
    if "2" in calls:  # arrived before the exit: refused, and recorded
        assert calls["2"]["outcome"] == "error" and "shutting down" in calls["2"]["reason"]
    (stop,) = events(log_dir, "server_stop")
    assert stop["reason"] == "SIGTERM"
    assert records(log_dir)[-1]["event"] == "server_stop"
    assert verify_folder(log_dir).ok


@pytest.mark.skipif(os.geteuid() != 0, reason="the root refusal needs root")
def test_a_startup_refusal_is_recorded_with_the_configured_chain(tmp_path: Path) -> None:
    """Refusing to run as root is a configuration error found after the settings loaded:
    it is recorded with the configured HMAC key, so the chain still verifies."""
    (tmp_path / "root").mkdir()
    config = tmp_path / "server.toml"
    config.write_text('[audit]\nhmac_key = "${AUDIT_HMAC}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    env.update(MCP_FILESERVER_SANDBOX="off", PYTHONPATH=str(REPO), AUDIT_HMAC=SECRET)
    log_dir = tmp_path / "logs"
    result = subprocess.run(
        [sys.executable, "-m", "mcp_fileserver", "--config", str(config), "--log-dir",
         str(log_dir), "--allow", str(tmp_path / "root")],
        capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 2 and "root" in result.stderr
    (record,) = records(log_dir)
    assert record["event"] == "config_error" and "root" in record["reason"]
    assert verify_folder(log_dir, SECRET).ok


def test_a_malformed_tools_call_is_answered_and_the_next_call_is_audited(tmp_path: Path) -> None:
    """A `tools/call` without a tool name fails before any tool runs (the middleware
    sees the raw message and lets it through); the server answers it with an error and
    keeps serving, and the next call has its record."""
    session = Session(tmp_path)
    session.initialize()
    session.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"arguments": {}}})
    session.send(
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "read_text_file", "arguments": {"path": "notes.txt"}},
        }
    )
    answers = {a["id"]: a for a in session.responses(3)[1:]}
    assert "error" in answers[1]
    assert "just notes" in json.dumps(answers[2]["result"])
    assert session.proc.stdin is not None
    session.proc.stdin.close()
    assert session.finish() == 0
    calls = events(session.log_dir, "tool_call")
    assert [(c["tool"], c["outcome"]) for c in calls] == [("read_text_file", "ok")]
