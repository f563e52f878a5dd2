"""The audit file writer: hash chain, size rotation, compression, retention.

Why not loguru's own file sink: it writes through a buffered text stream, so a failed
write (disk full) leaves the record in a buffer that may land later, after we refused
the call and with the chain already moved on; and it names rotated files by local
creation time. This writer appends each record with one `write(2)` on an `O_APPEND`
descriptor (nothing is buffered in the process, so every record is on disk, in the page
cache, before the call returns), truncates a torn write away, and names rotated files
by the `seq` of their first record. Records reach it directly, not through loguru (see
log.py).

Several processes may share a folder (two clients starting the server with the default
log dir): every write takes an exclusive `flock` on `.audit.lock` and, when the file
changed since this process last wrote, reloads the chain head from its last record.

The four system calls of a write (`flock`, `stat`, `write`, unlock) go through `os` and
`fcntl`, which release the GIL around each: with calls in flight, a tool thread runs on
the other core meanwhile. A version that kept the GIL (ctypes.PyDLL) made the record's
own latency steadier but cost 8% of throughput with 8 calls in flight (bench/RESULTS.md).
"""

from __future__ import annotations

import errno
import fcntl
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from loguru import logger

from mcp_fileserver.audit.files import (
    ACTIVE_NAME,
    FILE_MODE,
    LOCK_NAME,
    compress,
    ensure_folder,
    first_line,
    last_line,
    list_log_files,
    open_append,
    read_lines,
    rotated_name,
)
from mcp_fileserver.audit.records import (
    GENESIS,
    BadRecord,
    Hasher,
    ParsedRecord,
    chain,
    decode,
)
from mcp_fileserver.config import AuditSettings


