"""One closing line for `make test`: what ran, and what was skipped for lack of what.

A skip reason names the make target that would let the test run (`make docker`, `make
binary`, `make peers`...); skips are grouped by that target, other reasons (a kernel
without Landlock, not root) by their own text. tests/conftest.py calls `summary_line`
from pytest's terminal-summary hook.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import pytest

# What each make target builds, as the summary names it.
WHAT_A_TARGET_BUILDS = {
    "docker": "the Docker image",
    "binary": "the frozen binary",
    "binary-onefile": "the one-file binary",
    "peers": "the MCP Inspector (npm peers)",
}
MAKE_TARGET = re.compile(r"`make ([\w-]+)")


def skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ").strip()


def skip_group(reason: str) -> str:
    """`lack of <what> (make <target>)` when a target fixes it, else the reason itself."""
    match = MAKE_TARGET.search(reason)
    if match is None:
        return reason
    target = match[1]
    return f"lack of {WHAT_A_TARGET_BUILDS.get(target, target)} (`make {target}`)"


def summary_line(stats: Mapping[str, Sequence[object]]) -> str:
    counts = {key: len(stats.get(key, [])) for key in ("passed", "failed", "error")}
    ran = f"{counts['passed']} passed, {counts['failed']} failed"
    if counts["error"]:
        ran += f", {counts['error']} errors"
    skipped = [r for r in stats.get("skipped", []) if isinstance(r, pytest.TestReport)]
    if not skipped:
        return f"summary: {ran}; nothing skipped"
    groups = Counter(skip_group(skip_reason(r)) for r in skipped)
    return (
        f"summary: {ran}; {len(skipped)} skipped: {describe(groups.most_common())}; "
        "`make test-all` builds everything and runs it all"
    )


def describe(groups: Iterable[tuple[str, int]]) -> str:
    return ", ".join(
        f"{count} for {group}" if group.startswith("lack of ") else f"{count} because {group}"
        for group, count in groups
    )
