"""Contract tests for every framework touch point fenced in mcp_fileserver/framework.py.

Each test fails when a FastMCP or MCP SDK release changes a behaviour we rely on, and
the startup self-check must refuse to serve when the audit would stop seeing calls.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from mcp_types.methods import SERVER_RESULTS

from mcp_fileserver import framework, stdio
from mcp_fileserver.errors import ConfigError, LimitExceeded, NotAllowed, Refusal
from mcp_fileserver.server import build_server
from tests.conftest import make_settings


def test_a_mapped_refusal_is_a_tool_error_and_still_the_same_refusal() -> None:
    original = NotAllowed(detail="outside every root")
    mapped = framework.as_tool_error(original)
    assert isinstance(mapped, ToolError) and isinstance(mapped, NotAllowed)
    assert str(mapped) == original.message == "not found or not allowed"
    assert mapped.outcome == "denied" and mapped.detail == "outside every root"
    limit = framework.as_tool_error(LimitExceeded("too large"))
    assert isinstance(limit, LimitExceeded) and not isinstance(limit, NotAllowed)
    assert framework.as_tool_error(mapped) is mapped


def test_refusal_is_plain_python() -> None:
    assert Refusal.__mro__[1] is Exception


def test_the_private_tool_table_is_what_the_server_lists(tmp_path: Path) -> None:
    settings = make_settings(allow=[tmp_path], log_dir=tmp_path / "audit")
    mcp = build_server(settings)
    listed = {tool.name for tool in asyncio.run(mcp.list_tools())}
    fenced = {tool.name for tool in framework.local_tools(mcp)}
    assert listed and fenced == listed
    assert all(getattr(t.fn, "__maps_refusals__", False) for t in framework.local_tools(mcp))
    wrapped = [t.fn for t in framework.local_tools(mcp)]
    framework.map_refusals(mcp)  # idempotent
    assert [t.fn for t in framework.local_tools(mcp)] == wrapped
    assert sum(isinstance(m, framework.RefusalsAsToolErrors) for m in mcp.middleware) == 1
    assert isinstance(mcp.middleware[0], framework.RefusalsAsToolErrors)


def test_lifespan_and_low_level_server_exist(tmp_path: Path) -> None:
    mcp = FastMCP("contract")
    assert hasattr(framework.lifespan(mcp), "__aenter__")
    server = mcp._mcp_server
    framework.announce_served_only(server)
    options = server.create_initialization_options()
    assert options.capabilities.tools is not None
    for unserved in framework.UNSERVED_CAPABILITIES:
        assert getattr(options.capabilities, unserved, None) is None


def test_wire_helpers_round_trip_a_message() -> None:
    line = '{"jsonrpc":"2.0","id":3,"method":"ping"}'
    message = framework.parse_message(line)
    assert framework.dump_message(framework.session_message(message)) == line
    error = framework.dump_message(framework.session_message((None, -32700, "parse error")))
    assert error == '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}'
    with pytest.raises(ValueError):
        framework.parse_message('{"jsonrpc":"2.0","id":3}')


def test_self_check_passes_on_the_pinned_framework() -> None:
    asyncio.run(framework.self_check())


class _NotTheTypedParams:
    pass


def test_the_server_refuses_to_start_if_the_audit_would_not_see_tools_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Simulates a release that hands middleware something other than the typed params
    (the audit middleware would let every call through unaudited)."""
    monkeypatch.setattr(framework, "CallToolRequestParams", _NotTheTypedParams)
    with pytest.raises(framework.FrameworkChanged):
        asyncio.run(framework.self_check())
    with pytest.raises(ConfigError, match="refusing to start"):
        asyncio.run(stdio.require_framework())


