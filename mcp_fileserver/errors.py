"""The errors a tool may show its caller.

Every refusal a tool raises is a `Refusal`: a short message that is safe to show the
client (never a traceback, an outside path or a secret), an `outcome` for the audit log,
and an optional `detail` that only the operator sees (in the audit record), for example
which rule refused a path. Anything else a tool raises is a bug: fastmcp masks it as a
generic error (``mask_error_details=True``) and the audit log records it as ``error``.

Plain Python on purpose: the security core knows nothing of MCP, and importing it costs
no framework import. `framework.py` is the one place that turns a refusal into the
framework's tool error, so that its message reaches the client.
"""

from __future__ import annotations

from typing import ClassVar

NOT_ALLOWED_MESSAGE = "not found or not allowed"


class Refusal(Exception):
    """A tool refused a request; the message is safe to show the client.

    `violation` says whether the security monitor counts the refusal towards a lockout:
    only a refusal on policy grounds does (outside the roots, deny-listed, a write in
    SQL), never a missing file or a limit; each class sets its default."""

    outcome: ClassVar[str] = "error"
    counts_as_violation: ClassVar[bool] = False

    def __init__(
        self, message: str, *, detail: str | None = None, violation: bool | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.violation = self.counts_as_violation if violation is None else violation


class NotAllowed(Refusal):
    """Outside every allowed root, on the deny-list, or absent: deliberately one message.

    Callers must not be able to tell "does not exist" from "exists but is forbidden";
    `detail` records the real reason for the operator only.
    """

    outcome = "denied"
    counts_as_violation = True

    def __init__(self, *, detail: str | None = None, violation: bool | None = None) -> None:
        super().__init__(NOT_ALLOWED_MESSAGE, detail=detail, violation=violation)


class InvalidRequest(Refusal):
    """The arguments are well-typed but make no sense (bad pattern, ambiguous path...)."""

    outcome = "invalid"


class PolicyViolation(Refusal):
    """The request is understood and forbidden by policy (a write in SQL, a FIFO...)."""

    outcome = "denied"
    counts_as_violation = True


class LimitExceeded(Refusal):
    """A size, row, time or count limit stopped the request."""

    outcome = "denied"


class Unavailable(Refusal):
    """A backing resource (a database) cannot be reached right now; retrying may work."""

    outcome = "error"


class ConfigError(Exception):
    """The configuration is unusable; the CLI prints the message and exits with code 2."""

    exit_code: ClassVar[int] = 2


class AuditUnavailable(Refusal):
    """The audit log cannot be written, so the call is refused (fail closed)."""

    outcome = "error"


class RateLimited(Refusal):
    """Too many calls right now; the message says when to retry."""

    outcome = "rate_limited"


class ToolLocked(Refusal):
    """The security monitor locked this tool after repeated violations."""

    outcome = "locked"


class UnknownTool(InvalidRequest):
    """No tool of that name: refused before any per-tool state is touched (the one
    decision the protocol layer maps to its own error for unknown tools)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown tool {name[:64]!r}; tools/list names the tools")
        self.name = name
