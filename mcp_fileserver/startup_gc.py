"""The cyclic garbage collector stays off while the server starts.

Importing the framework, pydantic and the SQL stack and building every tool allocates
several hundred thousand long-lived objects; with the collector on, CPython runs about
400 collections over them before the first request (about 0.25 s of CPU on the bench
machine, bench/RESULTS.md). Nothing built at startup is garbage worth that: the collector
is turned back on before serving, and what startup built is frozen (`gc.freeze`) so
that later full collections do not rescan it on every pass.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block without cyclic collections; on success, freeze what it built.

    The collector's previous state is restored whatever happens."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()
