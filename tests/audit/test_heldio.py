"""The record write's GIL-keeping system calls give what `os` and `fcntl` give."""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mcp_fileserver.audit import heldio


@pytest.fixture(params=["libc", "fallback"])
def calls(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs through ctypes and through the `os`/`fcntl` fallback."""
    if request.param == "libc":
        if heldio._LIBC is None:
            pytest.skip("no glibc here: only the fallback exists")
    else:
        monkeypatch.setattr(heldio, "_LIBC", None)
    return request.param


def test_identity_is_what_os_stat_says(tmp_path: Path, calls: str) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"x" * 1234)
    stat = os.stat(path)
    assert heldio.identity(os.fsencode(path)) == (stat.st_dev, stat.st_ino, 1234)
    link = tmp_path / "link"
    link.symlink_to(path)
    assert heldio.identity(os.fsencode(link)) == (stat.st_dev, stat.st_ino, 1234)


def test_identity_raises_what_os_stat_raises(tmp_path: Path, calls: str) -> None:
    with pytest.raises(FileNotFoundError):
        heldio.identity(os.fsencode(tmp_path / "missing"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        heldio.identity(os.fsencode(tmp_path / "file" / "below"))


def test_identity_falls_back_when_statx_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old kernel (ENOSYS) or a seccomp filter (EPERM) must not fail the audit log."""
    if heldio._LIBC is None:
        pytest.skip("no glibc here")

    def refused(*_args: object) -> int:
        import ctypes

        ctypes.set_errno(errno.ENOSYS)
        return -1

    monkeypatch.setattr(
        heldio, "_LIBC", heldio._Libc(heldio._LIBC.flock, heldio._LIBC.write, refused)
    )
    monkeypatch.setattr(heldio, "_statx_usable", True)
    path = tmp_path / "f"
    path.write_text("abc")
    stat = os.stat(path)
    assert heldio.identity(os.fsencode(path)) == (stat.st_dev, stat.st_ino, 3)
    assert heldio._statx_usable is False


def test_write_appends_and_reports_errors(tmp_path: Path, calls: str) -> None:
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        assert heldio.write(fd, b"one\n") == 4
        assert heldio.write(fd, b"two\n") == 4
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"one\ntwo\n"
    with pytest.raises(OSError) as caught:
        heldio.write(fd, b"closed")
    assert caught.value.errno == errno.EBADF


def test_lock_waits_for_another_process_then_is_exclusive(tmp_path: Path, calls: str) -> None:
    lock = tmp_path / ".audit.lock"
    lock.touch()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"f = open({str(lock)!r}, 'r+')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(0.5)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        fd = os.open(lock, os.O_RDWR)
        try:
            # While we wait (GIL released), other threads of this process keep running.
            ticks: list[float] = []
            stop = threading.Event()

            def tick() -> None:
                while not stop.is_set():
                    ticks.append(time.monotonic())
                    time.sleep(0.01)

            ticker = threading.Thread(target=tick)
            ticker.start()
            started = time.monotonic()
            heldio.lock_exclusive(fd)
            waited = time.monotonic() - started
            stop.set()
            ticker.join()
            assert waited > 0.2  # it really waited for the other process
            assert len([t for t in ticks if started < t < started + waited]) >= 5
            other = os.open(lock, os.O_RDWR)
            try:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                heldio.unlock(fd)
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
            finally:
                os.close(other)
        finally:
            os.close(fd)
    finally:
        holder.wait(timeout=10)