def test_the_server_refuses_to_start_if_refusals_would_be_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Simulates a release whose tools no longer go through `fn` as we wrapped it."""
    monkeypatch.setattr(framework, "refusals_as_tool_errors", lambda fn: fn)
    with pytest.raises(framework.FrameworkChanged):
        asyncio.run(framework.self_check())


def test_receive_ready_takes_waiting_answers_in_order_up_to_the_limit() -> None:
    async def scenario() -> tuple[list[Any], list[Any], list[Any], list[Any]]:
        send, receive = framework.message_stream_pair()
        async with anyio.create_task_group() as tasks:
            for n in range(5):
                tasks.start_soon(send.send, n)
            await anyio.wait_all_tasks_blocked()
            first = [await receive.receive(), *framework.receive_ready(receive, 2)]
            rest = framework.receive_ready(receive, 10)
        none_waiting = framework.receive_ready(receive, 10)
        await send.aclose()
        ended = framework.receive_ready(receive, 10)
        return first, rest, none_waiting, ended

    first, rest, none_waiting, ended = anyio.run(scenario)
    assert first == [0, 1, 2]
    assert rest == [3, 4]
    assert none_waiting == [] and ended == []


def _files_and_sqlite(tmp_path: Path) -> Any:
    import sqlite3

    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    sqlite3.connect(tmp_path / "shop.db").close()
    return make_settings(
        allow=[root], db=[f"shop=sqlite:///{tmp_path / 'shop.db'}"], log_dir=tmp_path / "audit"
    )


def test_listed_schemas_are_what_fastmcp_would_inline_without_defs(tmp_path: Path) -> None:
    """tools/list shows, for every tool, exactly the schemas FastMCP's own dereferencing
    would have built from the generated ones (same validation: identical), with no
    `$defs` or `$ref` left for FastMCP to inline (so jsonref never loads)."""
    from fastmcp.utilities.json_schema import dereference_refs

    from mcp_fileserver.files.tools import register_file_tools
    from mcp_fileserver.sql.tools import register_sql_tools

    settings = _files_and_sqlite(tmp_path)
    generated = FastMCP("generated")
    register_file_tools(generated, settings)
    register_sql_tools(generated, settings)
    expected: dict[tuple[str, str], Any] = {}
    with_defs = 0
    for tool in framework.local_tools(generated):
        for field in ("parameters", "output_schema"):
            schema = getattr(tool, field)
            with_defs += schema is not None and "$defs" in schema
            expected[tool.name, field] = None if schema is None else dereference_refs(schema)
    assert with_defs >= 5, "no tool schema has $defs: this test checks nothing"

    listed = asyncio.run(build_server(settings).list_tools())
    assert {tool.name for tool in listed} == {name for name, _ in expected}
    for tool in listed:
        for field in ("parameters", "output_schema"):
            schema = getattr(tool, field)
            assert schema == expected[tool.name, field], (tool.name, field)
            assert not framework._needs_dereferencing(schema), (tool.name, field)


def test_inline_refs_keeps_sibling_keywords_and_refuses_what_it_cannot_inline() -> None:
    schema = {
        "$defs": {"Kind": {"type": "string", "enum": ["a", "b"], "description": "kind"}},
        "type": "object",
        "properties": {
            "kind": {"$ref": "#/$defs/Kind", "description": "the kind", "default": "a"},
            "kinds": {"type": "array", "items": {"$ref": "#/$defs/Kind"}},
        },
    }
    inlined = framework.inline_refs(schema)
    assert inlined["properties"]["kind"] == {
        "type": "string",
        "enum": ["a", "b"],
        "description": "the kind",
        "default": "a",
    }
    assert inlined["properties"]["kinds"]["items"]["description"] == "kind"
    assert "$defs" not in inlined and "$defs" in schema  # the input is left as it was
    recursive = {
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
        "$ref": "#/$defs/Node",
    }
    remote = {"properties": {"x": {"$ref": "https://example.com/schema"}}}
    for unusual in (recursive, remote):
        with pytest.raises(framework.NotInlinable):
            framework.inline_refs(unusual)


def test_a_schema_left_with_refs_is_still_inlined_by_fastmcp_on_tools_list() -> None:
    """Fallback: what `inline_schema_refs` cannot inline, FastMCP still dereferences."""
    mcp = FastMCP("fallback")

    @mcp.tool
    def tree(depth: int) -> dict[str, Any]:
        return {}

    tool = framework.local_tools(mcp)[0]
    # A pointer inside a definition: valid JSON Schema, beyond `inline_refs`.
    pointer = {
        "$defs": {"A": {"type": "object", "properties": {"x": {"type": "integer"}}}},
        "type": "object",
        "properties": {"depth": {"$ref": "#/$defs/A/properties/x"}},
    }
    tool.parameters = pointer
    assert framework.inline_schema_refs(mcp) is False
    assert tool.parameters is pointer
    listed = asyncio.run(mcp.list_tools())
    assert listed[0].parameters["properties"]["depth"] == {"type": "integer"}


def test_a_json_tool_result_goes_out_as_a_built_one() -> None:
    """`json_tool_result` skips ToolResult's JSON round trip: what reaches the wire must
    be what `ToolResult(...)` gives for the same plain data."""
    from fastmcp.tools import ToolResult
    from mcp.types import TextContent

    data = {"path": "/x", "tree": [{"path": "a", "size": 1, "expanded": None}], "ok": True}
    built = ToolResult(content=[TextContent(type="text", text="a")], structured_content=data)
    fast = framework.json_tool_result("a", data)
    assert fast.to_mcp_result() == built.to_mcp_result()
    assert fast.model_dump() == built.model_dump()


def test_every_file_answer_model_goes_out_as_a_built_one() -> None:
    """The file tools hand `json_tool_result` their output models dumped in JSON mode;
    that must equal what ToolResult's own serialization of the model gives."""
    from fastmcp.tools import ToolResult
    from mcp.types import TextContent

    from mcp_fileserver.files import models

    samples = [
        models.TextFile(path="/r/a", text='x "y"\n\u2028é', truncated=False, size=9),
        models.FileSearch(
            path="/r", pattern="*.py", matches=[models.NameMatch(path="/r/a.py", type="file")],
            truncated=True, stopped_by="max_results", next_cursor="c", entries_visited=3,
        ),
        models.ContentSearch(
            path="/r", pattern="x", matches=[models.LineMatch(path="/r/a", line=2, text="x")],
            files_scanned=1, bytes_scanned=10, truncated=False, stopped_by=None,
            next_cursor=None,
        ),
    ]  # fmt: skip
    for model in samples:
        built = ToolResult(content=[TextContent(type="text", text="t")], structured_content=model)
        fast = framework.json_tool_result("t", model.model_dump(mode="json"))
        assert fast.to_mcp_result() == built.to_mcp_result(), type(model).__name__


