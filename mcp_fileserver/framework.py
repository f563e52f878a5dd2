"""Every place this server relies on FastMCP or MCP SDK internals, fenced in one module.

The security core raises plain `errors.Refusal`s and knows nothing of MCP; the audit must
see every `tools/call`. Both depend on framework behaviour that is not public API, so each
touch point lives here, is named, and has a contract test (tests/core/test_framework.py)
that fails when a FastMCP or SDK release changes it. `self_check` runs the audited path
once at startup: if the framework stopped routing tools/call through our middleware, the
server refuses to start rather than serve unaudited calls.

Touch points:
- `map_refusals`: the local provider's registered tools (`LocalProvider._components`)
  and `FunctionTool.fn`, wrapped so a `Refusal` leaves the tool as a `ToolError`, the
  one exception FastMCP passes to the client when `mask_error_details=True`;
- `RefusalsAsToolErrors`: inserted first in `FastMCP.middleware`; relies on FastMCP
  turning a `ToolError` into an `isError` result and an `MCPError` into a JSON-RPC error,
  and on `NotFoundError` / `ValidationError` (with pydantic's error as `__cause__`) for
  unknown tools and bad arguments;
- `lifespan`, `serve_session`: `FastMCP._lifespan_manager` and `FastMCP._mcp_server`
  (the SDK's low-level server), driven with our own stdio streams;
- `announce_served_only`: the low-level server's `get_capabilities`, trimmed;
- `inline_schema_refs`: `FunctionTool.parameters` / `.output_schema`, rewritten without
  `$defs` so that FastMCP's `DereferenceRefsMiddleware` (which inlines them on every
  `tools/list` with jsonref, and through it requests) finds nothing to do;
- `message_stream_pair`, `parse_message`, `session_message`, `dump_message`: what the
  SDK's stdio transport does with a line, for our own transport (stdio.py); a response
  is written by orjson (`wire_bytes`), byte for byte what `model_dump_json` writes for
  its plain data;
  `receive_ready` takes the answers already waiting on a session stream (one write);
- `json_tool_result`: a `ToolResult` made with `model_construct` (the fields
  `to_mcp_result` reads), skipping its serialize-and-parse of structured content that is
  plain JSON data already (directory_tree); its structured content is marked
  (`PlainJSONObject`), which FastMCP hands on unchanged (`CallToolResult.structured_content`
  is typed `Any`);
- `pass_plain_structured_content`: the SDK's `ServerRunner._serialize`, wrapped so that
  a marked structured content is not dumped and re-validated (two walks of a page of
  1,000 matches); the envelope still goes through it whole;
- `skip_unrecorded_spans`: `fastmcp.settings.telemetry_mode`, set to `propagation_only`
  when no OpenTelemetry SDK records spans (FastMCP builds two spans' attributes per call);
- `drop_idle_dereferencing`: FastMCP's `DereferenceRefsMiddleware`, taken out of the
  chain once `inline_schema_refs` left it nothing to do;
- the audit middleware's `__call__` override (audit/middleware.py, the one touch point
  outside this module), which relies on FastMCP running the middleware chain around
  each tool with the typed `CallToolRequestParams` message: `self_check` runs a probe
  that dispatches exactly as it does.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar, cast

import anyio
import fastmcp
import orjson
from fastmcp import FastMCP
from fastmcp.exceptions import DisabledError, NotFoundError, ToolError, ValidationError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult
from fastmcp.tools.function_tool import FunctionTool
from mcp import MCPError
from mcp.server.runner import ServerRunner
from mcp.shared._context_streams import create_context_streams
from mcp.shared.message import SessionMessage
from mcp.types import TextContent
from mcp_types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ErrorData,
    JSONRPCError,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)
from opentelemetry import trace
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticSerializationError

from mcp_fileserver.errors import Refusal, UnknownTool

__all__ = [
    "FrameworkChanged",
    "as_tool_error",
    "drop_idle_dereferencing",
    "dump_message",
    "inline_schema_refs",
    "lifespan",
    "local_tools",
    "map_refusals",
    "message_stream_pair",
    "parse_message",
    "pass_plain_structured_content",
    "receive_ready",
    "self_check",
    "serve_session",
    "session_message",
    "skip_unrecorded_spans",
    "wire_bytes",
]

R = TypeVar("R", bound=Refusal)

_TOOL_ERROR_TYPES: dict[type[Refusal], type[Refusal]] = {}


def as_tool_error(refusal: R) -> R:
    """The same refusal, also a `ToolError`: FastMCP shows its message to the client,
    and code that tells refusals apart (`isinstance(exc, NotAllowed)`, `exc.outcome`,
    `exc.detail`) still can."""
    if isinstance(refusal, ToolError):
        return refusal
    kind = type(refusal)
    mapped = _TOOL_ERROR_TYPES.get(kind)
    if mapped is None:
        mapped = type(kind.__name__, (kind, ToolError), {"__module__": kind.__module__})
        _TOOL_ERROR_TYPES[kind] = mapped
    twin = mapped.__new__(mapped)
    twin.__dict__.update(refusal.__dict__)
    # An expected outcome, recorded by the audit: not an ERROR line in the human log.
    ToolError.__init__(cast(ToolError, twin), *refusal.args, log_level=logging.DEBUG)
    twin.__cause__ = refusal.__cause__
    twin.__suppress_context__ = True
    twin.__traceback__ = refusal.__traceback__
    return twin  # type: ignore[return-value]


def refusals_as_tool_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, raising `as_tool_error(refusal)` for each `Refusal`. Signature, type hints
    and name follow `fn` (`functools.wraps` sets `__wrapped__`, which `inspect` and
    `typing.get_type_hints` follow), so the tool's schemas are unchanged."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_tool(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except Refusal as refusal:
                raise as_tool_error(refusal) from None

        return async_tool

    @functools.wraps(fn)
    def sync_tool(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Refusal as refusal:
            raise as_tool_error(refusal) from None

    return sync_tool


def local_tools(mcp: FastMCP) -> list[FunctionTool]:
    """The function tools registered on `mcp` itself (framework internal: the local
    provider's component table)."""
    components = mcp.local_provider._components
    return [c for c in components.values() if isinstance(c, FunctionTool)]


class RefusalsAsToolErrors(Middleware):
    """Outermost, so it sees what every other middleware raised:
    - a refusal from a middleware (the audit's fail-closed refusal, a rate limit, a
      locked tool) leaves as a `ToolError`, not as an internal error;
    - an unknown tool is the JSON-RPC error -32602 the specification asks for, not a
      tool result (the audit, inside, has recorded it);
    - invalid arguments read as one short sentence, without pydantic's raw text, its
      documentation links or the rejected values."""

    async def __call__(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        try:
            return await call_next(context)
        except UnknownTool:
            # The audit refused the name before any per-tool state (and recorded it).
            raise unknown_tool_error(context) from None
        except Refusal as refusal:
            raise as_tool_error(refusal) from None
        except (NotFoundError, DisabledError):
            if context.method != "tools/call":
                raise
            raise unknown_tool_error(context) from None
        except ValidationError as exc:
            cause = exc.__cause__
            if not isinstance(cause, PydanticValidationError):
                raise
            name = getattr(context.message, "name", "the tool")
            raise ToolError(argument_errors(str(name), cause)) from None


def unknown_tool_error(context: MiddlewareContext[Any]) -> MCPError:
    name = getattr(context.message, "name", "")
    return MCPError(
        code=INVALID_PARAMS,
        message=f"unknown tool {str(name)[:100]!r}: tools/list names the tools this server offers",
    )


MAX_ARGUMENT_ERRORS = 3


def argument_errors(tool: str, error: PydanticValidationError) -> str:
    """One sentence naming each bad argument and what it needs; never its value."""
    problems = []
    for item in error.errors(include_url=False, include_input=False)[:MAX_ARGUMENT_ERRORS]:
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        kind = item["type"]
        if kind in ("extra_forbidden", "unexpected_keyword_argument"):
            problems.append(f"{where} is not an argument of {tool}")
        elif kind.startswith("missing"):
            problems.append(f"{where} is required")
        else:
            problems.append(f"{where}: {item['msg'][:1].lower()}{item['msg'][1:]}")
    more = error.error_count() - len(problems)
    tail = f" (and {more} more)" if more > 0 else ""
    return f"invalid arguments for {tool[:100]}: " + "; ".join(problems) + tail


def map_refusals(mcp: FastMCP) -> None:
    """Make every refusal, from a tool or a middleware, reach the client as a
    `ToolError` with its own message. Call after registering tools and middleware;
    idempotent."""
    for tool in local_tools(mcp):
        if not getattr(tool.fn, "__maps_refusals__", False):
            wrapped = refusals_as_tool_errors(tool.fn)
            wrapped.__maps_refusals__ = True  # type: ignore[attr-defined]
            tool.fn = wrapped
    if not any(isinstance(m, RefusalsAsToolErrors) for m in mcp.middleware):
        mcp.middleware.insert(0, RefusalsAsToolErrors())


class NotInlinable(ValueError):
    """A schema whose `$ref`s cannot be inlined here (recursive, remote, or unusual)."""


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with each local `#/$defs/Name` reference replaced by its definition
    (keywords beside a `$ref`, such as a description or default, override the
    definition's) and `$defs` dropped: what FastMCP's `dereference_refs` builds for the
    schemas pydantic generates (tests/core/test_framework.py compares the two for every
    tool). Raises `NotInlinable` for anything else; the input is not modified."""
    defs = schema.get("$defs", {})
    if not isinstance(defs, dict):
        raise NotInlinable("$defs is not an object")

    def walk(node: Any, expanding: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [walk(item, expanding) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if ref is None:
            return {
                key: value
                if key in ("default", "examples", "const", "enum")
                else walk(value, expanding)
                for key, value in node.items()
                if key != "$defs"
            }
        prefix = "#/$defs/"
        if not isinstance(ref, str) or not ref.startswith(prefix):
            raise NotInlinable(f"unsupported $ref {ref!r}")
        name = ref[len(prefix) :]
        if name in expanding or not isinstance(defs.get(name), dict):
            raise NotInlinable(f"recursive or missing definition {name!r}")
        target = walk(defs[name], expanding | {name})
        siblings = walk({k: v for k, v in node.items() if k != "$ref"}, expanding)
        return {**target, **siblings}

    inlined = walk(schema, frozenset())
    assert isinstance(inlined, dict)
    return inlined


def _needs_dereferencing(schema: dict[str, Any] | None) -> bool:
    """FastMCP's own test (`DereferenceRefsMiddleware`): `$defs` at the root or a `$ref`
    anywhere."""
    if schema is None:
        return False
    return "$defs" in schema or '"$ref"' in json.dumps(schema)


def inline_schema_refs(mcp: FastMCP) -> bool:
    """Rewrite every local tool's input and output schema without `$defs`, as FastMCP
    would on each `tools/list`, once, at startup. True when no schema is left for FastMCP
    to dereference (so jsonref and requests never load); False when one could not be
    inlined and FastMCP will do it on `tools/list` as before."""
    complete = True
    for tool in local_tools(mcp):
        for field in ("parameters", "output_schema"):
            schema = getattr(tool, field)
            if not _needs_dereferencing(schema):
                continue
            try:
                setattr(tool, field, inline_refs(schema))
            except NotInlinable:
                complete = False
    return complete


def drop_idle_dereferencing(mcp: FastMCP) -> bool:
    """Take FastMCP's `DereferenceRefsMiddleware` out of `mcp`'s chain when it has
    nothing to do: every local component is a tool whose schemas hold no `$ref` (after
    `inline_schema_refs`). It only rewrites `tools/list` and resource-template listings,
    yet as a middleware it wraps every `tools/call` in three more layers. True if
    dropped; call after registering every tool."""
    from fastmcp.server.middleware.dereference import DereferenceRefsMiddleware

    components = mcp.local_provider._components.values()
    if not all(isinstance(c, FunctionTool) for c in components):
        return False
    tools = local_tools(mcp)
    if any(
        _needs_dereferencing(t.parameters) or _needs_dereferencing(t.output_schema) for t in tools
    ):
        return False
    before = len(mcp.middleware)
    mcp.middleware[:] = [m for m in mcp.middleware if not isinstance(m, DereferenceRefsMiddleware)]
    return len(mcp.middleware) < before


TELEMETRY_MODE_VARIABLE = "FASTMCP_TELEMETRY_MODE"


def skip_unrecorded_spans() -> bool:
    """Stop FastMCP building spans that nothing records: with only the OpenTelemetry API
    installed (no SDK, no tracer provider set), FastMCP still assembles the attributes
    of two no-op spans on every call, ~7% of the event loop's time with calls in flight
    (py-spy, bench/RESULTS.md issue 15). `propagation_only` keeps trace context flowing
    through `_meta`. An operator's own `FASTMCP_TELEMETRY_MODE`, or a tracer provider
    set before the server is built (`opentelemetry-instrument`), leaves FastMCP as it
    is. True if changed."""
    if os.environ.get(TELEMETRY_MODE_VARIABLE):
        return False
    provider = trace.get_tracer_provider()
    if not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return False
    if fastmcp.settings.telemetry_mode != "native":
        return False
    fastmcp.settings.telemetry_mode = "propagation_only"
    return True


class PlainJSONObject(dict[str, Any]):
    """Structured content that is plain JSON data already (str keys; str, finite
    numbers, bool, None, lists and dicts of them), as `json_tool_result` vouches:
    `pass_plain_structured_content` lets it out without dumping it again."""


def json_tool_result(text: str, structured: dict[str, Any]) -> ToolResult:
    """A tool result whose structured content is already plain JSON data (str, finite
    numbers, bool, None, lists and dicts of them), made without `ToolResult.__init__`'s
    round trip through JSON text and back, which for a 57,000-entry tree cost a fifth of
    the call (bench/RESULTS.md, issue 19). The content is marked `PlainJSONObject`."""
    return ToolResult.model_construct(
        content=[TextContent(type="text", text=text)],
        structured_content=PlainJSONObject(structured),
        meta=None,
        is_error=False,
    )


def pass_plain_structured_content() -> bool:
    """Make the SDK's result serialization (`ServerRunner._serialize`, per call: a
    `model_dump` of the result, then a validation and a second dump against the
    negotiated version's schema) skip a `PlainJSONObject` structured content: the
    result goes through it with an empty object in its place, which is then swapped
    back, by reference, where the version's schema kept one (an older version drops
    it as before). For a page of 1,000 matches the two walks cost ~0.7 ms; the line
    written to stdout is the same. Class-wide and idempotent; nothing else changes.
    True if installed now."""
    original = ServerRunner._serialize
    if getattr(original, "_passes_plain_structured_content", False):
        return False

    @functools.wraps(original)
    def _serialize(self: Any, method: str, version: str, result: Any) -> dict[str, Any]:
        structured = getattr(result, "structured_content", None)
        if type(structured) is not PlainJSONObject or not isinstance(result, CallToolResult):
            return original(self, method, version, result)
        shell = result.model_copy(update={"structured_content": {}})
        dumped = original(self, method, version, shell)
        if "structuredContent" in dumped:
            dumped["structuredContent"] = dict(structured)
        return dumped

    _serialize._passes_plain_structured_content = True  # type: ignore[attr-defined]
    ServerRunner._serialize = _serialize  # type: ignore[method-assign]
    return True


def message_stream_pair() -> tuple[Any, Any]:
    """A (send, receive) pair of the SDK's session message streams (framework internal:
    the streams its `stdio_server` hands to the session)."""
    return create_context_streams[Any](0)


def receive_ready(stream: Any, limit: int) -> list[Any]:
    """Up to `limit` items a session message stream can hand over without waiting: those
    whose senders are already blocked on it (framework internal: the SDK's context stream
    wraps an anyio memory stream as `_inner`, with the sender's context beside each item).
    Stops early at the end of the stream; the next `receive` reports it."""
    inner = stream._inner
    ready: list[Any] = []
    while len(ready) < limit:
        try:
            _context, item = inner.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream):
            break
        ready.append(item)
    return ready


def parse_message(line: str) -> Any:
    """One JSON-RPC message, as the SDK's stdio transport parses it; raises on anything
    else (see jsonrpc_errors.py for the answer)."""
    return jsonrpc_message_adapter.validate_json(line, by_name=False)


def session_message(message: Any) -> SessionMessage:
    """A parsed message, or an `(id, code, text)` error triple, as a session message."""
    if isinstance(message, tuple):
        request_id, code, text = message
        message = JSONRPCError(
            jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=text)
        )
    return SessionMessage(message)


# What orjson must not spell itself (pydantic's JSON differs for these): raised instead.
_ORJSON_PLAIN_ONLY = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def dump_message(item: SessionMessage) -> str:
    """The wire form of an outgoing message, as the SDK's stdio transport writes it
    (`model_dump_json(by_alias=True, exclude_unset=True)`)."""
    return wire_bytes(item).decode()


def wire_bytes(item: SessionMessage) -> bytes:
    """`dump_message` as UTF-8 bytes, what stdout takes: no decode and encode again of
    a 10 MB answer. A response, whose result the SDK has made plain JSON data, is
    written by orjson: the same bytes (strings, floats and integers are spelled alike;
    tests/core/test_framework.py) at about a fifth of the cost for a page of 1,000
    matches. Anything orjson would spell its own way (dates, subclasses, integers
    beyond 64 bits, lone surrogates) raises there and takes the pydantic path."""
    message = item.message
    if type(message) is JSONRPCResponse:
        try:
            return orjson.dumps(
                {"jsonrpc": message.jsonrpc, "id": message.id, "result": message.result},
                option=_ORJSON_PLAIN_ONLY,
            )
        except TypeError:  # orjson.JSONEncodeError
            pass
    try:
        return message.model_dump_json(by_alias=True, exclude_unset=True).encode()
    except PydanticSerializationError:
        return _escaping_lone_surrogates(message)


def _escaping_lone_surrogates(message: Any) -> bytes:
    """`message` as JSON whose strings may hold lone surrogates: a file name that is not
    UTF-8 comes from the disk with one (`os.fsdecode`), neither orjson nor pydantic
    writes it, and the failed write stopped the whole server. Each is written as its
    JSON escape (`"x\\udcffy.md"`): the answer arrives and the server keeps serving."""
    data = message.model_dump(mode="json", by_alias=True, exclude_unset=True)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # A lone surrogate can only stand inside a JSON string: its `\\uXXXX` is its escape.
    return text.encode("utf-8", "backslashreplace")


def lifespan(mcp: FastMCP) -> AbstractAsyncContextManager[Any]:
    """`mcp`'s lifespan (framework internal), entered around a session as
    `FastMCP.run_stdio_async` does."""
    return mcp._lifespan_manager()


async def serve_session(mcp: FastMCP, read_stream: Any, write_stream: Any) -> None:
    """Run the MCP session of `mcp` on the given SDK message streams (framework internal:
    the SDK's low-level server behind FastMCP), announcing only what is served."""
    server = mcp._mcp_server
    announce_served_only(server)
    await server.run(read_stream, write_stream, server.create_initialization_options())


# Capabilities FastMCP announces whether or not anything backs them. This server has no
# prompts or resources and sends no log messages to the client (logs go to stderr,
# records to the audit log), so a client is not told otherwise.
UNSERVED_CAPABILITIES = ("prompts", "resources", "logging", "completions")


def announce_served_only(server: Any) -> None:
    """Drop `UNSERVED_CAPABILITIES` from what `server` announces, at `initialize` and
    at `server/discover` alike (both ask its `get_capabilities`). Idempotent."""
    if getattr(server, "_mcp_fileserver_served_only", False):
        return
    announce = server.get_capabilities

    def get_capabilities(*args: Any, **kwargs: Any) -> Any:
        capabilities = announce(*args, **kwargs)
        unserved = {name: None for name in UNSERVED_CAPABILITIES if hasattr(capabilities, name)}
        return capabilities.model_copy(update=unserved)

    server.get_capabilities = get_capabilities
    server._mcp_fileserver_served_only = True


# -- startup self-check ---------------------------------------------------------------


class FrameworkChanged(RuntimeError):
    """FastMCP no longer behaves as the audit and the refusal mapping rely on."""


class _ProbeMiddleware(Middleware):
    """Dispatches exactly as `AuditMiddleware.__call__` does, and notes what it saw."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        if isinstance(context.message, CallToolRequestParams):
            self.seen.append(str(context.message.name))
        return await call_next(context)


PROBE_TOOL = "self_check_probe"


async def self_check() -> None:
    """Run one refused call through a throwaway FastMCP server built as ours is, and
    raise `FrameworkChanged` unless (1) a middleware overriding `__call__` saw the
    `tools/call` with its typed params, as the audit middleware must, and (2) the
    refusal reached the caller as a `ToolError` with its own message. Costs a few
    milliseconds at startup; a server whose audit would be a pass-through never serves."""
    from mcp_fileserver.errors import NOT_ALLOWED_MESSAGE, NotAllowed

    probe_server = FastMCP("self-check", strict_input_validation=True, mask_error_details=True)

    async def self_check_probe() -> str:
        raise NotAllowed(detail="self-check")

    probe_server.tool(self_check_probe, name=PROBE_TOOL)
    probe = _ProbeMiddleware()
    probe_server.middleware.insert(0, probe)
    map_refusals(probe_server)
    try:
        await probe_server.call_tool(PROBE_TOOL, {})
    except ToolError as exc:
        if str(exc) != NOT_ALLOWED_MESSAGE or not isinstance(exc, NotAllowed):
            raise FrameworkChanged(f"a refusal reached the client as {exc!r}") from None
    else:
        raise FrameworkChanged("a refused call returned a result")
    if probe.seen != [PROBE_TOOL]:
        raise FrameworkChanged(
            f"the middleware chain saw {probe.seen!r} instead of one typed tools/call"
        )
