"""MCP Roots over the protocol, on both eras: client roots narrow, never widen."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client
from mcp.shared.exceptions import MCPError

from mcp_fileserver.files.client_roots import paths_from_uris
from mcp_fileserver.server import build_server
from tests.files.helpers import CANARY, SAFE, Workspace, call, dump
from tests.files.test_attacks import settings_for

MODES = ["auto", "legacy"]  # 2026-07-28 (InputRequiredResult) and handshake-era roots/list


def client_for(ws: Workspace, roots: Any, mode: str) -> Client:
    return Client(build_server(settings_for(ws)), roots=roots, mode=mode)


async def allowed(client: Client) -> list[str]:
    result = await call(client, "list_allowed_directories", {})
    assert not result.is_error, dump(result)
    return result.structured_content["directories"]


@pytest.mark.parametrize("mode", MODES)
async def test_client_root_inside_narrows(ws: Workspace, mode: str) -> None:
    async with client_for(ws, [f"file://{ws.root}/sub"], mode) as client:
        assert await allowed(client) == [str(ws.root / "sub")]
        ok = await call(client, "read_text_file", {"path": "notes.txt"})  # relative to it
        assert ok.structured_content["text"] == SAFE
        ok = await call(client, "read_text_file", {"path": str(ws.root / "sub" / "notes.txt")})
        assert not ok.is_error
        for path in (str(ws.root / "hello.txt"), "../hello.txt", "../../outside/canary.txt"):
            refused = await call(client, "read_text_file", {"path": path})
            assert refused.is_error and "hello world" not in dump(refused)
        listing = await call(client, "list_directory", {"path": str(ws.root)})
        assert listing.is_error


@pytest.mark.parametrize("mode", MODES)
async def test_roots_cannot_widen(ws: Workspace, mode: str) -> None:
    roots = ["file:///", f"file://{ws.outside}", f"file://{ws.root}-evil"]
    async with client_for(ws, roots, mode) as client:
        assert await allowed(client) == [str(ws.root)]  # "/" contains the root: kept as is
        for path in (str(ws.canary_file), f"{ws.root}-evil/canary.txt", "../outside/canary.txt"):
            result = await call(client, "read_text_file", {"path": path})
            assert result.is_error and CANARY not in dump(result)
        assert not (await call(client, "read_text_file", {"path": "hello.txt"})).is_error


@pytest.mark.parametrize("mode", MODES)
async def test_an_empty_roots_list_sets_no_boundary(ws: Workspace, mode: str) -> None:
    async with client_for(ws, [], mode) as client:
        assert await allowed(client) == [str(ws.root)]
        ok = await call(client, "read_text_file", {"path": "hello.txt"})
        assert not ok.is_error, dump(ok)
        refused = await call(client, "read_text_file", {"path": str(ws.canary_file)})
        assert refused.is_error and CANARY not in dump(refused)


@pytest.mark.parametrize("mode", MODES)
async def test_unusable_roots_leave_nothing(ws: Workspace, mode: str) -> None:
    async with client_for(ws, ["file://otherhost/data"], mode) as c:
        assert await allowed(c) == []


@pytest.mark.parametrize("mode", MODES)
async def test_roots_outside_leave_nothing(ws: Workspace, mode: str) -> None:
    roots = [f"file://{ws.outside}", f"file://{ws.root}/../outside"]
    async with client_for(ws, roots, mode) as client:
        assert await allowed(client) == []
        for tool, args in (
            ("read_text_file", {"path": "hello.txt"}),
            ("read_text_file", {"path": str(ws.canary_file)}),
            ("list_directory", {"path": str(ws.outside)}),
            ("search_file_contents", {"path": str(ws.outside), "pattern": "CANARY"}),
        ):
            result = await call(client, tool, args)
            assert result.is_error and CANARY not in dump(result)


@pytest.mark.parametrize("mode", MODES)
async def test_escaping_client_root_is_ignored(ws: Workspace, mode: str) -> None:
    (ws.root / "door").symlink_to(ws.outside)
    roots = [f"file://{ws.root}/door", f"file://{ws.root}/sub"]
    async with client_for(ws, roots, mode) as client:
        assert await allowed(client) == [str(ws.root / "sub")]
        result = await call(client, "read_text_file", {"path": str(ws.root / "door/canary.txt")})
        assert result.is_error and CANARY not in dump(result)


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
@pytest.mark.parametrize("mode", MODES)
async def test_roots_refresh_on_list_changed(ws: Workspace, mode: str) -> None:
    current = [f"file://{ws.root}/sub"]
    async with client_for(ws, lambda _ctx: list(current), mode) as client:
        assert await allowed(client) == [str(ws.root / "sub")]
        current[:] = [f"file://{ws.root}/sub/deeper"]
        assert await allowed(client) == [str(ws.root / "sub")]  # cached until notified
        await client.send_roots_list_changed()
        await call(client, "list_allowed_directories", {})  # the notification is processed
        assert await allowed(client) == [str(ws.root / "sub" / "deeper")]


@pytest.mark.parametrize("mode", MODES)
async def test_failing_roots_fail_closed(ws: Workspace, mode: str) -> None:
    def broken(_ctx: object) -> list[str]:
        raise RuntimeError("client bug")

    async with client_for(ws, broken, mode) as client:
        if mode == "auto":
            # 2026-07-28: the client cannot answer the server's roots request and gives up
            with pytest.raises(MCPError, match="client bug"):
                await call(client, "read_text_file", {"path": "hello.txt"})
            return
        result = await call(client, "read_text_file", {"path": "hello.txt"})
    assert result.is_error and "roots could not be listed" in dump(result)
    assert "hello world" not in dump(result)


@pytest.mark.parametrize("mode", MODES)
async def test_without_roots_capability_configured_dirs_apply(ws: Workspace, mode: str) -> None:
    async with client_for(ws, None, mode) as client:
        assert await allowed(client) == [str(ws.root)]


def test_paths_from_uris() -> None:
    assert paths_from_uris(
        [
            "file:///data/a%20b",
            "file://localhost/x",
            "file://remote-host/y",
            "https://example.com/z",
            "file:relative",
            "file:///nul%00byte",
        ]
    ) == ["/data/a b", "/x"]