# -- large answers: the SDK's serialization and our stdout writer ---------------------

PLAIN_DATA: dict[str, Any] = {
    "path": "/r",
    "matches": [{"path": f'/r/é\u2028{i}\t"q\\', "type": "file"} for i in range(3)],
    "nested": {"empty": {}, "list": [[], [1, 2.5, -0.0, 1e16, 5e-324]], "none": None},
    "next_cursor": None,
    "truncated": True,
    "big": 2**64 - 1,
}
TOOL_CALL_VERSIONS = sorted(v for m, v in SERVER_RESULTS if m == "tools/call")


def _runner() -> Any:
    """A `ServerRunner` as far as `_serialize` reads one (its server)."""
    from mcp.server.runner import ServerRunner

    runner = ServerRunner.__new__(ServerRunner)
    runner.server = FastMCP("contract")._mcp_server
    return runner


@pytest.mark.parametrize("version", TOOL_CALL_VERSIONS)
def test_plain_structured_content_leaves_as_the_sdk_would_shape_it(version: str) -> None:
    """A marked structured content skips the SDK's dumps, yet the result is the one the
    SDK shapes for every protocol version (dropped where a version has no
    structuredContent), and the wire line is the same."""
    from mcp.server.runner import ServerRunner
    from mcp.types import TextContent
    from mcp_types import CallToolResult, JSONRPCResponse

    framework.pass_plain_structured_content()
    assert not framework.pass_plain_structured_content()  # idempotent
    content = [TextContent(type="text", text="t")]
    plain = CallToolResult(
        content=content, structured_content=framework.PlainJSONObject(PLAIN_DATA)
    )
    built = CallToolResult(content=content, structured_content=dict(PLAIN_DATA))
    runner = _runner()
    got = ServerRunner._serialize(runner, "tools/call", version, plain)
    want = ServerRunner._serialize(runner, "tools/call", version, built)
    assert got == want and list(got) == list(want)
    if "structuredContent" in got:
        assert type(got["structuredContent"]) is dict
        assert got["structuredContent"]["matches"] is PLAIN_DATA["matches"]  # not walked
    else:
        assert version == "2024-11-05"
    line = framework.dump_message(
        framework.session_message(JSONRPCResponse(jsonrpc="2.0", id=7, result=got))
    )
    reference = JSONRPCResponse(jsonrpc="2.0", id=7, result=want)
    assert line == reference.model_dump_json(by_alias=True, exclude_unset=True)


