"""The audit log: records routed through loguru to this folder's sink, one chain per folder.

Loguru is process-global and several servers may live in one process (tests build many),
so each folder gets one `AuditLog` shared by every server using it (reference counted),
with its own loguru handler whose filter accepts only records bound to that log's id.
The handler is synchronous (no `enqueue`): the caller learns whether the record reached
the file before the tool's result is released, which is what fail-closed needs, and a
record costs one `write(2)` (see sink.py). The stderr handler drops every record that
carries an `audit` key, so audit records never reach the human log.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import uuid
from pathlib import Path
from typing import Any

from loguru import logger

from mcp_fileserver import __version__
from mcp_fileserver.audit.records import Event, make_hasher, utc_timestamp
from mcp_fileserver.audit.sink import AuditSink
from mcp_fileserver.config import AuditSettings


class AuditLog:
    """Writes chained records to one folder. `write` raises OSError if a record is lost."""

    def __init__(self, folder: Path, settings: AuditSettings, hmac_key: str | None) -> None:
        self.folder = folder
        self.settings = settings
        self.sink = AuditSink(folder, settings, make_hasher(hmac_key))
        self._id = uuid.uuid4().hex
        self._bound = logger.bind(audit=self._id)
        self._lock = threading.Lock()
        self._delivered: object | None = None
        self._failure: BaseException | None = None
        self._handler_id = self._add_handler()
        self._refs = 0
        self._pid = os.getpid()

    def write(self, event: Event, **fields: Any) -> None:
        """Append one record (ts, event, server_version and pid filled in)."""
        record = {
            "ts": utc_timestamp(),
            "event": event,
            "server_version": __version__,
            "pid": self._pid,
            **fields,
        }
        with self._lock:
            if not self._emit(record):
                # Someone removed every loguru handler (logger.remove()): reinstall ours.
                self._handler_id = self._add_handler()
                if not self._emit(record):
                    raise OSError(errno.EIO, "the audit handler is not installed")

    def problem(self) -> str | None:
        return self.sink.problem()

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(ValueError):
                logger.remove(self._handler_id)
            self.sink.close()

    def _emit(self, record: dict[str, Any]) -> bool:
        token = object()
        self._failure = None
        self._bound.info(record["event"], audit_record=record, audit_token=token)
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        return self._delivered is token

    def _add_handler(self) -> int:
        audit_id = self._id
        return logger.add(
            self._deliver,
            level=0,
            format="{message}",
            filter=lambda record: record["extra"].get("audit") == audit_id,
            enqueue=False,
            catch=False,
            colorize=False,
            backtrace=False,
            diagnose=False,
        )

    def _deliver(self, message: Any) -> None:
        extra = message.record["extra"]
        try:
            self.sink.write(extra["audit_record"])
        except OSError as exc:
            self._failure = exc
            return
        self._delivered = extra["audit_token"]


_registry: dict[Path, AuditLog] = {}
_registry_lock = threading.Lock()


def acquire(folder: Path, settings: AuditSettings, hmac_key: str | None) -> AuditLog:
    """The shared log for `folder`, opened on first use. Raises OSError if unusable."""
    key = folder.expanduser().absolute()
    with _registry_lock:
        log = _registry.get(key)
        if log is None or log.sink.problem() == "the audit log is closed":
            log = AuditLog(key, settings, hmac_key)
            _registry[key] = log
        log._refs += 1
        return log


def release(log: AuditLog) -> None:
    with _registry_lock:
        log._refs -= 1
        if log._refs > 0:
            return
        if _registry.get(log.folder) is log:
            del _registry[log.folder]
    log.close()
