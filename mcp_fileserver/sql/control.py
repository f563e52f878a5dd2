"""One SQL call's deadline and stop switch, and the watchdog that pulls it at the deadline.

A `CallControl` is made when a call arrives (so time spent waiting for a free connection
counts against the call's own `timeout_s`). The engine running the call binds an
`interrupt` hook to it (SQLite `Connection.interrupt`, a PostgreSQL cancel request); the
hook is pulled once, either by `cancel()` (the client cancelled) or by the watchdog at the
deadline, and never after the engine has unbound it. A hook must not block: it is called
from the event loop or the watchdog thread, with the call's lock held.

Why a watchdog besides SQLite's progress handler: the handler runs every N VM
instructions, and N instructions may each be one function call that builds a 16 MiB value;
`sqlite3_interrupt` is checked at every loop jump, so the query stops within one call.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from loguru import logger


class CallControl:
    """The deadline of one call and the switch that stops it (thread-safe)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.cancelled = False  # the client asked to stop
        self.expired = False  # the watchdog stopped it at the deadline
        self._lock = threading.Lock()
        self._interrupt: Callable[[], None] | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def stopped(self) -> bool:
        return self.cancelled or self.expired

    def cancel(self) -> None:
        """Stop the call now (idempotent); a call not yet bound stops as it binds."""
        with self._lock:
            self.cancelled = True
            self._pull()

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            self._pull()

    def _pull(self) -> None:
        # Called with the lock held, so no hook can run once `bound` has exited: a
        # deadline racing the end of its call never interrupts the connection's next call.
        if self._interrupt is not None:
            self._interrupt()

    @contextmanager
    def bound(self, interrupt: Callable[[], None]) -> Iterator[None]:
        """While the engine runs the call: `interrupt` stops it, at the deadline too."""
        with self._lock:
            self._interrupt = interrupt
            if self.stopped:
                self._pull()
        timer = WATCHDOG.schedule(self.deadline, self.expire)
        try:
            yield
        finally:
            timer.cancel()
            with self._lock:
                self._interrupt = None


@dataclass(order=True)
class _Timer:
    when: float
    order: int
    action: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Watchdog:
    """One daemon thread running actions at monotonic times (a heap, not a thread per call)."""

    def __init__(self) -> None:
        self._heap: list[_Timer] = []
        self._wake = threading.Condition()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, when: float, action: Callable[[], None]) -> _Timer:
        timer = _Timer(when, next(self._order), action)
        with self._wake:
            heapq.heappush(self._heap, timer)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="sql-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0] is timer:
                self._wake.notify()
        return timer

    def _loop(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                delay = self._heap[0].when - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                due = heapq.heappop(self._heap)
            try:
                due.action()
            except Exception as exc:  # an interrupt racing the end of its call
                logger.debug("watchdog action failed: {}", type(exc).__name__)


WATCHDOG = Watchdog()
