"""Complete answers on a tree of tens of thousands of files, and exact continuation.

The tree is generated once per module. The expected answers come from an independent
oracle (os.walk + plain reads, walk order = the lexicographic order of path components).
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client, FastMCP

from mcp_fileserver.errors import InvalidRequest
from mcp_fileserver.files.confine import Method
from mcp_fileserver.files.service import FileService
from mcp_fileserver.files.tools import register_file_tools, run_cancellable
from tests.conftest import in_memory_client, make_settings
from tests.files.helpers import call, tree_model

DIRS, SUBDIRS, FILES_PER_DIR = 30, 20, 40  # 600 directories x 40 = 24,000 files
WIDE = 10_050  # files in one directory: past the old 10,000 cap
NEEDLE = "RARE_NEEDLE"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Made in memory (/dev/shm) where there is one: 35k files on a busy disk take ~50 s."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        base = Path(tempfile.mkdtemp(prefix="mcp-fileserver-scale-", dir=shm))
    else:
        base = tmp_path_factory.mktemp("large")
    try:
        yield make_tree(base.resolve() / "repo")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def make_tree(root: Path) -> Path:
    root.mkdir()
    for d in range(DIRS):
        for s in range(SUBDIRS):
            sub = root / f"pkg{d:02d}" / f"mod{s:02d}"
            sub.mkdir(parents=True)
            for f in range(FILES_PER_DIR):
                n = (d * SUBDIRS + s) * FILES_PER_DIR + f
                lines = [f"line {i} of file {n}" for i in range(20)]
                if n % 101 == 0:
                    lines[3] = f"x {NEEDLE} y"
                if n % 1009 == 0:  # several matches in one file: cursors inside files
                    lines[7] = lines[11] = lines[19] = NEEDLE
                (sub / f"f{f:02d}.py").write_text("\n".join(lines) + "\n")
    wide = root / "wide"
    wide.mkdir()
    for i in range(WIDE):
        (wide / f"w{i:05d}.txt").write_bytes(b"")
    (root / ".gitignore").write_text("*.tmp\nbuild/\n")
    (root / "pkg00" / ".gitignore").write_text("!keep.tmp\n")
    for ignored in ("build/out.py", "pkg01/scratch.tmp", ".git/objects/ab/pack.py"):
        (root / ignored).parent.mkdir(parents=True, exist_ok=True)
        (root / ignored).write_text(f"{NEEDLE}\n")
    (root / "pkg00" / "keep.tmp").write_text(f"{NEEDLE}\n")  # re-included by `!`
    (root / "data.bin").write_bytes(b"\0\1\2" + NEEDLE.encode() * 10)  # binary: skipped
    return root


IGNORED = ("build", ".git")


@functools.cache
def oracle_files(root: Path, *, include_ignored: bool = False) -> list[tuple[str, ...]]:
    """Every regular file beneath root in walk order, minus what .gitignore ignores."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).parts
        if not include_ignored:
            dirnames[:] = [d for d in dirnames if not (rel == () and d in IGNORED)]
            filenames = [f for f in filenames if not f.endswith(".tmp") or f == "keep.tmp"]
        found.extend((*rel, f) for f in filenames)
    return sorted(found)


@functools.cache
def oracle_lines(root: Path, **kw: bool) -> list[tuple[str, int]]:
    out = []
    for rel in oracle_files(root, **kw):
        data = (root.joinpath(*rel)).read_bytes()
        if b"\0" in data[:8192]:
            continue
        for i, line in enumerate(data.decode().splitlines(), 1):
            if NEEDLE in line:
                out.append((str(root.joinpath(*rel)), i))
    return out


def service(root: Path, **limits: Any) -> FileService:
    """A service searching in this process (its worker is never started)."""
    settings = make_settings(allow=[root], log_dir=root.parent / "logs")
    s = FileService.from_settings(settings, Method.OPENAT2)
    if limits:
        s.limits = s.limits.model_copy(update=limits)
    return s


@pytest.fixture(params=["in-process", "worker"])
def searcher(request: pytest.FixtureRequest) -> Iterator[Callable[..., FileService]]:
    """`service`, and the same with its content-search worker process started: every
    answer and cursor must be the same either way."""
    started: list[FileService] = []

    def make(root: Path, **limits: Any) -> FileService:
        s = service(root, **limits)
        if request.param == "worker":
            assert s.scan_worker is not None
            s.scan_worker.start()
            started.append(s)
        return s

    yield make
    for s in started:
        assert s.scan_worker is not None
        assert not s.scan_worker.dead, "the worker died during the test"
        assert s.scan_worker.batches_sent > 0, "the worker was never used"
        s.scan_worker.stop()


def drain(first: Callable[[str | None], Any]) -> tuple[list[Any], int]:
    """Follow next_cursor to the end; all matches and the number of calls."""
    matches: list[Any] = []
    cursor: str | None = None
    calls = 0
    while True:
        page = first(cursor)
        calls += 1
        matches.extend(page.matches)
        cursor = page.next_cursor
        assert (cursor is None) == (page.stopped_by is None)
        if cursor is None:
            return matches, calls
        assert calls < 10_000


