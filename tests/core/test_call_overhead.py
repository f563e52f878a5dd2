"""Issue 15 §2: framework work with no effect here is left out of every call.

Contract tests for `framework.drop_idle_dereferencing` and `framework.skip_unrecorded_spans`:
each fails if a FastMCP release moves what it relies on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import fastmcp
import pytest
from fastmcp import FastMCP
from fastmcp.server.middleware.dereference import DereferenceRefsMiddleware
from opentelemetry import trace

from mcp_fileserver import framework
from mcp_fileserver.server import build_server
from tests.conftest import in_memory_client, make_settings


@pytest.fixture
def native_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """FastMCP's default mode, restored after the test (the setting is process-wide)."""
    monkeypatch.setattr(fastmcp.settings, "telemetry_mode", "native")
    monkeypatch.delenv(framework.TELEMETRY_MODE_VARIABLE, raising=False)


def test_the_dereferencing_middleware_is_out_of_the_call_chain(tmp_path: Path) -> None:
    assert any(isinstance(m, DereferenceRefsMiddleware) for m in FastMCP("plain").middleware)
    settings = make_settings(allow=[tmp_path], db=[], log_dir=tmp_path / "audit")
    mcp = build_server(settings)
    assert not any(isinstance(m, DereferenceRefsMiddleware) for m in mcp.middleware)
    for tool in asyncio.run(mcp.list_tools()):
        for schema in (tool.parameters, tool.output_schema):
            assert not framework._needs_dereferencing(schema), tool.name


def test_the_dereferencing_middleware_stays_while_a_schema_needs_it() -> None:
    mcp = FastMCP("fallback")

    @mcp.tool
    def tree(depth: int) -> dict[str, Any]:
        return {}

    tool = framework.local_tools(mcp)[0]
    tool.parameters = {
        "$defs": {"A": {"type": "object", "properties": {"x": {"type": "integer"}}}},
        "type": "object",
        "properties": {"depth": {"$ref": "#/$defs/A/properties/x"}},
    }
    assert framework.inline_schema_refs(mcp) is False
    assert framework.drop_idle_dereferencing(mcp) is False
    assert any(isinstance(m, DereferenceRefsMiddleware) for m in mcp.middleware)
    listed = asyncio.run(mcp.list_tools())
    assert listed[0].parameters["properties"]["depth"] == {"type": "integer"}


@pytest.mark.usefixtures("native_telemetry")
async def test_calls_build_no_span_attributes_when_nothing_records_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastmcp.server import telemetry

    settings = make_settings(allow=[tmp_path], log_dir=tmp_path / "audit")
    (tmp_path / "a.txt").write_text("hello\n")
    calls: list[str] = []

    def counted(name: str) -> Any:
        original = getattr(telemetry, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return original(*args, **kwargs)

        return wrapper

    for name in ("get_protocol_span_attributes", "_build_server_span_attrs"):
        monkeypatch.setattr(telemetry, name, counted(name))
    async with in_memory_client(settings) as client:
        assert fastmcp.settings.telemetry_mode == "propagation_only"
        result = await client.call_tool("read_text_file", {"path": "a.txt"})
    assert result.structured_content is not None
    assert result.structured_content["text"] == "hello\n"
    assert calls == []
    # The contract: in FastMCP's own default mode these run on every call.
    monkeypatch.setattr(fastmcp.settings, "telemetry_mode", "native")
    probe = FastMCP("probe")
    probe.tool(lambda: "ok", name="ok")
    await probe.call_tool("ok", {})
    assert "_build_server_span_attrs" in calls


@pytest.mark.usefixtures("native_telemetry")
def test_an_operator_choice_or_a_recording_sdk_keeps_fastmcp_spans(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(framework.TELEMETRY_MODE_VARIABLE, "native")
    assert framework.skip_unrecorded_spans() is False
    assert fastmcp.settings.telemetry_mode == "native"
    monkeypatch.delenv(framework.TELEMETRY_MODE_VARIABLE)

    class RecordingProvider(trace.TracerProvider):
        def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
            return trace.NoOpTracer()

    monkeypatch.setattr(trace, "get_tracer_provider", RecordingProvider)
    assert framework.skip_unrecorded_spans() is False
    assert fastmcp.settings.telemetry_mode == "native"
    monkeypatch.undo()
    monkeypatch.setattr(fastmcp.settings, "telemetry_mode", "native")
    monkeypatch.delenv(framework.TELEMETRY_MODE_VARIABLE, raising=False)
    assert framework.skip_unrecorded_spans() is True
    assert fastmcp.settings.telemetry_mode == "propagation_only"
