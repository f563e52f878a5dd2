"""The audit log: one chain per folder, shared by every server of the process using it.

Records go straight to the folder's sink (sink.py), synchronously: the caller learns
whether the record reached the file before the tool's result is released, which is what
fail-closed needs. Loguru, which carries the human logs to stderr, is deliberately not on
this path. A first version routed each record through a dedicated loguru handler (bound
`audit` id, per-handler filter, `enqueue=False`, `catch=False`): loguru's per-message
work (frame lookup, record building, patcher, filters, formatting) measured 290 of 470 us
per record on the 2-core CI machine, more than the write and the hash together, and put
auditing over its 10% latency budget; `enqueue=True` would be cheaper for the caller but
cannot fail closed, since the write happens later in a worker. Loguru's own file sink is
not used either (see sink.py). The stderr handler still drops anything bound with an
`audit` key, so no audit data can reach the human log by that route.

Several servers may live in one process (tests build many): `acquire` hands out one
`AuditLog` per folder, reference counted, so two servers on one folder share one chain
instead of forking it; several processes on one folder are serialised by the sink's lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcp_fileserver import __version__
from mcp_fileserver.audit.checkpoint import Checkpointer
from mcp_fileserver.audit.records import (
    Event,
    constant_tail,
    make_hasher,
    record_head,
    tool_call_head,
    utc_timestamp,
)
from mcp_fileserver.audit.sink import AuditSink
from mcp_fileserver.config import AuditSettings


class AuditLog:
    """Writes chained records to one folder. `write` raises OSError if a record is lost."""

    def __init__(
        self,
        folder: Path,
        settings: AuditSettings,
        hmac_key: str | None,
        checkpoint_key: str | None = None,
    ) -> None:
        self.folder = folder
        self.settings = settings
        self._refs = 0
        self._pid = os.getpid()
        self._tail = constant_tail(__version__, self._pid)
        self.sink = AuditSink(
            folder,
            settings,
            make_hasher(hmac_key),
            pruned_head=lambda fields: self.head("audit_pruned", fields),
        )
        self.checkpointer = Checkpointer(folder, settings, checkpoint_key)
        if self.sink.seq > 0:
            self.checkpointer.last = (self.sink.seq, self.sink.prev)
        self.sink.after_write = self.checkpointer.after_write

    def write(self, event: Event, **fields: Any) -> int:
        """Append one record (ts, event, server_version and pid filled in); its size."""
        return self.write_head(self.head(event, fields))

    def head(self, event: Event, fields: dict[str, Any]) -> str:
        """The encoded record (without its chain fields) of `event` with `fields`."""
        fields["ts"] = utc_timestamp()
        fields["event"] = event
        fields["server_version"] = __version__
        fields["pid"] = self._pid
        return record_head(fields)

    def write_head(self, head: str) -> int:
        """Append one record given as its encoded head; its size in bytes."""
        self.sink.write(head)
        return len(head)

    def tool_call_head(
        self,
        tool: str,
        args: Mapping[str, Any],
        outcome: str,
        reason: str | None,
        detail: str | None,
        duration_ms: float,
        result_bytes: int | None,
        request_id: str | None,
        client_name: str | None,
        client_version: str | None,
    ) -> str:
        """The encoded `tool_call` record of one call: `write("tool_call", ...)`'s
        bytes, minus the intermediate dicts (it runs on every call)."""
        return tool_call_head(
            utc_timestamp(),
            tool,
            args,
            outcome,
            reason,
            detail,
            duration_ms,
            result_bytes,
            request_id,
            client_name,
            client_version,
            self._tail,
        )

    def problem(self) -> str | None:
        return self.sink.problem()

    def close(self) -> None:
        self.sink.close()


_registry: dict[Path, AuditLog] = {}
_registry_lock = threading.Lock()


def acquire(
    folder: Path, settings: AuditSettings, hmac_key: str | None, checkpoint_key: str | None = None
) -> AuditLog:
    """The shared log for `folder`, opened on first use. Raises OSError if unusable."""
    key = folder.expanduser().absolute()
    with _registry_lock:
        log = _registry.get(key)
        if log is None or log.sink.closed:
            log = AuditLog(key, settings, hmac_key, checkpoint_key)
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
