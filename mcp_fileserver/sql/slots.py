"""Each database's own bounded concurrency, apart from the file tools and other databases.

A database has `max_concurrent_queries` slots; each slot is one backend (one connection)
and one worker thread, taken from the database's own thread limiter, never from the
default pool the file tools use. A call that finds every slot busy waits on the event
loop, holding no thread, and the wait counts against its own `timeout_s`: the deadline is
set when the call arrives. So a database flooded with slow queries slows only itself.

Cancellation: when the caller's task is cancelled (MCP `notifications/cancelled`), the
call's `CallControl` is pulled at once, which interrupts the engine (SQLite `interrupt()`,
a PostgreSQL cancel request); the slot is given back when the engine has stopped, and the
cancellation then propagates to the caller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio
import anyio.to_thread

from mcp_fileserver.config import DatabaseConfig
from mcp_fileserver.errors import LimitExceeded
from mcp_fileserver.sql.control import CallControl

STOP_POLL_S = 0.002  # how often a cancelled call checks that its engine has stopped

B = TypeVar("B")
T = TypeVar("T")


class DatabaseSlots(Generic[B]):
    """The backends of one database and the gate in front of them."""

    def __init__(self, config: DatabaseConfig, make_backend: Callable[[], B]) -> None:
        self.config = config
        size = config.max_concurrent_queries
        # Backends connect lazily: an idle slot costs no connection.
        self._idle: list[B] = [make_backend() for _ in range(size)]
        self._all = tuple(self._idle)
        self._slots = anyio.CapacityLimiter(size)
        # Taken only while a slot is held, so it never makes anyone wait.
        self._threads = anyio.CapacityLimiter(size)

    @property
    def backends(self) -> tuple[B, ...]:
        return self._all

    async def call(self, work: Callable[[B, CallControl], T]) -> T:
        """Run `work` on a free backend in a worker thread, within the call's deadline."""
        control = CallControl(self.config.timeout_s)
        with anyio.move_on_after(control.remaining()) as waiting:
            await self._slots.acquire()
        if waiting.cancelled_caught:
            raise LimitExceeded(
                f"query stopped: database {self.config.name!r} had all "
                f"{self.config.max_concurrent_queries} of its connections busy for the whole "
                f"{self.config.timeout_s:g} s time limit; try again when its queries finish"
            )
        backend = self._idle.pop()
        try:
            return await _run_stoppable(lambda: work(backend, control), control, self._threads)
        finally:
            self._idle.append(backend)
            self._slots.release()


async def _run_stoppable(
    work: Callable[[], T], control: CallControl, threads: anyio.CapacityLimiter
) -> T:
    """`work` in a worker thread; if this task is cancelled meanwhile, stop the engine and
    wait for the thread (the connection must be free before the slot is reused), then let
    the cancellation propagate. The ordinary path is one plain thread hop: no extra task."""
    done = threading.Event()

    def run() -> T:
        try:
            return work()
        finally:
            done.set()

    try:
        return await anyio.to_thread.run_sync(run, limiter=threads, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        control.cancel()
        with anyio.CancelScope(shield=True):
            while not done.is_set():  # the engine stops within milliseconds of cancel()
                await anyio.sleep(STOP_POLL_S)
        raise
