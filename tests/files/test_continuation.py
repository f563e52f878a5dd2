"""Continuation stops anywhere and loses nothing: every stopping point, deterministically.

A fake clock ends the time budget after exactly N readings (a cancellation flag after N
checks), and N is swept over every point at which a call can stop on a small tree that
has the awkward shapes: files after subdirectories, empty and deep directories, matches
in the last file of a directory, several matches per file, a large file read in blocks,
names that match as directories. For each N (and with `max_results` and the bytes
budget cutting too) the pages of one query, followed cursor to cursor, must concatenate
to the unbounded answer exactly: no gap, no duplicate, same order; with the content
search worker and without.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_fileserver.files.confine import Method
from mcp_fileserver.files.service import FileService
from tests.conftest import make_settings
from tests.files.helpers import tree_model

NEEDLE = "NEEDLE"
MAX_CALLS = 2000


def make_tree(root: Path) -> Path:
    """About 60 entries; the needle in the last file of most directories."""
    n = 0

    def text_file(path: Path, matches: tuple[int, ...] = ()) -> None:
        nonlocal n
        n += 1
        lines = [f"line {i} of {n}" for i in range(8)]
        for i in matches:
            lines[i] = f"{NEEDLE} {i}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")

    text_file(root / "a.py", (0,))
    for d in ("m1", "m2", "p3"):
        text_file(root / d / "f0.py", (2,))
        text_file(root / d / "f1.py")
        text_file(root / d / "mod" / "g0.py", (1, 5))
        text_file(root / d / "mod" / "g1.py")
        text_file(root / d / "mod" / "m9.py", (7,))  # the last file of its directory
        text_file(root / d / "n" / "o" / "deep.py", (3,))
        text_file(root / d / "z.py", (4,))  # a file after the subdirectories
    (root / "empty").mkdir()
    (root / "m1" / "empty").mkdir()
    (root / "data.bin").write_bytes(b"\0" + NEEDLE.encode() * 8)  # binary: skipped
    big = [f"{i}".encode() for i in range(300_000)]  # ~1.9 MB: read block by block
    for i in (10, 150_000, 299_999):
        big[i] = NEEDLE.encode()
    (root / "p3" / "big.txt").write_bytes(b"\n".join(big) + b"\n")
    (root / ".gitignore").write_text("*.log\n")
    (root / "m2" / "skip.log").write_text(NEEDLE)
    text_file(root / "zz" / "last.py", (6, 7))
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("cont") / "repo")


@pytest.fixture(scope="module")
def services(tree: Path) -> Iterator[dict[str, FileService]]:
    """One service searching in this process, one with its search worker started."""
    made = {}
    for kind in ("in-process", "worker"):
        settings = make_settings(allow=[tree], log_dir=tree.parent / "logs" / kind)
        made[kind] = FileService.from_settings(settings, Method.OPENAT2)
    worker = made["worker"].scan_worker
    assert worker is not None
    worker.start()
    yield made
    assert not worker.dead and worker.batches_sent > 0
    worker.stop()


class StepClock:
    """Reads 0.0 `n` times, then infinity: the budget ends at exactly the n-th reading
    (the first is the deadline's)."""

    def __init__(self, n: int) -> None:
        self.left = n

    def __call__(self) -> float:
        self.left -= 1
        return 0.0 if self.left >= 0 else float("inf")


class StepCancel(threading.Event):
    """A cancellation flag found set from its n-th check on."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.left = n

    def is_set(self) -> bool:
        self.left -= 1
        return self.left < 0


def stopped(page: Any) -> str | None:
    return page.stopped_by if hasattr(page, "stopped_by") else page["stopped_by"]


def pages(s: FileService, stop: Callable[[], Any], call: Callable[..., Any]) -> list[Any]:
    """Every page of one query, each call under a fresh stopping budget from `stop`."""
    out: list[Any] = []
    cursor: str | None = None
    while len(out) < MAX_CALLS:
        cancel = None
        kind = stop()
        if isinstance(kind, StepCancel):
            s.clock, cancel = (lambda: 0.0), kind
        else:
            s.clock = kind
        page = call(cursor, cancel)
        out.append(page)
        cursor = page.next_cursor if hasattr(page, "next_cursor") else page["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("no end after MAX_CALLS calls")


def sweep(s: FileService, call: Callable[..., Any], check: Callable[[list[Any]], None]) -> int:
    """Check the pages for a budget ending at every reading N (and a cancellation at
    every check N) until no call is stopped by either; how many calls they stopped."""
    stops = 0
    for make in (StepClock, StepCancel):
        n = 1
        while True:
            got = pages(s, lambda: make(n), call)  # noqa: B023 (used at once)
            check(got)
            by_budget = sum(stopped(p) in ("timeout", "cancelled") for p in got)
            if not by_budget:
                break
            stops += by_budget
            n += 1
            assert n < 5000
    s.clock = lambda: 0.0
    return stops


def unbounded(s: FileService, call: Callable[..., Any]) -> Any:
    s.clock = lambda: 0.0
    page = call(None, None)
    assert (page.next_cursor if hasattr(page, "next_cursor") else page["next_cursor"]) is None
    return page


@pytest.mark.parametrize("kind", ["in-process", "worker"])
@pytest.mark.parametrize("max_results", [1000, 2])
@pytest.mark.parametrize("max_bytes", [1 << 30, 100])
def test_content_search_resumes_from_every_stopping_point(
    services: dict[str, FileService], kind: str, max_results: int, max_bytes: int
) -> None:
    s = services[kind]
    s.limits = s.limits.model_copy(update={"max_search_bytes": 1 << 30})
    whole = unbounded(s, lambda c, x: s.search_file_contents(".", NEEDLE, cursor=c))
    want = [(m.path, m.line, m.text) for m in whole.matches]
    assert len(want) == 24
    s.limits = s.limits.model_copy(update={"max_search_bytes": max_bytes})

    def call(cursor: str | None, cancel: threading.Event | None) -> Any:
        return s.search_file_contents(
            ".", NEEDLE, max_results=max_results, cursor=cursor, cancel=cancel
        )

    def check(got: list[Any]) -> None:
        assert [(m.path, m.line, m.text) for p in got for m in p.matches] == want
        for p in got[:-1]:
            assert p.stopped_by in ("timeout", "cancelled", "max_results", "max_bytes")

    assert sweep(s, call, check) > 100


@pytest.mark.parametrize("pattern", ["*", "m*", "*.py", "nothing"])
@pytest.mark.parametrize("max_results", [1000, 1, 3])
def test_name_search_resumes_from_every_stopping_point(
    services: dict[str, FileService], pattern: str, max_results: int
) -> None:
    s = services["in-process"]
    whole = unbounded(s, lambda c, x: s.search_files(".", pattern, cursor=c))
    want = [(m.path, m.type) for m in whole.matches]
    assert pattern == "nothing" or len(want) > 3

    def call(cursor: str | None, cancel: threading.Event | None) -> Any:
        return s.search_files(".", pattern, max_results=max_results, cursor=cursor, cancel=cancel)

    def check(got: list[Any]) -> None:
        assert [(m.path, m.type) for p in got for m in p.matches] == want

    assert sweep(s, call, check) > 10


@pytest.mark.parametrize("max_depth", [2, 256])
@pytest.mark.parametrize("max_entries", [1000, 1, 4])
def test_tree_resumes_from_every_stopping_point(
    services: dict[str, FileService], max_depth: int, max_entries: int
) -> None:
    """A continued tree repeats only the ancestors of its first new entry."""
    s = services["in-process"]
    whole = unbounded(s, lambda c, x: tree_model(s, ".", max_depth=max_depth, cursor=c))
    want = [(e.path, e.type, e.expanded) for e in whole.tree]

    def call(cursor: str | None, cancel: threading.Event | None) -> Any:
        return tree_model(
            s, ".", max_depth=max_depth, max_entries=max_entries, cursor=cursor, cancel=cancel
        )

    def check(got: list[Any]) -> None:
        seen: list[tuple[str, str, bool | None]] = []
        for page in got:
            entries = [(e.path, e.type, e.expanded) for e in page.tree]
            repeated = [e for e in entries if e in seen]
            new = [e for e in entries if e not in seen]
            assert entries == repeated + new  # the repeated ones lead the page ...
            if repeated:  # ... and are exactly the ancestors of its first new entry
                parts = new[0][0].split("/")
                assert [e[0] for e in repeated] == [
                    "/".join(parts[:i]) for i in range(1, len(parts))
                ]
            seen.extend(new)
        assert seen == want

    assert sweep(s, call, check) > 10
