"""stdout belongs to MCP: every byte the server writes there, first to last, is JSON-RPC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import REPO

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw-pipe-test", "version": "1"},
    },
}


def raw_session(*args: str, cwd: Path) -> tuple[bytes, bytes, int]:
    messages = [
        INIT,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "list_allowed_directories", "arguments": {}},
        },
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "no_such_tool", "arguments": {}},
        },
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    env.update(MCP_FILESERVER_SANDBOX="off", MCP_FILESERVER_ALLOW_ROOT="1", PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_fileserver", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    out = bytearray()
    try:
        for message in messages:
            proc.stdin.write(json.dumps(message).encode() + b"\n")
            proc.stdin.flush()
            if "id" in message:  # wait for the answer, so EOF never races a reply
                line = proc.stdout.readline()
                out += line
                if not line:
                    break
    except BrokenPipeError:
        pass
    proc.stdin.close()
    watchdog = threading.Timer(60, proc.kill)  # a hang fails the test instead of stalling it
    watchdog.start()
    try:
        rest = proc.stdout.read()
        err = proc.stderr.read() if proc.stderr else b""
        code = proc.wait()
    finally:
        watchdog.cancel()
    return bytes(out + rest), err, code


def test_every_stdout_byte_is_jsonrpc_and_eof_stops_cleanly(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    stdout, stderr, code = raw_session(
        "--allow", str(root), "--log-dir", str(tmp_path / "logs"), cwd=tmp_path
    )
    assert code == 0, stderr.decode()
    assert stdout.endswith(b"\n")
    replies = [json.loads(line) for line in stdout.decode().splitlines()]
    assert all(reply.get("jsonrpc") == "2.0" for reply in replies)
    by_id = {reply["id"]: reply for reply in replies if "id" in reply}
    assert set(by_id) == {1, 2, 3, 4}
    assert by_id[1]["result"]["serverInfo"]["name"] == "mcp-fileserver"
    assert "list_allowed_directories" in {t["name"] for t in by_id[2]["result"]["tools"]}
    unknown = by_id[4]
    assert "error" in unknown or unknown["result"]["isError"] is True


def test_config_error_writes_nothing_to_stdout(tmp_path: Path) -> None:
    stdout, stderr, code = raw_session("--allow", str(tmp_path / "missing"), cwd=tmp_path)
    assert code == 2
    assert stdout == b""
    assert b"does not exist" in stderr