def test_content_search_is_complete_by_default(
    tree: Path, searcher: Callable[..., FileService]
) -> None:
    expected = oracle_lines(tree)
    found = searcher(tree).search_file_contents(".", NEEDLE)
    assert found.stopped_by is None and found.next_cursor is None
    assert [(m.path, m.line) for m in found.matches] == expected
    assert len(expected) > 200 and found.files_scanned > 24_000


def test_name_search_is_complete_by_default(tree: Path) -> None:
    found = service(tree).search_files(".", "data.*")
    assert [m.path for m in found.matches] == [str(tree / "data.bin")]
    assert found.stopped_by is None and found.entries_visited > 34_000
    found = service(tree).search_files(".", "*.py")
    expected = [str(tree.joinpath(*r)) for r in oracle_files(tree) if r[-1].endswith(".py")]
    assert [m.path for m in found.matches] == expected[:1000]  # max_results: 1000 default
    assert found.stopped_by == "max_results" and found.next_cursor


def test_results_beyond_max_results_continue_exactly(
    tree: Path, searcher: Callable[..., FileService]
) -> None:
    s = searcher(tree)
    expected = oracle_lines(tree)
    got, calls = drain(lambda c: s.search_file_contents(".", NEEDLE, max_results=7, cursor=c))
    assert [(m.path, m.line) for m in got] == expected  # no duplicate, no gap, same order
    assert calls == len(expected) // 7 + 1
    names, _ = drain(lambda c: s.search_files(".", "f0[0-3].py", max_results=333, cursor=c))
    want = [str(tree.joinpath(*r)) for r in oracle_files(tree) if r[-1] < "f04" and r[-1][0] == "f"]
    assert [m.path for m in names] == want and len(want) == 2400


@pytest.mark.parametrize("timeout_s", [0.02, 0.05])
def test_time_budget_stops_and_continues_exactly(
    tree: Path, searcher: Callable[..., FileService], timeout_s: float
) -> None:
    """A real clock on the large tree (test_continuation.py stops at every point of a
    small one): shorter budgets than either whole walk of ~25k files, with or without
    the search worker, so every search takes several calls."""
    s = searcher(tree, walk_timeout_s=timeout_s)
    got, calls = drain(lambda c: s.search_file_contents(".", NEEDLE, cursor=c))
    assert [(m.path, m.line) for m in got] == oracle_lines(tree)
    assert calls > 1
    names, calls = drain(lambda c: s.search_files(".", "*.py", cursor=c))
    expected = [str(tree.joinpath(*r)) for r in oracle_files(tree) if r[-1].endswith(".py")]
    assert [m.path for m in names] == expected and calls > 1


def test_bytes_budget_stops_inside_files_and_continues(
    tree: Path, searcher: Callable[..., FileService]
) -> None:
    s = searcher(tree, max_search_bytes=50)  # smaller than one file: stops inside each
    sub = str(tree / "pkg00" / "mod00")
    expected = [m for m in oracle_lines(tree) if m[0].startswith(sub + "/")]
    got, calls = drain(lambda c: s.search_file_contents(sub, NEEDLE, cursor=c))
    assert [(m.path, m.line) for m in got] == expected and calls >= 40


def test_tree_continues_with_ancestors_for_nesting(tree: Path) -> None:
    s = service(tree)
    first = tree_model(s, "pkg03", max_depth=2, max_entries=30)
    assert first.stopped_by == "max_entries" and first.next_cursor
    second = tree_model(s, "pkg03", max_depth=2, max_entries=30, cursor=first.next_cursor)
    # Flat pre-order: a continued tree repeats the ancestors of its first entry.
    assert [e.path for e in first.tree if "/" not in e.path] == ["mod00"]
    assert [e.path for e in second.tree if "/" not in e.path] == ["mod00", "mod01"]
    seen = [e.path for e in first.tree if e.path.startswith("mod00/")] + [
        e.path for e in second.tree if e.path.startswith("mod00/")
    ]
    assert seen == [f"mod00/f{i:02d}.py" for i in range(40)]
    assert [e.path for e in second.tree if e.path.startswith("mod01/")] == [
        f"mod01/f{i:02d}.py" for i in range(18)
    ]
    assert second.entries == 30


def test_list_directory_reaches_every_entry(tree: Path) -> None:
    s = service(tree)
    names, offset = [], 0
    while offset is not None:
        page = s.list_directory("wide", offset=offset)
        assert page.total == WIDE
        names.extend(e.name for e in page.entries)
        offset = page.next_offset
    assert names == [f"w{i:05d}.txt" for i in range(WIDE)]


