"""The audit folder's cross-process lock, kept between writes while no one else needs it.

Every record is written under an exclusive `flock` on `.audit.lock`, because several
server processes may share a folder and must not fork the chain. Taking and releasing it
for each record, and then `stat`-ing the file to learn whether another process wrote
meanwhile, were three of the four system calls of a record, about a sixth of what
auditing cost per call (bench/RESULTS.md). Usually one process is alone on its folder.

So after a write the lock is kept (a *lease*), and the next write only checks that the
file was not deleted or changed behind its back (one `fstat`). The lease ends:
- when the folder's holder sees a *knock*: a process that finds the lock taken sets the
  first byte of `.audit.lock` (both map it shared) before it waits, and the holder reads
  that byte after each write and on a timer;
- after LEASE_IDLE_S without a write (a timer thread checks, waking every LEASE_IDLE_S
  while a lease lasts), or LEASE_MAX_S after it began, whatever happens, so a process
  that does not knock (an older version) waits at most about that long;
- for COOLDOWN_S after this process saw a knock or had to wait itself: processes that
  share a folder take and release the lock per record, as before, and do not pass a
  lease back and forth.

A waiting process is never starved: the holder gives the lock up after its next write,
or within about 2 x LEASE_IDLE_S when it is idle.

While a lease lasts, a file deleted behind the server's back is still noticed before the
next write (`st_nlink` is 0), and so is one truncated or appended to (its size changed);
one renamed away is noticed when the lease ends, and what was written meanwhile is in
the renamed file, not lost.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mcp_fileserver.audit.files import FILE_MODE

LEASE_IDLE_S = 0.02
LEASE_MAX_S = 0.05
COOLDOWN_S = 5.0


class FolderLock:
    """The exclusive lock of one audit folder. Every method except `close` must be
    called with `thread_lock` held (the sink's), which the lease timer takes too."""

    def __init__(self, path: Path, thread_lock: threading.Lock) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        self._fd = os.open(path, flags, FILE_MODE)
        self._thread_lock = thread_lock
        self.leased = False  # the lock is held between writes
        self._lease_start = 0.0
        self._last_write = 0.0
        self._shared_until = 0.0  # no lease before this (monotonic): the folder is shared
        self._timer: threading.Thread | None = None
        self._lease_taken = threading.Event()
        self._closing = False
        self._closed = threading.Event()  # wakes the timer at once on close
        try:
            if os.fstat(self._fd).st_size < 1:  # a new folder (or an older version's)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                try:
                    if os.fstat(self._fd).st_size < 1:  # grown once, never shrunk: no SIGBUS
                        os.ftruncate(self._fd, 1)
                finally:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._knock = mmap.mmap(self._fd, 1)
        except BaseException:
            os.close(self._fd)
            raise

    # -- the write path ---------------------------------------------------------------

    def acquire(self) -> bool:
        """Hold the lock for one write; True if it was already held (a lease), in which
        case no other process can have written since this one's last write."""
        if self._fd < 0:
            raise OSError(errno.EBADF, "the audit log is closed")
        if self.leased:
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._knock[0] = 1
            self._shared_until = time.monotonic() + COOLDOWN_S
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # waits with the GIL released
        return False

    def after_write(self, ok: bool) -> None:
        """Keep the lock as a lease, or release it (contention, cooldown, a failed
        write, or a lease that is old enough)."""
        now = time.monotonic()
        if self._knock[0]:
            self._knock[0] = 0
            self._shared_until = now + COOLDOWN_S
        if not ok or now < self._shared_until or self._closing:
            self._release()
            return
        if not self.leased:
            self.leased = True
            self._lease_start = now
            self._start_timer()
        elif now - self._lease_start >= LEASE_MAX_S:
            self._release()
            return
        self._last_write = now

    # -- everything else --------------------------------------------------------------

    @contextmanager
    def held(self) -> Iterator[None]:
        """The lock, held for the block and released after it (any lease ends)."""
        if self.leased:
            self._release()
        self.acquire()
        try:
            yield
        finally:
            self._release()

    def close(self) -> None:
        """End any lease and close. Call without `thread_lock` held. Idempotent."""
        self._closing = True
        self._closed.set()
        self._lease_taken.set()
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.join()
        with self._thread_lock:
            if self._fd >= 0:
                self._release()
                self._knock.close()
                os.close(self._fd)
                self._fd = -1

    def _release(self) -> None:
        self.leased = False
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _start_timer(self) -> None:
        self._lease_taken.set()
        if self._timer is None:
            self._timer = threading.Thread(
                target=self._expire_leases, name="audit-lease", daemon=True
            )
            self._timer.start()

    def _expire_leases(self) -> None:
        """End a lease that has gone idle, grown old, or been knocked on."""
        while True:
            self._lease_taken.wait()
            if self._closing:
                return
            self._closed.wait(LEASE_IDLE_S)
            with self._thread_lock:
                if self._closing:
                    return
                now = time.monotonic()
                if self.leased and (
                    self._knock[0]
                    or now - self._last_write >= LEASE_IDLE_S
                    or now - self._lease_start >= LEASE_MAX_S
                ):
                    if self._knock[0]:
                        self._knock[0] = 0
                        self._shared_until = now + COOLDOWN_S
                    self._release()
                if not self.leased:
                    self._lease_taken.clear()