def test_fastmcp_hands_the_marked_structured_content_to_the_sdk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bypass only helps while FastMCP passes the tool's structured content on as
    it is (`CallToolResult.structured_content` is typed Any): a real call reaches the
    SDK's `_serialize` with the marker, and the client gets the complete answer."""
    from mcp.server.runner import ServerRunner

    from tests.conftest import in_memory_client

    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "a.py").write_text("x\n")
    settings = make_settings(allow=[tmp_path / "root"], log_dir=tmp_path / "audit")
    seen: list[type] = []
    installed = ServerRunner._serialize

    def spy(self: Any, method: str, version: str, result: Any) -> dict[str, Any]:
        if method == "tools/call":
            seen.append(type(result.structured_content))
        return installed(self, method, version, result)

    async def scenario() -> Any:
        async with in_memory_client(settings) as client:
            monkeypatch.setattr(ServerRunner, "_serialize", spy)
            return await client.call_tool("search_files", {"path": ".", "pattern": "*.py"})

    result = asyncio.run(scenario())
    assert seen == [framework.PlainJSONObject]
    assert result.structured_content["matches"] == [
        {"path": str(tmp_path / "root" / "a.py"), "type": "file"}
    ]


@pytest.mark.parametrize(
    "result",
    [
        {"text": "".join(chr(i) for i in range(0x3000)) + "\U0001f600"},
        {"floats": [0.1, 1e16, 1e21, 1e22, -0.0, 5e-324, 1.7976931348623157e308, 123.456]},
        {"ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1], "bool": [True, False, None]},
        {"beyond 64 bits": 2**64},  # orjson refuses: written by pydantic
        {"nested": {"a": [{"b": {}}, []]}, "_meta": {"k": "v"}},
    ],
)
def test_a_response_line_is_what_pydantic_writes(result: dict[str, Any]) -> None:
    from mcp_types import JSONRPCResponse

    for request_id in (1, "x-1"):
        message = JSONRPCResponse(jsonrpc="2.0", id=request_id, result=result)
        want = message.model_dump_json(by_alias=True, exclude_unset=True)
        assert framework.dump_message(framework.session_message(message)) == want
        assert framework.wire_bytes(framework.session_message(message)) == want.encode()


def test_a_lone_surrogate_is_written_as_its_escape() -> None:
    """A name that is not UTF-8 (a lone surrogate after `os.fsdecode`) is spelled by
    neither orjson nor pydantic: the line carries its JSON escape, valid UTF-8 that
    reads back as the same string, the rest of the message as before."""
    from mcp_types import JSONRPCResponse

    result = {"path": "x\udcffy.md", "name": "é", "nan": float("nan"), "n": [1, 2.5]}
    message = JSONRPCResponse(jsonrpc="2.0", id=1, result=result)
    line = framework.wire_bytes(framework.session_message(message))
    assert b"x\\udcffy.md" in line and "é".encode() in line
    assert json.loads(line.decode("utf-8"))["result"] == {**result, "nan": None}
    assert framework.dump_message(framework.session_message(message)) == line.decode()
