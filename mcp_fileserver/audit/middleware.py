"""The audit layer's one contact with the framework: every `tools/call` is admitted,
run, cleaned and recorded.

Each concern lives in its own module; this one only adapts them to FastMCP:
- the record, outermost (recorder.py): whatever refuses or breaks the call, one
  `CallRecord` is written before the result leaves, or the result is withheld;
- the policy (policy.py): unknown tool names, lockout, the argument scan (alerts
  only), rate limits;
- the masking of secrets in results (`_clean`, below: it reads the framework's result
  types).

Order for one call:
1. fail closed: if the audit log cannot be written, refuse before running anything;
2. the policy admits the call, makes it wait briefly for a rate-limit token, or
   refuses it (unknown tool, locked, rate limited);
3. the tool runs; secrets are masked out of its result and error text;
4. the call's records are written; if that fails the result is withheld and the call
   is refused instead.

Framework touch points, all here: the `__call__` override, `on_call_tool`, the result
and exception types in `_clean` / `_classify`, the request context in `_client`, and
the server's tool list in `_load_policy`.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import DisabledError, NotFoundError, ToolError, ValidationError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult
from loguru import logger
from mcp import MCPError
from mcp.types import (
    AudioContent,
    BlobResourceContents,
    CallToolRequestParams,
    EmbeddedResource,
    ImageContent,
    TextContent,
    TextResourceContents,
)
from pydantic import ValidationError as PydanticValidationError

from mcp_fileserver.audit.log import AuditLog
from mcp_fileserver.audit.policy import CallPolicy
from mcp_fileserver.audit.recorder import CallRecord, Recorder
from mcp_fileserver.audit.records import Outcome
from mcp_fileserver.audit.redact import Redactor
from mcp_fileserver.config import Settings
from mcp_fileserver.errors import AuditUnavailable, Refusal, Unavailable
from mcp_fileserver.secrets import mask_deep

AUDIT_DOWN_MESSAGE = (
    "refused: the audit log cannot be written and this server does not serve unaudited "
    "calls; ask the operator to check the audit log folder"
)


class AuditMiddleware(Middleware):
    def __init__(
        self, settings: Settings, log: AuditLog | None, server: FastMCP | None = None
    ) -> None:
        self.settings = settings
        self.log = log
        self.fail_open = settings.audit.fail_open
        self.redactor = Redactor(settings.secrets, settings.audit.max_value_chars)
        self.recorder = Recorder(settings, log, self.redactor)
        # Built on the first call from the server's tool list (the tools are registered
        # after the middleware is created, and listing them is asynchronous).
        self.policy: CallPolicy | None = None
        self._server = weakref.ref(server) if server is not None else None
        self._warned_unaudited = False
        self._client_info: object = None  # the last `clientInfo` seen, and its strings
        self._client_fields: tuple[str, str] = ("", "")
        self.closer: Callable[[], object] | None = None
        self.in_flight = 0  # calls between entry and their record (read at shutdown)
        self.stopping = False  # set on SIGTERM: new calls are refused and recorded
        self.stopped = False

    def close(self) -> None:
        """Release the audit log (idempotent); records written so far are on disk."""
        if self.closer is not None:
            self.closer()

    async def __call__(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        """Only `tools/call` is audited: go straight to `on_call_tool`, and let every
        other message through untouched. The inherited dispatch would wrap each call in
        `on_message` and `on_request` layers that do nothing here: 28,000 instructions
        per call, more than a tenth of the audit's own cost (callgrind).

        `fastmcp` runs this chain once per `tools/call`, in its interior dispatch, where
        the message is the typed `CallToolRequestParams`. A `tools/call` that fails
        before that (malformed parameters) reaches this method from the root dispatch
        with the raw message instead, and passes through, as it did with the inherited
        dispatch (the SDK answers it with an error before any tool runs)."""
        if isinstance(context.message, CallToolRequestParams):
            return await self.on_call_tool(context, call_next)
        return await call_next(context)

    async def on_call_tool(
        self,
        context: MiddlewareContext[Any],
        call_next: CallNext[Any, ToolResult],
    ) -> ToolResult:
        # One coroutine frame for the whole call (it runs on every call): no helper
        # coroutine around the audited part.
        started = time.perf_counter()
        call = CallRecord(str(context.message.name), context.message.arguments or {})
        self._require_audit()
        self.in_flight += 1
        policy = self.policy
        failure: BaseException | None = None
        result: ToolResult | None = None
        try:
            try:
                if self.stopping:
                    raise Unavailable("the server is shutting down; retry after it restarts")
                if policy is None:
                    policy = await self._load_policy(context)
                call.findings, wait = policy.admit(call.tool, call.arguments)
                if wait > 0:
                    await asyncio.sleep(wait)
                result = await call_next(context)
                call.result_bytes = self._clean(result)
                if result.is_error:
                    call.outcome, call.reason = "error", "the tool returned an error result"
            except BaseException as exc:
                call.outcome, call.reason, call.detail, failure = self._classify(exc, call.tool)
                if policy is not None:
                    call.violation, call.incident = policy.count(call.tool, exc)

            call.duration_ms = round((time.perf_counter() - started) * 1000, 3)
            call.request_id, call.client_name, call.client_version = self._client(context)
            try:
                self.recorder.record(call)
            except (OSError, ValueError, TypeError) as exc:  # I/O, or a record that cannot encode
                if isinstance(failure, asyncio.CancelledError):
                    raise failure from None
                self._lost_record(exc)
            if failure is not None:
                raise failure
            assert result is not None
            return result
        finally:
            self.in_flight -= 1

    async def _load_policy(self, context: MiddlewareContext[Any]) -> CallPolicy:
        """The policy for the tools this server lists (once; concurrent first calls
        share the first one built, so no counter is ever split)."""
        ctx = context.fastmcp_context
        server = self._server() if self._server is not None else None
        if server is None and ctx is not None:
            server = ctx.fastmcp
        tools = await server.list_tools(run_middleware=False) if server is not None else []
        if self.policy is None:
            self.policy = CallPolicy(self.settings, (tool.name for tool in tools))
        return self.policy

    # -- steps --------------------------------------------------------------------------

    def _require_audit(self) -> None:
        if not self.settings.audit.enabled:
            return
        problem = "the audit log could not be opened" if self.log is None else self.log.problem()
        if problem is None:
            self._warned_unaudited = False
            return
        if self.fail_open:
            if not self._warned_unaudited:
                logger.warning("serving UNAUDITED calls (fail_open = true): {}", problem)
                self._warned_unaudited = True
            return
        logger.error("tool call refused: {}", problem)
        raise AuditUnavailable(AUDIT_DOWN_MESSAGE, detail=problem)

    def _lost_record(self, exc: Exception) -> None:
        problem = f"audit record not written: {getattr(exc, 'strerror', None) or exc}"
        if self.fail_open:
            if not self._warned_unaudited:
                logger.warning("serving UNAUDITED calls (fail_open = true): {}", problem)
                self._warned_unaudited = True
            return
        logger.error("tool call refused, result withheld: {}", problem)
        raise AuditUnavailable(AUDIT_DOWN_MESSAGE, detail=problem) from None

    def _clean(self, result: ToolResult) -> int:
        """Mask secrets in the result (text, resources, structured content); its size.

        Blocks are told apart by type, not by probing attributes: a missing attribute
        on a pydantic model costs an exception, on every call."""
        mask = None if self.settings.secrets.empty else self.redactor.mask
        size = 0
        content = []
        for block in result.content:
            if isinstance(block, TextContent):
                size += _utf8_len(block.text)
                if mask is not None and (masked := mask(block.text)) != block.text:
                    block = block.model_copy(update={"text": masked})
            elif isinstance(block, EmbeddedResource):
                resource = block.resource
                if isinstance(resource, TextResourceContents):
                    size += _utf8_len(resource.text)
                    if mask is not None and (masked := mask(resource.text)) != resource.text:
                        block = block.model_copy(
                            update={"resource": resource.model_copy(update={"text": masked})}
                        )
                elif isinstance(resource, BlobResourceContents):
                    size += len(resource.blob) * 3 // 4
            elif isinstance(block, ImageContent | AudioContent):
                size += len(block.data) * 3 // 4
            content.append(block)
        if mask is not None:
            result.content = content
            structured = result.structured_content
            # The scan costs one pass of JSON text per secret; the walk, a Python call
            # per string (20 ms for 10,000 rows). Walk only what holds a secret.
            if structured is not None and self.settings.secrets.found_in(structured):
                result.structured_content = mask_deep(structured, mask)
        return size

    def _classify(
        self, exc: BaseException, tool: str
    ) -> tuple[Outcome, str, str | None, BaseException]:
        """(outcome, reason, operator detail, exception to re-raise) for a failed call."""
        mask = self.redactor.mask
        if isinstance(exc, Refusal):
            shown = mask(exc.message)
            raised = exc if shown == exc.message else ToolError(shown)
            return exc.outcome, shown, exc.detail, raised  # type: ignore[return-value]
        if isinstance(exc, ValidationError):
            shown = mask(str(exc))
            invalid: BaseException = exc if shown == str(exc) else ToolError(shown)
            return "invalid", "invalid arguments", _validation_summary(exc), invalid
        if isinstance(exc, NotFoundError | DisabledError):
            return "invalid", "unknown tool", None, exc
        if isinstance(exc, asyncio.CancelledError):  # notifications/cancelled, or shutdown
            return "cancelled", "cancelled before it finished", None, exc
        if isinstance(exc, ToolError):
            cause = exc.__cause__
            reason = "timeout" if isinstance(cause, TimeoutError) else "internal error"
            shown = mask(str(exc))
            raised = exc if shown == str(exc) else ToolError(shown)
            return "error", reason, type(cause).__name__ if cause else shown, raised
        if isinstance(exc, MCPError):
            return "error", mask(str(exc)), type(exc).__name__, exc
        if isinstance(exc, Exception):
            logger.opt(exception=False).error("unexpected {} in tool {}", type(exc).__name__, tool)
            return (
                "error",
                "internal error",
                type(exc).__name__,
                ToolError(f"Error calling tool {tool!r}"),
            )
        return "error", "interrupted", type(exc).__name__, exc

    def _client(self, context: MiddlewareContext[Any]) -> tuple[str | None, str | None, str | None]:
        """(request id, client name, client version) of the call, where known. The
        client's strings are cut once per `clientInfo` object, not on every call."""
        ctx = context.fastmcp_context
        try:
            rc = ctx.request_context if ctx is not None else None
        except (RuntimeError, AttributeError):
            rc = None
        if rc is None:
            return None, None, None
        request_id = str(rc.request_id)
        try:
            params = rc.session.client_params
            info = params.client_info if params is not None else None
        except (RuntimeError, AttributeError):
            info = None
        if info is None:
            return request_id, None, None
        if info is not self._client_info:
            self._client_info = info
            self._client_fields = (str(info.name)[:128], str(info.version)[:64])
        return request_id, *self._client_fields


def _validation_summary(exc: ValidationError) -> str:
    """Where and why the arguments failed, without echoing any value."""
    cause = exc.__cause__
    if isinstance(cause, PydanticValidationError):
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['type']}"
            for err in cause.errors()[:5]
        ]
        return "; ".join(parts)
    return "arguments rejected by the input schema"


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
