"""The folder lock kept between writes (audit/folderlock.py): held while one process
writes, given up when idle, when another process knocks, and never at the cost of a
record or of noticing a deleted file. A second `AuditLog` on the same folder has its
own lock descriptor, so it competes for the `flock` exactly as another process would
(tests/audit/test_chain.py also runs two real processes on one folder)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from mcp_fileserver.audit import folderlock
from mcp_fileserver.audit.files import LOCK_NAME
from mcp_fileserver.audit.log import AuditLog
from mcp_fileserver.audit.verify import verify_folder
from mcp_fileserver.config import AuditSettings


def _can_lock(folder: Path) -> bool:
    fd = os.open(folder / LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing the descriptor drops a lock taken through it
    return True


def test_the_lock_is_kept_between_writes_and_given_up_when_idle(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, AuditSettings(), None)
    try:
        log.write("tool_call", tool="first")
        assert log.sink._lock.leased
        assert not _can_lock(tmp_path)
        deadline = time.monotonic() + 5
        while not _can_lock(tmp_path):
            assert time.monotonic() < deadline, "an idle lease was never given up"
            time.sleep(0.005)
        assert not log.sink._lock.leased
        log.write("tool_call", tool="second")  # takes it again
    finally:
        log.close()
    assert _can_lock(tmp_path)  # close gives it up
    assert verify_folder(tmp_path).records == 2


def test_a_knock_gets_the_lock_from_a_busy_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leases that would otherwise last a minute: the second writer still gets the lock
    right after the holder's next write, and both then lock per record."""
    monkeypatch.setattr(folderlock, "LEASE_IDLE_S", 60.0)
    monkeypatch.setattr(folderlock, "LEASE_MAX_S", 60.0)
    busy = AuditLog(tmp_path, AuditSettings(), None)
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.is_set():
            busy.write("tool_call", tool="busy")
            time.sleep(0.001)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        time.sleep(0.05)
        assert busy.sink._lock.leased
        started = time.monotonic()  # opening the log takes the lock too
        second = AuditLog(tmp_path, AuditSettings(), None)
        second.write("tool_call", tool="second")
        waited = time.monotonic() - started
        time.sleep(0.05)
        assert not busy.sink._lock.leased, "the holder kept its lease after a knock"
        second.close()
    finally:
        stop.set()
        writer.join()
        busy.close()
    assert waited < 2.0
    verdict = verify_folder(tmp_path)
    assert verdict.ok, verdict.problem


def test_a_file_deleted_under_a_lease_is_noticed_before_the_next_write(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, AuditSettings(), None)
    try:
        log.write("tool_call", tool="before")
        assert log.sink._lock.leased
        (tmp_path / "audit.jsonl").unlink()
        log.write("tool_call", tool="after")
    finally:
        log.close()
    assert '"tool":"after"' in (tmp_path / "audit.jsonl").read_text()


def test_a_record_appended_by_another_writer_under_a_lease_is_chained_on(
    tmp_path: Path,
) -> None:
    """Someone who ignores the lock (a tool from outside) appends a valid record: the
    lease holder sees the size change and chains after it, not over it."""
    log = AuditLog(tmp_path, AuditSettings(), None)
    other = AuditLog(tmp_path / "elsewhere", AuditSettings(), None)
    try:
        log.write("tool_call", tool="mine")
        assert log.sink._lock.leased
        other.sink.seq, other.sink.prev = log.sink.seq, log.sink.prev
        other.write("tool_call", tool="theirs")
        with open(tmp_path / "elsewhere" / "audit.jsonl", "rb") as fh:
            theirs = fh.readlines()[-1]
        with open(tmp_path / "audit.jsonl", "ab") as fh:
            fh.write(theirs)
        log.write("tool_call", tool="mine again")
    finally:
        other.close()
        log.close()
    verdict = verify_folder(tmp_path)
    assert verdict.ok, verdict.problem
    assert verdict.records == 3
