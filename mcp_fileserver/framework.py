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
- `lifespan`, `serve_session`: `FastMCP._lifespan_manager` and `FastMCP._mcp_server`
  (the SDK's low-level server), driven with our own stdio streams;
- `sdk_stdio_server`: the SDK's stdio transport, given our own line reader and writer
  in place of its stdin/stdout wrappers (stdio.py);
- the audit middleware's `__call__` override, which relies on FastMCP running the
  middleware chain around each tool with the typed `CallToolRequestParams` message
  (checked by `self_check`).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.function_tool import FunctionTool
from mcp.server.stdio import stdio_server as sdk_stdio_server

from mcp_fileserver.errors import Refusal

__all__ = [
    "as_tool_error",
    "lifespan",
    "local_tools",
    "map_refusals",
    "sdk_stdio_server",
    "serve_session",
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
    ToolError.__init__(twin, *refusal.args, log_level=logging.DEBUG)
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
    """Outermost: a refusal raised by a middleware (the audit's fail-closed refusal, a
    rate limit, a locked tool) leaves as a `ToolError` too, not as an internal error."""

    async def __call__(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        try:
            return await call_next(context)
        except Refusal as refusal:
            raise as_tool_error(refusal) from None


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


def lifespan(mcp: FastMCP) -> AbstractAsyncContextManager[Any]:
    """`mcp`'s lifespan (framework internal), entered around a session as
    `FastMCP.run_stdio_async` does."""
    return mcp._lifespan_manager()


async def serve_session(mcp: FastMCP, read_stream: Any, write_stream: Any) -> None:
    """Run the MCP session of `mcp` on the given SDK message streams (framework internal:
    the SDK's low-level server behind FastMCP)."""
    server = mcp._mcp_server
    await server.run(read_stream, write_stream, server.create_initialization_options())
