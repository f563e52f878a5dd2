"""Refusals reach a stdio client with their own short reason, never a generic mask.

In-process clients skip the runner's logging setup; over stdio, fastmcp logs each refused
call through it, and a crash there once turned every refusal into a bare "Error calling
tool" (the client lost the reason, the audit log recorded an internal error).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from bench.rpc import Server, child_env

CANARY = "CANARY-stdio-refusal-91c2"


def test_refusals_keep_their_reason_over_stdio(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.txt").write_text("fine\n")
    (tmp_path / "canary.txt").write_text(CANARY)
    db = tmp_path / "shop.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (a INTEGER)")
    con.commit()
    con.close()
    argv = [sys.executable, "-m", "mcp_fileserver", "--allow", str(root)]
    argv += ["--db", f"shop=sqlite:///{db}", "--log-dir", str(tmp_path / "audit")]
    stderr = tmp_path / "stderr.log"
    with Server(
        argv, env=child_env({"MCP_FILESERVER_ALLOW_ROOT": "1"}), stderr_path=stderr
    ) as server:
        server.initialize()

        def refusal(tool: str, arguments: dict[str, object]) -> str:
            result = server.request("tools/call", {"name": tool, "arguments": arguments})
            assert result.get("isError") is True, result
            return "".join(c.get("text", "") for c in result["content"])

        outside = refusal("read_text_file", {"path": f"{root}/../canary.txt"})
        assert outside == "not found or not allowed"
        write = refusal("run_query", {"database": "shop", "sql": "DELETE FROM t"})
        assert "refused" in write and "Error calling tool" not in write
        ok = server.call_tool("read_text_file", {"path": str(root / "ok.txt")})
        assert ok["structuredContent"]["text"] == "fine\n"
    assert CANARY not in stderr.read_text()
