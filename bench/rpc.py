"""A deliberately small MCP client: newline-delimited JSON-RPC over a child's pipes.

Every server in the benchmarks is driven by this same client, so client overhead is
identical on both sides of a comparison and no SDK (Python or TypeScript) is favoured.
It speaks just enough MCP for the measurements: `initialize`, the `initialized`
notification, then requests. Notifications from the server are skipped; requests from
the server (none are expected: no client capabilities are offered) get a JSON-RPC
"method not found" error so a server never waits on us.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

PROTOCOL_VERSION = "2025-06-18"
CLIENT_INFO = {"name": "mcp-fileserver-bench", "version": "1"}


class RpcError(RuntimeError):
    """The server answered with a JSON-RPC error, died, or said something unparsable."""


class Server:
    """One server process and its pipes. Use as a context manager."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stderr_path: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self._stderr: BinaryIO | int = (
            stderr_path.open("ab") if stderr_path is not None else subprocess.DEVNULL
        )
        self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=dict(env) if env is not None else None,
            cwd=str(cwd) if cwd else None,
            bufsize=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin  # unbuffered: each request leaves in one write
        # Buffered: `readline` on the raw pipe reads one byte per system call, which cost
        # this client ~0.9 ms of CPU per 1 KiB answer and made it, not the server, the
        # bottleneck of every throughput figure with several requests in flight.
        self._out = io.BufferedReader(self.proc.stdout, buffer_size=1 << 16)
        self._next_id = 0
        self._pending: dict[int, dict[str, Any]] = {}

    # -- plumbing -----------------------------------------------------------------------

    def _send(self, message: Mapping[str, Any]) -> None:
        self._in.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def _read_message(self) -> dict[str, Any]:
        line = self._out.readline()
        if not line:
            code = self.proc.poll()
            raise RpcError(f"{self.argv[0]} closed stdout (exit code {code})")
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            raise RpcError(f"not JSON on stdout: {line[:200]!r}") from None
        if not isinstance(message, dict):
            raise RpcError(f"not a JSON-RPC message: {line[:200]!r}")
        return message

    def send_request(self, method: str, params: Mapping[str, Any] | None = None) -> int:
        """Send a request without waiting; returns its id (see `wait`)."""
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        self._send(message)
        return self._next_id

    def wait(self, request_id: int | None = None) -> dict[str, Any]:
        """The next response (or the one for `request_id`), skipping notifications."""
        if request_id is not None and request_id in self._pending:
            return self._pending.pop(request_id)
        while True:
            message = self._read_message()
            if "method" in message:
                if "id" in message:  # a request from the server: we offer no capabilities
                    self._send(
                        {
                            "jsonrpc": "2.0",
                            "id": message["id"],
                            "error": {"code": -32601, "message": "not supported by bench"},
                        }
                    )
                continue
            if request_id is None or message.get("id") == request_id:
                return message
            self._pending[message["id"]] = message

    def request(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and return its `result`; raise `RpcError` on a JSON-RPC error."""
        response = self.wait(self.send_request(method, params))
        if "error" in response:
            raise RpcError(f"{method}: {response['error']}")
        return response["result"]

    # -- MCP ----------------------------------------------------------------------------

    def initialize(self) -> dict[str, Any]:
        result = self.request(
            "initialize",
            {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO},
        )
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return result

    def list_tools(self) -> list[dict[str, Any]]:
        return self.request("tools/list", {})["tools"]

    def call_tool(self, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """A `tools/call` result; a tool-level error (`isError`) raises `RpcError`."""
        result = self.request("tools/call", {"name": name, "arguments": arguments})
        if result.get("isError"):
            raise RpcError(f"{name} refused: {json.dumps(result)[:300]}")
        return result

    # -- lifecycle ----------------------------------------------------------------------

    def close(self, timeout: float = 10.0) -> int | None:
        """Close stdin (the stdio way to say goodbye), then wait; kill if it lingers."""
        with contextlib.suppress(OSError):
            self._in.close()
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._out.close()
        if not isinstance(self._stderr, int):
            self._stderr.close()
        return code

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent's environment without any MCP_FILESERVER_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    env.update(extra or {})
    return env
