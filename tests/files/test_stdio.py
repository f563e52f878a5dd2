"""End-to-end: the real server as a stdio subprocess (sandboxed as users run it)."""

from __future__ import annotations

import os

import anyio
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from mcp_fileserver.errors import NOT_ALLOWED_MESSAGE
from tests.conftest import stdio_transport
from tests.files.helpers import CANARY, SAFE, Workspace, call, dump
from tests.files.test_attacks import plant_attacks


def server(ws: Workspace) -> StdioTransport:
    config = ws.base / "e2e.toml"
    config.write_text("[monitor]\nenabled = false\n[rate_limit]\nenabled = false\n")
    return stdio_transport(
        "--allow",
        str(ws.root),
        "--config",
        str(config),
        "--log-dir",
        str(ws.base / "logs"),
        env={"HOME": str(ws.outside)},
        cwd=ws.outside,  # a relative path must never resolve against the working directory
    )


async def test_attacks_and_controls_through_stdio(ws: Workspace) -> None:
    plant_attacks(ws)
    os.mkfifo(ws.root / "pipe")
    async with Client(server(ws)) as client:
        with anyio.fail_after(60):
            for path in (
                "../outside/canary.txt",
                str(ws.canary_file),
                f"{ws.root}-evil/canary.txt",
                f"{ws.root}/../outside/canary.txt",
                "rel_out",
                "abs_out",
                "chain1",
                "dir_out/canary.txt",
                "~/canary.txt",
                f"file://{ws.canary_file}",
                "%2e%2e/outside/canary.txt",
                "hello.txt\x00",
                ".env",
                "env_link",
                "loop1",
                "canary.txt",  # exists in the working directory, not in the root
            ):
                result = await call(client, "read_text_file", {"path": path})
                assert result.is_error, path
                assert CANARY not in dump(result) and str(ws.outside) not in dump(result)
            # the uniform message and the FIFO refusal reach a real client unchanged
            fifo = await call(client, "read_text_file", {"path": "pipe"})
            assert dump(fifo) == "not a regular file"
            outside = await call(client, "read_text_file", {"path": "../outside/canary.txt"})
            missing = await call(client, "read_text_file", {"path": "missing.txt"})
            assert dump(outside) == dump(missing) == NOT_ALLOWED_MESSAGE
            ok = await call(client, "read_text_file", {"path": "in_rel"})
            assert ok.structured_content["text"] == SAFE
            head = await call(client, "read_text_file", {"path": "hello.txt", "head": 1})
            assert head.structured_content == {
                "path": str(ws.root / "hello.txt"),
                "text": "hello world\n",
                "truncated": True,
                "size": len("hello world\nsecond line\nthird line\n"),
            }
            tree = await call(client, "directory_tree", {"path": "."})
            grep = await call(client, "search_file_contents", {"path": ".", "pattern": CANARY})
            names = await call(client, "search_files", {"path": ".", "pattern": "*canary*"})
    assert not tree.is_error and CANARY not in dump(tree) and ".env" not in dump(tree)
    assert grep.structured_content["matches"] == []
    assert names.structured_content["matches"] == []
