"""Protocol errors a client can act on, over a real stdio subprocess (issue 15 §3).

Every line that is not one valid JSON-RPC message gets a JSON-RPC error (with the
request's id when it can be known) and the server keeps serving; an unknown tool is
-32602 and is still audited; a line over the size limit is refused without being held
in memory; only served capabilities are announced; argument errors are one sentence.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from bench.rpc import Server, child_env

LIMIT = 256 * 1024
WATCHDOG_S = 240


@pytest.fixture
def server(tmp_path: Path) -> Any:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.txt").write_text("fine\n")
    config = tmp_path / "config.toml"
    config.write_text(f"[protocol]\nmax_message_bytes = {LIMIT}\n")
    argv = [sys.executable, "-m", "mcp_fileserver", "--config", str(config)]
    argv += ["--allow", str(root), "--log-dir", str(tmp_path / "audit"), "--sandbox", "off"]
    env = child_env({"MCP_FILESERVER_ALLOW_ROOT": "1"})
    with Server(argv, env=env, stderr_path=tmp_path / "stderr.log") as srv:
        # A server that never answers must fail the test, not hang it.
        watchdog = threading.Timer(WATCHDOG_S, srv.proc.kill)
        watchdog.daemon = True
        watchdog.start()
        srv.root = root  # type: ignore[attr-defined]
        srv.audit = tmp_path / "audit"  # type: ignore[attr-defined]
        srv.init_result = srv.initialize()  # type: ignore[attr-defined]
        yield srv
        watchdog.cancel()


def _raw(server: Server, line: bytes) -> dict[str, Any]:
    server._in.write(line + b"\n")
    return server.wait()


def _still_serving(server: Server) -> None:
    result = server.call_tool("read_text_file", {"path": str(server.root / "ok.txt")})  # type: ignore[attr-defined]
    assert result["structuredContent"]["text"] == "fine\n"


@pytest.mark.parametrize(
    ("line", "code", "request_id"),
    [
        (b'{"jsonrpc":"2.0","id":41,"method":', -32700, None),
        (b"not json at all", -32700, None),
        (b"42", -32600, None),
        (b'{"jsonrpc":"2.0","id":42}', -32600, 42),
        (b'{"jsonrpc":"1.0","id":"x-43","method":"ping"}', -32600, "x-43"),
        (b"[" * 100_000 + b"]" * 100_000, -32600, None),
        (
            b'{"jsonrpc":"2.0","id":44,"method":"tools/list","params":{"a":'
            + b"[" * 5000
            + b"]" * 5000
            + b"}}",
            -32600,
            44,
        ),
    ],
    ids=["truncated", "garbage", "scalar", "no-method", "bad-version", "deep-array", "deep-params"],
)
def test_bad_lines_get_an_error_and_the_server_keeps_serving(
    server: Server, line: bytes, code: int, request_id: object
) -> None:
    answer = _raw(server, line)
    assert answer["error"]["code"] == code, answer
    assert answer["id"] == request_id
    _still_serving(server)


def test_each_request_of_a_batch_is_answered_under_its_id(server: Server) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 7, "method": "tools/list"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 8, "method": "ping"},
    ]
    server._in.write(json.dumps(batch).encode() + b"\n")
    answers = [server.wait(), server.wait()]
    assert sorted(a["id"] for a in answers) == [7, 8]
    assert all(a["error"]["code"] == -32600 and "batch" in a["error"]["message"] for a in answers)
    _still_serving(server)


def test_unknown_tool_is_invalid_params_and_audited(server: Server) -> None:
    answer = server.wait(server.send_request("tools/call", {"name": "nope", "arguments": {}}))
    assert answer["error"]["code"] == -32602, answer
    assert "nope" in answer["error"]["message"]
    records = [
        json.loads(line)
        for line in (server.audit / "audit.jsonl").read_text().splitlines()  # type: ignore[attr-defined]
    ]
    calls = [r for r in records if r["event"] == "tool_call" and r["tool"] == "nope"]
    assert calls and calls[-1]["outcome"] == "invalid"
    _still_serving(server)


def test_a_line_over_the_limit_is_refused_without_holding_it(server: Server) -> None:
    def high_water_kib() -> int:
        status = Path(f"/proc/{server.proc.pid}/status").read_text()
        return int(next(x for x in status.splitlines() if x.startswith("VmHWM:")).split()[1])

    before = high_water_kib()
    size = 64 * 1024 * 1024  # 256 times the limit
    head = b'{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"read_text_file",'
    head += b'"arguments":{"path":"'
    server._in.write(head)
    chunk = b"a" * (1024 * 1024)
    for _ in range(size // len(chunk)):
        server._in.write(chunk)
    server._in.write(b'"}}}\n')
    answer = server.wait()
    assert answer["id"] == 99
    assert answer["error"]["code"] == -32600
    assert "too large" in answer["error"]["message"]
    assert "max_message_bytes" in answer["error"]["message"]
    grown_mib = (high_water_kib() - before) / 1024
    assert grown_mib < 16, f"memory grew by {grown_mib:.0f} MiB for a {size >> 20} MiB line"
    _still_serving(server)


def test_only_served_capabilities_are_announced(server: Server) -> None:
    capabilities = server.init_result["capabilities"]  # type: ignore[attr-defined]
    assert "tools" in capabilities
    for unserved in ("prompts", "resources", "logging", "completions"):
        assert unserved not in capabilities, capabilities


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"path": 5}, "path: input should be a valid string"),
        ({}, "path is required"),
        ({"path": "x", "colour": "crimson-canary"}, "colour is not an argument of read_text_file"),
    ],
)
def test_argument_errors_are_one_short_sentence(
    server: Server, arguments: dict[str, Any], expected: str
) -> None:
    result = server.request("tools/call", {"name": "read_text_file", "arguments": arguments})
    assert result["isError"] is True
    text = result["content"][0]["text"]
    assert expected in text, text
    assert "\n" not in text and "pydantic" not in text and "http" not in text
    assert "crimson" not in text and len(text) < 200
