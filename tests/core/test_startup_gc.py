"""The collector is paused while the server starts and back on before it serves."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from mcp_fileserver.startup_gc import collector_paused


@pytest.fixture(autouse=True)
def _restore_collector() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


def test_collector_is_off_inside_and_back_on_after_with_startup_frozen() -> None:
    gc.enable()
    gc.unfreeze()
    with collector_paused():
        assert not gc.isenabled()
        built = [object() for _ in range(100)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(built)


def test_a_failed_startup_restores_the_collector_and_freezes_nothing() -> None:
    gc.enable()
    gc.unfreeze()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("startup failed")
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()
