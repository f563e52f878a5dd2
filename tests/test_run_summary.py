"""The closing line of `make test`: what ran, what was skipped for lack of what."""

from __future__ import annotations

from typing import Literal

import pytest

from tests.run_summary import summary_line


def report(outcome: Literal["passed", "failed", "skipped"], reason: str = "") -> pytest.TestReport:
    longrepr = ("x.py", 1, f"Skipped: {reason}") if outcome == "skipped" else None
    return pytest.TestReport("x.py::t", ("x.py", 1, "t"), {}, outcome, longrepr, "call")


def test_skips_are_grouped_by_the_target_that_builds_what_they_need() -> None:
    image = "the image mcp-fileserver:0.1.0 is not built: run `make docker` or set X"
    stale = "the image mcp-fileserver:0.1.0 is older than the sources: run `make docker`"
    stats = {
        "passed": [report("passed")] * 5,
        "failed": [report("failed")],
        "skipped": [
            report("skipped", image),
            report("skipped", stale),
            report("skipped", "dist/x is not built: run `make binary` or set Y"),
            report("skipped", "the kernel offers no Landlock"),
        ],
    }
    assert summary_line(stats) == (
        "summary: 5 passed, 1 failed; 4 skipped: 2 for lack of the Docker image "
        "(`make docker`), 1 for lack of the frozen binary (`make binary`), 1 because the "
        "kernel offers no Landlock; `make test-all` builds everything and runs it all"
    )


def test_a_full_run_says_nothing_was_skipped() -> None:
    stats = {"passed": [report("passed")] * 3}
    assert summary_line(stats) == "summary: 3 passed, 0 failed; nothing skipped"
