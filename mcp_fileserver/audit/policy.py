"""What may run: the per-call policy of the audit layer (plain Python, no framework).

For one call, in this order:
1. a name the server has no tool of is refused (`UnknownTool`) after taking a token
   from the one bucket all unknown names share: no per-tool state is created, touched,
   evicted or aliased for it;
2. a tool the monitor locked is refused (`ToolLocked`);
3. the arguments are scanned: findings are alerts for the record, never refusals;
4. the rate limiter takes a token, or says how long to wait for one (bounded), or
   refuses (`RateLimited`).
After the call, `count` hands a refusal to the monitor: only a refusal on policy
grounds (`Refusal.violation`) counts towards a lockout, and it counts against the very
name that is checked for the lock in step 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from mcp_fileserver.audit.monitor import Finding, Incident, SecurityMonitor
from mcp_fileserver.audit.ratelimit import UNKNOWN_TOOLS, RateLimiter
from mcp_fileserver.config import Settings
from mcp_fileserver.errors import Refusal, ToolLocked, UnknownTool

NO_FINDINGS: list[Finding] = []


class CallPolicy:
    def __init__(self, settings: Settings, tools: Iterable[str]) -> None:
        self.tools = frozenset(tools)
        self.monitor = (
            SecurityMonitor(
                settings.monitor,
                settings.deny_patterns,
                tuple(str(root) for root in settings.allowed_dirs),
                self.tools,
            )
            if settings.monitor.enabled
            else None
        )
        self.limiter = (
            RateLimiter(settings.rate_limit, self.tools) if settings.rate_limit.enabled else None
        )

    def is_known(self, tool: str) -> bool:
        return tool in self.tools

    def admit(self, tool: str, arguments: Mapping[str, Any]) -> tuple[list[Finding], float]:
        """(findings, seconds to wait before running) for a call, or raise a `Refusal`."""
        limiter = self.limiter
        if tool not in self.tools:
            if limiter is not None:
                limiter.reserve(UNKNOWN_TOOLS)
            raise UnknownTool(tool)
        findings = NO_FINDINGS
        monitor = self.monitor
        if monitor is not None:
            locked_until = monitor.locked_until(tool)
            if locked_until is not None:
                raise ToolLocked(
                    f"{tool} is locked until {iso_utc(locked_until)} (UTC) after repeated "
                    "security violations; the operator can review the audit log"
                )
            findings = monitor.scan(arguments)
        wait = limiter.reserve(tool) if limiter is not None else 0.0
        return findings, wait

    def count(self, tool: str, failure: BaseException | None) -> tuple[bool, Incident | None]:
        """(whether the call was a violation, the incident it raised, if any)."""
        if (
            self.monitor is None
            or not isinstance(failure, Refusal)
            or not failure.violation
            or tool not in self.tools
        ):
            return False, None
        return True, self.monitor.violation(tool)


def iso_utc(epoch: float | None) -> str:
    moment = datetime.fromtimestamp(epoch or 0, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
