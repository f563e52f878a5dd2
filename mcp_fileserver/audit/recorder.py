"""What one call leaves in the audit log (plain Python, no framework).

A `CallRecord` says what happened; `Recorder.record` writes it: one `tool_call`
record, then one `security_alert` per finding, one for a refusal that counted as a
violation, and a `security_incident` when that violation crossed the threshold. The
incident names the tool that was counted and locked: the same name the lock is checked
under (policy.py), so what the log says happened is what happened.

Bounds, so that no client can flood the history:
- every field is cleaned (redact.py) and control characters are escaped by the JSON
  encoding; the arguments of a record larger than `[audit] max_record_bytes` (after
  escaping, which is what lands on disk) are kept as their size, SHA-256 and a preview;
- the bytes a client causes are summed over `[monitor] window_s`: past
  `[monitor] audit_bytes_alert` a `security_alert` (`audit_volume`) says so, once per
  window.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from mcp_fileserver.audit.log import AuditLog
from mcp_fileserver.audit.monitor import Finding, Incident
from mcp_fileserver.audit.policy import iso_utc
from mcp_fileserver.audit.records import Outcome
from mcp_fileserver.audit.redact import Redactor
from mcp_fileserver.config import Settings

# Room left in a record for everything but its arguments: each other field is cut to
# `max_value_chars` characters, which escape to at most 12 bytes each.
_PREVIEW_CHARS = 120


@dataclass(slots=True)
class CallRecord:
    """One call as the audit log tells it."""

    tool: str
    arguments: Mapping[str, Any]
    outcome: Outcome = "ok"
    reason: str | None = None
    detail: str | None = None
    duration_ms: float = 0.0
    result_bytes: int | None = None
    request_id: str | None = None
    client_name: str | None = None
    client_version: str | None = None
    findings: list[Finding] = field(default_factory=list)
    violation: bool = False  # a refusal on policy grounds, counted by the monitor
    incident: Incident | None = None


class Recorder:
    def __init__(self, settings: Settings, log: AuditLog | None, redactor: Redactor) -> None:
        self.log = log if settings.audit.enabled else None
        self.redactor = redactor
        self.max_record_bytes = settings.audit.max_record_bytes
        self._alert_bytes = settings.monitor.audit_bytes_alert
        self._window_s = settings.monitor.window_s
        self._volume_alerts = settings.monitor.enabled
        self._window_start = time.monotonic()
        self._window_bytes = 0
        self._volume_alerted = False

    def record(self, call: CallRecord) -> None:
        """Write the records of one call; raises OSError (or ValueError, TypeError for a
        record that cannot be encoded) if any is lost."""
        incident = call.incident
        text = self.redactor.text
        if incident is not None:
            logger.warning(
                "security incident: {} violations of {} within {:g} s{}",
                incident.violations,
                text(incident.tool),
                incident.window_s,
                f"; locked until {iso_utc(incident.locked_until)} UTC"
                if incident.locked_until
                else "",
            )
        log = self.log
        if log is None:
            return
        tool = text(call.tool)
        request_id = text(call.request_id) if call.request_id is not None else None
        reason = text(call.reason) if call.reason else None
        detail = text(call.detail) if call.detail else None

        def head_with(args: Any) -> str:
            return log.tool_call_head(
                tool,
                args,
                call.outcome,
                reason,
                detail,
                call.duration_ms,
                call.result_bytes,
                request_id,
                call.client_name,
                call.client_version,
            )

        head = head_with(self.redactor.arguments(call.arguments))
        if len(head) > self.max_record_bytes:
            head = head_with(self.redactor.oversized(call.arguments, _PREVIEW_CHARS))
        log.write_head(head)
        written = len(head)
        if call.findings or call.violation or incident is not None:
            written += self._security_records(log, call, tool, request_id)
        self._count_volume(log, written, tool, request_id, call)

    def _security_records(
        self, log: AuditLog, call: CallRecord, tool: str, request_id: str | None
    ) -> int:
        text = self.redactor.text
        common = {
            "tool": tool,
            "request_id": request_id,
            "client_name": call.client_name,
            "client_version": call.client_version,
        }
        written = 0
        for finding in call.findings:
            written += log.write(
                "security_alert",
                **common,
                outcome=call.outcome,
                reason=f"suspicious argument ({finding.pattern}); alert only",
                detail=f"in {text(finding.field)}",
                pattern=finding.pattern,
            )
        if call.violation and call.reason is not None:
            written += log.write(
                "security_alert",
                **common,
                outcome=call.outcome,
                reason=text(call.reason),
                detail=text(call.detail) if call.detail else None,
                pattern="refused",
            )
        incident = call.incident
        if incident is not None:
            until = iso_utc(incident.locked_until) if incident.locked_until else None
            written += log.write(
                "security_incident",
                **(common | {"tool": text(incident.tool)}),
                outcome="locked" if until else call.outcome,
                reason=(
                    f"{incident.violations} security violations within "
                    f"{incident.window_s:g} s"
                    + (f"; tool locked until {until} UTC" if until else "")
                ),
                violations=incident.violations,
                window_s=incident.window_s,
                locked_until=until,
            )
        return written

    def _count_volume(
        self, log: AuditLog, written: int, tool: str, request_id: str | None, call: CallRecord
    ) -> None:
        now = time.monotonic()
        if now - self._window_start >= self._window_s:
            self._window_start, self._window_bytes, self._volume_alerted = now, 0, False
        self._window_bytes += written
        if (
            self._volume_alerts
            and not self._volume_alerted
            and self._window_bytes > self._alert_bytes
        ):
            self._volume_alerted = True
            logger.warning(
                "security alert: {} audit bytes within {:g} s from one client",
                self._window_bytes,
                self._window_s,
            )
            log.write(
                "security_alert",
                tool=tool,
                request_id=request_id,
                client_name=call.client_name,
                client_version=call.client_version,
                outcome=call.outcome,
                reason=(
                    f"unusual audit volume: {self._window_bytes} bytes within "
                    f"{self._window_s:g} s (alert at {self._alert_bytes})"
                ),
                pattern="audit_volume",
                audit_bytes=self._window_bytes,
            )
