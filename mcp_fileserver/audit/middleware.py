"""The outermost middleware: every `tools/call` is checked, run, cleaned and recorded.

Order for one call:
1. fail closed: if the audit log cannot be written, refuse before running anything;
2. a tool locked by the monitor is refused (`locked`);
3. the monitor scans the arguments (findings become `security_alert` records);
4. the rate limiter may refuse (`rate_limited`);
5. the tool runs; secrets are masked out of its result and error text;
6. one `tool_call` record, then its alerts and any `security_incident`; if that write
   fails the result is withheld and the call is refused instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

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
from mcp_fileserver.audit.monitor import Finding, Incident, SecurityMonitor
from mcp_fileserver.audit.ratelimit import RateLimiter
from mcp_fileserver.audit.records import Outcome
from mcp_fileserver.audit.redact import Redactor
from mcp_fileserver.config import Settings
from mcp_fileserver.errors import (
    AuditUnavailable,
    NotAllowed,
    PolicyViolation,
    RateLimited,
    Refusal,
    ToolLocked,
    Unavailable,
)

AUDIT_DOWN_MESSAGE = (
    "refused: the audit log cannot be written and this server does not serve unaudited "
    "calls; ask the operator to check the audit log folder"
)


class AuditMiddleware(Middleware):
    def __init__(self, settings: Settings, log: AuditLog | None) -> None:
        self.settings = settings
        self.log = log
        self.fail_open = settings.audit.fail_open
        self.redactor = Redactor(settings.secrets, settings.audit.max_value_chars)
        self.monitor = (
            SecurityMonitor(
                settings.monitor,
                settings.deny_patterns,
                tuple(str(root) for root in settings.allowed_dirs),
            )
            if settings.monitor.enabled
            else None
        )
        self.limiter = RateLimiter(settings.rate_limit) if settings.rate_limit.enabled else None
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
        tool = str(context.message.name)
        arguments = context.message.arguments or {}
        self._require_audit()
        self.in_flight += 1
        outcome: Outcome = "ok"
        reason: str | None = None
        detail: str | None = None
        result_bytes: int | None = None
        findings: list[Finding] = []
        violation = False
        failure: BaseException | None = None
        result: ToolResult | None = None
        try:
            try:
                if self.stopping:
                    raise Unavailable("the server is shutting down; retry after it restarts")
                monitor = self.monitor
                if monitor is not None:
                    locked_until = monitor.locked_until(tool)
                    if locked_until is not None:
                        raise ToolLocked(
                            f"{tool} is locked until {_iso(locked_until)} (UTC) after repeated "
                            "security violations; the operator can review the audit log"
                        )
                    findings = monitor.scan(arguments)
                if self.limiter is not None and (why := self.limiter.acquire(tool)) is not None:
                    raise RateLimited(why)
                result = await call_next(context)
                result_bytes = self._clean(result)
                if result.is_error:
                    outcome, reason = "error", "the tool returned an error result"
            except BaseException as exc:
                outcome, reason, detail, failure = self._classify(exc, tool)
                violation = isinstance(exc, NotAllowed | PolicyViolation)

            duration_ms = round((time.perf_counter() - started) * 1000, 3)
            violation = self.monitor is not None and (violation or bool(findings))
            try:
                self._record(
                    context,
                    tool=tool,
                    arguments=arguments,
                    outcome=outcome,
                    reason=reason,
                    detail=detail,
                    duration_ms=duration_ms,
                    result_bytes=result_bytes,
                    findings=findings,
                    violation=violation,
                )
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
            if result.structured_content is not None:
                result.structured_content = _mask_deep(result.structured_content, mask)
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
            raised = exc if shown == str(exc) else ToolError(shown)
            return "invalid", "invalid arguments", _validation_summary(exc), raised
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

    def _record(
        self,
        context: MiddlewareContext[Any],
        *,
        tool: str,
        arguments: Mapping[str, Any],
        outcome: Outcome,
        reason: str | None,
        detail: str | None,
        duration_ms: float,
        result_bytes: int | None,
        findings: list[Finding],
        violation: bool,
    ) -> None:
        incident: Incident | None = None
        if violation and self.monitor is not None:
            incident = self.monitor.violation(tool)
            if incident is not None:
                logger.warning(
                    "security incident: {} violations of {} within {:g} s{}",
                    incident.violations,
                    self.redactor.text(tool),
                    incident.window_s,
                    f"; locked until {_iso(incident.locked_until)} UTC"
                    if incident.locked_until
                    else "",
                )
        log = self.log
        if log is None or not self.settings.audit.enabled:
            return
        text = self.redactor.text
        request_id, client_name, client_version = self._client(context)
        log.tool_call(
            text(tool),
            self.redactor.arguments(arguments),
            outcome,
            text(reason) if reason else None,
            text(detail) if detail else None,
            duration_ms,
            result_bytes,
            request_id,
            client_name,
            client_version,
        )
        if not (findings or violation or incident):
            return
        common = {
            "tool": text(tool),
            "request_id": request_id,
            "client_name": client_name,
            "client_version": client_version,
        }
        for finding in findings:
            log.write(
                "security_alert",
                **common,
                outcome=outcome,
                reason=f"suspicious argument ({finding.pattern})",
                detail=f"in {text(finding.field)}",
                pattern=finding.pattern,
            )
        if outcome == "denied" and violation and reason is not None:
            log.write(
                "security_alert",
                **common,
                outcome=outcome,
                reason=text(reason),
                detail=text(detail) if detail else None,
                pattern="refused",
            )
        if incident is not None:
            until = _iso(incident.locked_until) if incident.locked_until else None
            log.write(
                "security_incident",
                **common,
                outcome="locked" if until else outcome,
                reason=(
                    f"{incident.violations} security violations within "
                    f"{incident.window_s:g} s"
                    + (f"; tool locked until {until} UTC" if until else "")
                ),
                violations=incident.violations,
                window_s=incident.window_s,
                locked_until=until,
            )

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


def _mask_deep(value: Any, mask: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask(str(k)): _mask_deep(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_deep(v, mask) for v in value]
    return value


def _iso(epoch: float | None) -> str:
    moment = datetime.fromtimestamp(epoch or 0, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
