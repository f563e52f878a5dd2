"""Start, stop and configuration-error records, and a clean exit on SIGTERM/SIGINT/SIGHUP.

Every record is already on disk when its call returns (one write per record, see
sink.py), so "flushing" at exit means: let the calls in flight finish and record
themselves, write `server_stop`, fsync, close. On a signal this runs in a helper thread
(the stdio reader blocks in `read(2)` and cannot be cancelled, so waiting for the event
loop to unwind could hang until the client closes the pipe): new calls are refused from
then on, calls in flight get up to `SHUTDOWN_GRACE_S` seconds, then the process exits.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastmcp import FastMCP
from loguru import logger

from mcp_fileserver.audit import audit_of
from mcp_fileserver.audit.files import last_line, list_log_files
from mcp_fileserver.audit.log import AuditLog
from mcp_fileserver.audit.records import BadRecord, decode, make_hasher
from mcp_fileserver.config import AuditSettings, Settings
from mcp_fileserver.secrets import mask_deep

SHUTDOWN_GRACE_S = 5.0
RESPONSE_SETTLE_S = 0.1
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def record_start(mcp: FastMCP, settings: Settings, extra: Mapping[str, Any] | None = None) -> None:
    """The `server_start` record: effective configuration (secrets masked), fail-open."""
    audit = audit_of(mcp)
    if settings.audit.fail_open:
        logger.warning(
            "[audit] fail_open = true: if the audit log cannot be written, calls are "
            "served UNAUDITED"
        )
    if audit is None or audit.log is None:
        if settings.audit.enabled:
            logger.warning("no audit log: tool calls are NOT recorded")
        return
    config = mask_deep(settings.describe(), audit.redactor.mask)
    fields: dict[str, Any] = {
        "outcome": "ok",
        "reason": audit.log.sink.recovery_note,
        "fail_open": settings.audit.fail_open,
        "config": config,
    }
    privileged = [db.name for db in settings.databases if db.allow_privileged_role]
    if privileged:  # docs/sql.md: a role with more than read privileges, accepted
        fields["privileged_roles_allowed"] = privileged
    fields.update(extra or {})
    audit.log.write("server_start", **fields)
    audit.log.checkpointer.announce_key()
    audit.log.checkpointer.emit("start")


def record_stop(mcp: FastMCP, reason: str) -> None:
    """The `server_stop` record, then release the log. Idempotent."""
    audit = audit_of(mcp)
    if audit is None or audit.log is None or audit.stopped:
        return
    audit.stopped = True
    try:
        audit.log.write("server_stop", outcome="ok", reason=reason)
        audit.log.checkpointer.emit("stop")
    except OSError as exc:
        logger.error("could not write the server_stop record: {}", exc.strerror or exc)
    audit.close()


def install_signal_handlers(mcp: FastMCP) -> None:
    """SIGTERM/SIGINT/SIGHUP: finish in-flight records, write server_stop, exit 0."""
    started = threading.Event()

    def shutdown(name: str) -> None:
        audit = audit_of(mcp)
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        if audit is not None:
            audit.stopping = True
            waited = audit.in_flight > 0
            while audit.in_flight > 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            pending = audit.in_flight
            if waited and not pending:
                time.sleep(RESPONSE_SETTLE_S)  # let the last responses reach stdout
            reason = name + (f"; {pending} call(s) still running were cut off" if pending else "")
        else:
            reason = name
        logger.info("mcp-fileserver stopping on {}", name)
        record_stop(mcp, reason)
        os._exit(0)

    def on_signal(signum: int, _frame: object) -> None:
        if started.is_set():
            return
        started.set()
        name = signal.Signals(signum).name
        threading.Thread(target=shutdown, args=(name,), name="shutdown", daemon=True).start()

    for sig in _SIGNALS:
        signal.signal(sig, on_signal)


def record_config_error(
    log_dir: Path,
    message: str,
    settings: AuditSettings | None = None,
    hmac_key: str | None = None,
) -> bool:
    """A `config_error` record in `log_dir`. Returns whether a record was written.

    Without the settings (the configuration could not be read) the HMAC key is unknown,
    so the record is only appended to a folder that is empty or whose chain is plain
    SHA-256; otherwise the chain would break.
    """
    try:
        if settings is None and log_dir.exists() and not _plain_chain(log_dir):
            return False
        log = AuditLog(log_dir, settings or AuditSettings(), hmac_key=hmac_key)
    except OSError:
        return False
    try:
        log.write("config_error", outcome="error", reason=message[:1000])
        return True
    except OSError:
        return False
    finally:
        log.close()


def _plain_chain(log_dir: Path) -> bool:
    files = list_log_files(log_dir)
    if not files:
        return True
    for item in reversed(files):
        line = last_line(item.path)
        if line is None:
            continue
        try:
            record = decode(line)
        except BadRecord:
            return False
        return make_hasher(None)(record.body) == record.hash
    return True
