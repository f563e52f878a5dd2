"""bench/audit_insitu.py times the audit by inserting timers into a copy of the package,
by exact text replacement. This keeps it honest when the audit's source changes: every
configuration it can measure must still patch cleanly and compile, so a drifted
profiler fails here, not in the middle of someone's measurement."""

from __future__ import annotations

import importlib
import py_compile
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def profiler() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))  # the bench scripts import their siblings by name
    try:
        yield importlib.import_module("audit_insitu")
    finally:
        sys.path.remove(str(BENCH))


def test_every_configuration_still_patches_and_compiles(
    profiler: ModuleType, tmp_path: Path
) -> None:
    configurations: dict[str, list[tuple[str, str, str]]] = {"audited": [], **profiler.VARIANTS}
    for name, patches in configurations.items():
        tree = profiler._instrumented(tmp_path / name, patches)
        patched = {relative for relative, _, _ in [*profiler._TIMERS, *patches]}
        for relative in patched:
            py_compile.compile(str(tree / "mcp_fileserver" / relative), doraise=True)
        # The copy under test, never the tree itself.
        assert (tree / "mcp_fileserver" / "stdio.py").read_text().count("INSITU-SERVER") == 1
    assert "INSITU" not in (BENCH.parent / "mcp_fileserver" / "stdio.py").read_text()


def test_a_source_that_no_longer_matches_stops_the_profiler(
    profiler: ModuleType, tmp_path: Path
) -> None:
    stale = ("audit/middleware.py", "a line the middleware does not have\n", "")
    with pytest.raises(SystemExit, match="no longer contains"):
        profiler._instrumented(tmp_path / "stale", [stale])