def test_gitignore_rules_and_include_ignored(tree: Path) -> None:
    s = service(tree)
    default = {m.path for m in s.search_file_contents(".", NEEDLE).matches}
    everything = {m.path for m in s.search_file_contents(".", NEEDLE, include_ignored=True).matches}
    hidden = {
        str(tree / p) for p in ("build/out.py", "pkg01/scratch.tmp", ".git/objects/ab/pack.py")
    }
    assert not default & hidden and hidden <= everything
    assert str(tree / "pkg00" / "keep.tmp") in default  # nested negation re-includes it
    assert str(tree / "data.bin") not in everything  # binary, either way
    # A search started below the root still honours the root's .gitignore ...
    assert s.search_files("pkg01", "*.tmp").matches == []
    # ... and reading an ignored path directly is unaffected.
    assert s.read_text_file("build/out.py").text == f"{NEEDLE}\n"
    tree_names = [e.path for e in tree_model(s, ".", max_depth=1).tree]
    assert ".git" not in tree_names and "build" not in tree_names and ".gitignore" in tree_names


def test_cursor_is_tamper_evident_and_bound_to_its_query(tree: Path) -> None:
    s = service(tree)
    page = s.search_files(".", "*.py", max_results=5)
    assert page.next_cursor
    body, sig = page.next_cursor.split(".")
    for bad in (body + "x." + sig, body + "." + sig[:-2] + "AA", "garbage", ""):
        with pytest.raises(InvalidRequest, match="cursor"):
            s.search_files(".", "*.py", max_results=5, cursor=bad)
    with pytest.raises(InvalidRequest, match="different query"):
        s.search_files(".", "*.txt", max_results=5, cursor=page.next_cursor)
    with pytest.raises(InvalidRequest, match="expired"):  # another process: another key
        service(tree).search_files(".", "*.py", max_results=5, cursor=page.next_cursor)


def test_cancelled_search_stops_within_100_ms(
    tree: Path, searcher: Callable[..., FileService]
) -> None:
    s = searcher(tree)
    cancel = threading.Event()
    done: list[float] = []

    def run() -> None:
        s.search_file_contents(".", "no such text anywhere", include_ignored=True, cancel=cancel)
        done.append(time.monotonic())

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.05)
    assert worker.is_alive()
    cancel.set()
    set_at = time.monotonic()
    worker.join(5)
    assert done and done[0] - set_at < 0.1
    again = s.search_file_contents(".", NEEDLE)  # a worker's abandoned replies are dropped
    assert [(m.path, m.line) for m in again.matches] == oracle_lines(tree)


async def test_cancelling_the_call_reaches_the_worker_thread() -> None:
    flagged = threading.Event()
    finished = threading.Event()

    def op(*, cancel: threading.Event) -> None:
        while not cancel.wait(0.001):
            pass
        flagged.set()
        finished.set()

    task = asyncio.ensure_future(run_cancellable(op))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(finished.wait, 0.1) and flagged.is_set()


async def test_continuation_over_the_protocol(tree: Path) -> None:
    settings = make_settings(allow=[tree], log_dir=tree.parent / "logs-proto")
    async with in_memory_client(settings) as client:
        args = {"path": str(tree), "pattern": NEEDLE, "max_results": 100}
        first = await call(client, "search_file_contents", args)
        data = first.structured_content
        assert data["stopped_by"] == "max_results" and data["next_cursor"]
        rest = await call(client, "search_file_contents", {**args, "cursor": data["next_cursor"]})
        paths = [
            (m["path"], m["line"]) for m in data["matches"] + rest.structured_content["matches"]
        ]
        assert paths == oracle_lines(tree)[:200]


def test_budget_stops_inside_a_large_file_and_resumes_at_the_line(tmp_path: Path) -> None:
    lines = [f"row {i} " + "x" * 100 for i in range(40_000)]  # ~4.3 MB: several blocks
    for i in (0, 9_999, 10_000, 19_123, 39_999):
        lines[i] = f"{NEEDLE} at {i}"
    (tmp_path / "big.txt").write_text("\n".join(lines))
    s = service(tmp_path, max_search_bytes=1)  # one block per call
    for path in ("big.txt", "."):
        got, calls = drain(lambda c, p=path: s.search_file_contents(p, NEEDLE, cursor=c))
        assert [(m.line, m.text) for m in got] == [
            (i + 1, f"{NEEDLE} at {i}") for i in (0, 9_999, 10_000, 19_123, 39_999)
        ]
        assert calls >= 4


@pytest.mark.parametrize("slots", [1, 2])
async def test_walks_in_flight_are_bounded_by_max_parallel_walks(
    tmp_path: Path, slots: int
) -> None:
    config = tmp_path / "walks.toml"
    config.write_text(f"[files]\nmax_parallel_walks = {slots}\n")
    settings = make_settings(allow=[tmp_path], log_dir=tmp_path / "logs", config=config)
    assert settings.files.max_parallel_walks == slots
    mcp = FastMCP("walks")
    service = register_file_tools(mcp, settings)
    running, peak = 0, 0
    lock = threading.Lock()

    def slow_search(*_: object, **__: object) -> Any:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        raise InvalidRequest("done")

    service.search_files_data = slow_search  # type: ignore[method-assign]
    async with Client(mcp) as client:
        calls = [
            call(client, "search_files", {"path": str(tmp_path), "pattern": "*"}) for _ in range(5)
        ]
        results = await asyncio.gather(*calls)
    assert all(r.is_error for r in results) and peak == slots