class AuditSink:
    """Appends chained records to `folder/audit.jsonl`; thread- and process-safe."""

    def __init__(
        self,
        folder: Path,
        settings: AuditSettings,
        hasher: Hasher,
        pruned_head: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        self.folder = folder
        self.active = folder / ACTIVE_NAME
        self._active_path = os.fsencode(self.active)
        self._settings = settings
        self._hasher = hasher
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._identity: tuple[int, int] = (-1, -1)
        self._size = 0
        self._torn_tail = False  # a failed write could not be truncated away
        self._healthy = True  # the last write reached the file (see `problem`)
        self._pending: queue.Queue[Path | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self.seq = 0
        self.prev = GENESIS
        # Encodes the `audit_pruned` record that retention writes before removing a file.
        self._pruned_head = pruned_head
        # Called with (seq, hash) after each record is on disk (checkpoints).
        self.after_write: Callable[[int, str], None] | None = None
        # Set when the previous run left a damaged last record (for the start record).
        self.recovery_note: str | None = None
        ensure_folder(folder)
        lock_flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        self._lock_fd = os.open(folder / LOCK_NAME, lock_flags, FILE_MODE)
        try:
            with self._file_lock():
                self._open_active()
                self._load_head(full_scan=True)
        except BaseException:
            self.close()
            raise

    # -- public -----------------------------------------------------------------------

    def write(self, head: str) -> int:
        """Chain and append one record, given as its encoded head (see
        `records.record_head`); returns its seq. Raises OSError on failure."""
        with self._thread_lock:
            # Not `_file_lock()`: its generator machinery shows on this per-call path.
            self._lock_file()
            try:
                return self._write_locked(head)
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _write_locked(self, head: str, *, may_rotate: bool = True) -> int:
        """`write`, with both locks already held. Retention's own records do not rotate
        (a rotation would start another retention pass): they may take the active file a
        few hundred bytes past `rotation_bytes`."""
        self._healthy = False
        self._sync_with_disk()
        line, digest = chain(head, self.seq + 1, self.prev, self._hasher)
        data = line.encode("ascii")
        if self._torn_tail and self._ends_mid_line():
            data = b"\n" + data
        if may_rotate and self._size > 0 and self._size + len(data) > self._settings.rotation_bytes:
            self._rotate()
        self._append(data)
        self.seq += 1
        self.prev = digest
        self._healthy = True
        after = self.after_write
        if after is not None:
            after(self.seq, digest)
        return self.seq

    @property
    def closed(self) -> bool:
        return self._fd is None

    def problem(self) -> str | None:
        """Why a record cannot be written right now, or None. A pre-call check: free
        while the last write succeeded (the next write is the real test, and its call
        is refused if it fails), a stat of the folder after a failure, so that calls
        are refused before they run until the folder is usable again."""
        if self._fd is None:
            return "the audit log is closed"
        if self._healthy:
            return None
        try:
            os.stat(self.active)
        except FileNotFoundError:
            return None if self.folder.is_dir() else f"audit log folder {self.folder} is gone"
        except OSError as exc:
            return f"audit log folder {self.folder} is unusable ({exc.strerror})"
        return None

    def close(self) -> None:
        """Finish pending compression and retention, fsync, close. Idempotent."""
        worker, self._worker = self._worker, None
        if worker is not None:
            self._pending.put(None)
            worker.join()
        with self._thread_lock:
            if self._fd is not None:
                with suppress(OSError):
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1

    # -- internals --------------------------------------------------------------------

    def _lock_file(self) -> None:
        """Take the folder's exclusive lock (release with `flock(LOCK_UN)`)."""
        if self._lock_fd < 0:
            raise OSError(errno.EBADF, "the audit log is closed")
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        self._lock_file()
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _open_active(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        fd = open_append(self.active)
        stat = os.fstat(fd)
        self._fd, self._identity, self._size = fd, (stat.st_dev, stat.st_ino), stat.st_size

    def _sync_with_disk(self) -> None:
        """Follow rotations and appends by other processes; recreate a deleted file."""
        try:
            stat = os.stat(self._active_path)
        except FileNotFoundError:
            if not self.folder.is_dir():
                raise
            logger.warning("audit file {} disappeared; starting a new one", self.active)
            self._open_active()
            return
        if (stat.st_dev, stat.st_ino) != self._identity:
            self._open_active()
            self._load_head(full_scan=False)
        elif stat.st_size != self._size:
            self._size = stat.st_size
            self._load_head(full_scan=False)

    def _load_head(self, *, full_scan: bool) -> None:
        """Set seq/prev from the newest record on disk (active file, else newest rotated)."""
        candidates = [self.active] if self._size > 0 else []
        rotated = [f.path for f in list_log_files(self.folder) if f.first_seq is not None]
        candidates += list(reversed(rotated))
        for path in candidates:
            record = _last_record(path, full_scan=full_scan)
            if record is None:
                continue
            parsed, damaged = record
            self.seq, self.prev = parsed.seq, parsed.hash
            if damaged:
                self.recovery_note = (
                    f"{path.name} ended with a damaged record; chain resumed after seq {parsed.seq}"
                )
            return

    def _append(self, data: bytes) -> None:
        assert self._fd is not None
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, "short write to the audit log")
        except OSError:
            # Never leave half a record behind: the next one must start on a clean line.
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                self._torn_tail = True
            raise
        self._size += len(data)
        self._torn_tail = False

    def _ends_mid_line(self) -> bool:
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        return size > 0 and os.pread(self._fd, 1, size - 1) != b"\n"

    def _rotate(self) -> None:
        assert self._fd is not None
        line = first_line(self.active)
        try:
            first_seq = decode(line).seq if line else self.seq + 1
        except BadRecord:
            first_seq = self.seq + 1
        target = self.folder / rotated_name(first_seq)
        if any(p.exists() for p in (target, *_compressed_variants(target))):
            logger.error("audit rotation skipped: {} already exists", target.name)
            return
        os.fsync(self._fd)
        os.rename(self.active, target)
        self._open_active()
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._housekeeping, name="audit-housekeeping", daemon=True
            )
            self._worker.start()
        self._pending.put(target)

    def _housekeeping(self) -> None:
        """Compress rotated files and apply retention, off the calls' path (xz takes
        seconds per 10 MiB). Until a file is compressed it is read as it is."""
        while (target := self._pending.get()) is not None:
            try:
                compress(target, self._settings.compression)
            except OSError as exc:
                logger.error("audit file {} left uncompressed: {}", target.name, exc.strerror)
            try:
                with self._thread_lock, self._file_lock():
                    self._apply_retention()
            except OSError as exc:
                logger.error("audit retention failed: {}", exc)

    def _apply_retention(self) -> None:
        rotated = [f for f in list_log_files(self.folder) if f.first_seq is not None]
        doomed = rotated[: max(0, len(rotated) - self._settings.retention_files)]
        if self._settings.retention_days is not None:
            cutoff = time.time() - self._settings.retention_days * 86400
            # The newest rotated file always stays: it anchors where the chain starts.
            for item in rotated[len(doomed) : -1]:
                try:
                    if item.path.stat().st_mtime < cutoff:
                        doomed.append(item)
                except FileNotFoundError:
                    continue
        for item in doomed:
            # The history is never erased silently: a chained record carries the removed
            # file's last seq and hash first, so verify-log can prove the kept chain
            # continues from it. No record, no removal.
            if self._pruned_head is not None:
                last = _last_record(item.path, full_scan=True)
                self._write_locked(
                    self._pruned_head(
                        {
                            "outcome": "ok",
                            "reason": f"retention removed {item.path.name}",
                            "pruned_file": item.path.name,
                            "pruned_first_seq": item.first_seq,
                            "pruned_last_seq": last[0].seq if last else None,
                            "pruned_last_hash": last[0].hash if last else None,
                        }
                    ),
                    may_rotate=False,
                )
            try:
                item.path.unlink()
            except OSError as exc:
                logger.error("audit retention could not remove {}: {}", item.path.name, exc)


def _compressed_variants(path: Path) -> list[Path]:
    return [path.with_name(path.name + s) for s in (".gz", ".bz2", ".xz", ".zip")]


def _last_record(path: Path, *, full_scan: bool) -> tuple[ParsedRecord, bool] | None:
    """(last valid record, whether a damaged line followed it), or None if none."""
    try:
        line = last_line(path)
    except (OSError, EOFError, ValueError):
        line = None
    if line is not None:
        try:
            return decode(line), False
        except BadRecord:
            pass
    if line is None and not full_scan:
        return None
    best: ParsedRecord | None = None
    damaged = False
    try:
        for text in read_lines(path):
            try:
                best, damaged = decode(text), False
            except BadRecord:
                damaged = True
    except (OSError, EOFError, ValueError):
        damaged = True
    return (best, damaged) if best is not None else None
