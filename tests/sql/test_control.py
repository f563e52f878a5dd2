"""CallControl: a deadline racing the end of its call never reaches the next call."""

from __future__ import annotations

import threading
import time

from mcp_fileserver.sql.control import CallControl


def test_a_hook_never_runs_after_its_call_unbinds() -> None:
    """The watchdog may fire just as the call ends; unbinding waits for a hook already
    running, so the connection's next call can never be interrupted by this one's
    deadline (a PostgreSQL cancel request, SQLite interrupt())."""
    control = CallControl(60)
    events: list[str] = []
    running = threading.Event()

    def hook() -> None:
        running.set()
        time.sleep(0.2)
        events.append("hook done")

    with control.bound(hook):
        watchdog = threading.Thread(target=control.expire)
        watchdog.start()
        assert running.wait(5)
    events.append("unbound")
    watchdog.join(5)
    assert events == ["hook done", "unbound"]
    control.cancel()  # after unbinding: no hook at all
    assert events == ["hook done", "unbound"]


def test_a_call_stopped_before_it_binds_is_interrupted_as_it_binds() -> None:
    control = CallControl(60)
    control.cancel()
    pulled: list[bool] = []
    with control.bound(lambda: pulled.append(True)):
        assert pulled == [True]
