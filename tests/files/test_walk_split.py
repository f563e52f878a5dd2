"""A name search shared with the search worker answers exactly as one process does.

`search_files` hands subtrees ahead of its walk to the worker (files/walk_split.py). The
pages of every query, followed cursor to cursor, must equal those of a search in one
process: the same matches in the same order, the same stopping reasons and counts, on a
tree with `.gitignore` files at several depths, denied names, symlinked and looping
directories, empty and deep directories. The splitting is forced to happen everywhere
(both ways of choosing subtrees, the worker's reports cut small so that the walk takes
over subtrees half done), and the tests check it did. The worker dying mid-walk, a
directory reached twice, a short deadline and a cancellation lose nothing either.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_fileserver.config import FilesSettings
from mcp_fileserver.files import search, walk_split
from mcp_fileserver.files.confine import Confinement, Method
from mcp_fileserver.files.cursor import query_key
from mcp_fileserver.files.denylist import DEFAULT_DENY_PATTERNS, DenyList
from mcp_fileserver.files.secret_content import SecretContent
from mcp_fileserver.files.service import FileService

PATTERNS = ("*.py", "*.md", "keep*", "f1*", "nothing-matches*", "*", "s?")


def make_tree(root: Path) -> Path:
    """About 2,500 entries in 450 directories, with the shapes that matter."""
    for a in range(5):
        for b in range(6):
            for c in range(4):
                d = root / f"t{a}" / f"s{b}" / f"l{c}"
                d.mkdir(parents=True)
                for f in range(4):
                    (d / f"f{f}.{('py', 'md', 'log', 'txt')[f]}").write_text("x")
            (root / f"t{a}" / f"s{b}" / "keep.log").write_text("x")  # re-included
            (root / f"t{a}" / f"s{b}" / "z.py").write_text("x")  # after the subdirectories
    (root / ".gitignore").write_text("*.log\n!keep.log\nbuild/\n")
    (root / "t1" / ".gitignore").write_text("*.md\n!s3/**/*.md\n")  # a deeper file
    (root / "t2" / "s4" / ".gitignore").write_text("l1/\n")  # an ignored directory
    for secret in (".env", "id_rsa", "server.pem"):
        (root / "t3" / "s2" / secret).write_text("secret")  # denied: never listed
    (root / "build" / "out").mkdir(parents=True)
    (root / "build" / "out" / "f1.py").write_text("ignored")
    (root / "t0" / "empty").mkdir()
    deep = root / "t4" / "deep"
    for i in range(40):
        deep = deep / f"s{i % 10}"
    deep.mkdir(parents=True)
    (deep / "f1.py").write_text("x")
    (root / "t2" / "link").symlink_to(root / "t3", target_is_directory=True)  # not followed
    (root / "t3" / "s5" / "loop").symlink_to(root, target_is_directory=True)
    (root / "t4" / "s0" / "l0" / "l0x").mkdir()  # a directory inside a leaf-ish one
    odd = os.fsencode(root / "t0" / "s1") + b"/f1 new\nline \xff\xfe.py"  # not UTF-8
    with open(odd, "w") as fh:
        fh.write("x")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("split") / "repo")


def new_service(tree: Path, **limits: Any) -> FileService:
    confinement = Confinement((tree,), DenyList(DEFAULT_DENY_PATTERNS), Method.OPENAT2)
    return FileService(confinement, FilesSettings(**limits), SecretContent([]))


@pytest.fixture(scope="module")
def alone(tree: Path) -> FileService:
    service = new_service(tree, search_worker=False)
    assert service.scan_worker is None
    return service


class Splits(Counter[str]):
    """What the shared walks did: subtrees handed over, and how each came back."""


@pytest.fixture
def splits(monkeypatch: pytest.MonkeyPatch) -> Splits:
    seen = Splits()
    reached, close = walk_split.SplitWalk.reached, walk_split.SplitWalk.close

    def counting_reached(self: walk_split.SplitWalk, frame: Any, index: int, keys: Any) -> Any:
        sub = frame.delegated.get(index)
        got = reached(self, frame, index, keys)
        if got is None:
            seen["walked here"] += 1
        elif sub is not walk_split._UNOPENED:
            seen["done" if got.done else "partial"] += 1
            seen["entries"] += sub.visited
        return got

    def counting_close(self: walk_split.SplitWalk) -> None:
        seen["handed over"] += len(self.tasks)
        close(self)

    monkeypatch.setattr(walk_split.SplitWalk, "reached", counting_reached)
    monkeypatch.setattr(walk_split.SplitWalk, "close", counting_close)
    monkeypatch.setattr(walk_split, "FIRST_AFTER", 0)
    return seen


@pytest.fixture(params=["largest first", "nearest first"])
def shared(
    request: pytest.FixtureRequest, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FileService]:
    """A service whose search worker is started; subtrees chosen either way, and the
    worker reporting every few entries (set before it is forked)."""
    monkeypatch.setattr(walk_split, "LONG_WALK", -1 if request.param == "largest first" else 1e18)
    monkeypatch.setattr(search, "CHECK_S", 0.0)
    monkeypatch.setattr(search, "REPORT_S", 0.0)
    service = new_service(tree)
    assert service.scan_worker is not None
    service.scan_worker.start()
    yield service
    service.scan_worker.stop()


def all_pages(
    service: FileService, pattern: str, path: str = ".", **kwargs: Any
) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    cursor = None
    while len(pages) < 5000:
        page = service.search_files_data(path, pattern, cursor=cursor, **kwargs)
        pages.append({k: v for k, v in page.items() if k != "next_cursor"})
        pages[-1]["more"] = page["next_cursor"] is not None
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("no end of pages")


@pytest.mark.parametrize("max_results", [1, 13, 1000])
def test_shared_search_answers_as_one_process(
    alone: FileService, shared: FileService, splits: Splits, max_results: int
) -> None:
    for pattern in PATTERNS:
        for include_ignored in (False, True):
            kwargs = {"max_results": max_results, "include_ignored": include_ignored}
            assert all_pages(shared, pattern, **kwargs) == all_pages(alone, pattern, **kwargs)
    for path, exclude in ((".", ["l1", "t2/s*"]), ("t1", []), ("t2/s4", ["*.txt"])):
        kwargs = {"max_results": max_results, "exclude_patterns": exclude, "path": path}
        assert all_pages(shared, "*", **kwargs) == all_pages(alone, "*", **kwargs)
    assert splits["handed over"] > 20 and splits["entries"] > 0
    assert splits["done"] > 0 and splits["partial"] > 0  # both ways back were taken
    assert shared.scan_worker is not None and not shared.scan_worker.dead


def test_the_answer_has_what_the_tree_has(alone: FileService, shared: FileService) -> None:
    """The oracle is right too: ignored, denied and symlinked-through paths are left out."""
    paths = [m["path"] for p in all_pages(shared, "*") for m in p["matches"]]
    assert paths == [m["path"] for p in all_pages(alone, "*") for m in p["matches"]]
    names = {p.rsplit("/", 1)[-1] for p in paths}
    assert {"keep.log", "z.py", "link", "loop", "l0x", "f1 new\nline \udcff\udcfe.py"} <= names
    assert not names & {".env", "id_rsa", "server.pem", "f2.log", "build"}
    assert not any("/link/" in p or "/loop/" in p for p in paths)  # symlinks not entered
    assert not any(p.endswith("/t1/s0/l0/f1.md") for p in paths)  # t1's .gitignore
    assert any(p.endswith("/t1/s3/l0/f1.md") for p in paths)  # re-included below it
    assert not any("/t2/s4/l1/" in p for p in paths)  # an ignored directory


@pytest.mark.parametrize("when", ["_hand_over", "_take"])
def test_a_worker_killed_mid_walk_loses_nothing(
    alone: FileService, shared: FileService, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """Killed right after the first subtree is handed over, or after its first report."""
    worker = shared.scan_worker
    assert worker is not None
    step = getattr(walk_split.SplitWalk, when)
    killed = Counter[str]()

    def then_kill(self: walk_split.SplitWalk, arg: Any) -> None:
        step(self, arg)
        if not killed:
            os.kill(worker.pid, signal.SIGKILL)
            killed["worker"] += 1

    monkeypatch.setattr(walk_split.SplitWalk, when, then_kill)
    for _ in range(50):  # a report may not have come yet when a walk ends
        assert all_pages(shared, "*.py") == all_pages(alone, "*.py")
        if killed:
            break
    assert killed["worker"] == 1
    with contextlib.suppress(ChildProcessError):
        os.waitpid(worker.pid, 0)  # gone for sure (the search may have noticed already)
    assert all_pages(shared, "*") == all_pages(alone, "*")
    shared.search_file_contents(".", "x")  # a content search waits for what it is owed
    assert worker.dead
    assert all_pages(shared, "*.md") == all_pages(alone, "*.md")  # in this process now


def test_a_directory_the_walk_entered_before_is_walked_here(
    alone: FileService, shared: FileService, splits: Splits, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subtree the worker walked that holds a directory this walk already entered (as a
    bind mount would make it) is dropped and walked here, by the single walk's rules."""
    reached = walk_split.SplitWalk.reached
    dropped = Counter[str]()

    def with_a_seen_directory(self: walk_split.SplitWalk, frame: Any, index: int, keys: Any) -> Any:
        sub = frame.delegated.get(index)
        if sub is not walk_split._UNOPENED and dropped["reached"] % 2 == 0:
            sub.keys.append(start_key)  # the walk's start: entered first
            dropped["subtrees"] += 1
        dropped["reached"] += 1
        return reached(self, frame, index, keys)

    st = os.stat(shared.confinement.roots[0].path)
    start_key = (st.st_dev, st.st_ino)
    monkeypatch.setattr(walk_split.SplitWalk, "reached", with_a_seen_directory)
    assert all_pages(shared, "*") == all_pages(alone, "*")
    assert dropped["subtrees"] > 0 and splits["walked here"] > 0


def test_a_short_deadline_continues_without_gap_or_duplicate(
    tree: Path, alone: FileService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(walk_split, "FIRST_AFTER", 0)
    monkeypatch.setattr(walk_split, "LONG_WALK", -1)
    rushed = new_service(tree, walk_timeout_s=0.002)
    assert rushed.scan_worker is not None
    rushed.scan_worker.start()
    try:
        pages = all_pages(rushed, "*")
    finally:
        rushed.scan_worker.stop()
    whole = all_pages(alone, "*")
    assert [m for p in pages for m in p["matches"]] == whole[0]["matches"]
    assert len(pages) > 1 and {p["stopped_by"] for p in pages[:-1]} == {"timeout"}


def test_a_cancelled_shared_search_stops_and_frees_the_worker(
    alone: FileService, shared: FileService
) -> None:
    cancel = threading.Event()
    cancel.set()
    page = shared.search_files_data(".", "*", cancel=cancel)
    assert page["stopped_by"] == "cancelled" and page["next_cursor"] is not None
    assert all_pages(shared, "*.md") == all_pages(alone, "*.md")  # the worker is free again


def test_a_stalled_worker_is_never_waited_for(alone: FileService, shared: FileService) -> None:
    """A worker that gets no CPU (here: stopped) delays no search: subtrees handed to it
    are walked here when the walk gets there, and later searches run alone until what
    it owes has come; then it serves again."""
    worker = shared.scan_worker
    assert worker is not None
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        for pattern in ("*", "*.py", "f1*"):
            assert all_pages(shared, pattern, max_results=50) == all_pages(
                alone, pattern, max_results=50
            )
        assert worker.owed > 0  # the stopped subtrees' last reports
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    found = shared.search_file_contents(".", "x")  # waits for what it is owed
    assert worker.owed == 0 and not worker.dead and found.matches
    assert all_pages(shared, "*.md") == all_pages(alone, "*.md")


def test_a_page_takes_what_the_worker_walked_ahead_of_the_last(
    alone: FileService, shared: FileService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Subtrees the worker walked beyond where a page stopped serve the next page of the
    same query (`Leftovers`), and the pages still equal one process's."""
    reached = walk_split.SplitWalk.reached
    reused = Counter[str]()

    def counting(self: walk_split.SplitWalk, frame: Any, index: int, keys: Any) -> Any:
        sub = frame.delegated.get(index)
        got = reached(self, frame, index, keys)
        if sub is not walk_split._UNOPENED and sub.earlier and got is not None:
            reused["subtrees"] += 1
        return got

    monkeypatch.setattr(walk_split.SplitWalk, "reached", counting)
    for _ in range(30):  # a busy machine may leave nothing behind on some rounds
        assert all_pages(shared, "*", max_results=40) == all_pages(alone, "*", max_results=40)
        if reused["subtrees"] >= 3:
            break
    assert reused["subtrees"] > 0


def test_leftovers_are_taken_only_for_their_query_directory_and_time(tree: Path) -> None:
    """What the worker walked ahead (here: planted, with a marker no walk would find) is
    taken by the next search of the same query, and not for another query, after
    `LEFTOVER_S`, or where its directory was replaced: then the walk sees what is there."""
    root = tree.parent / "leftovers"
    make_tree(root)
    service = new_service(root)
    assert service.scan_worker is not None
    service.scan_worker.start()
    query = query_key("search_files", str(root.resolve()), "*", [], False)

    def plant(key_of: Path, *, query: str = query, age: float = 0.0) -> None:
        st = key_of.stat()
        sub = walk_split._Subtree(-2, (st.st_dev, st.st_ino), ("t3",))
        sub.time = walk_split.time.monotonic() - age
        sub.final = sub.done = True
        sub.paths, sub.kinds, sub.counts, sub.visited = ["t3/MARKER.py"], "f", [1], 1
        sub.last = (("t3",), "MARKER.py")
        service.name_leftovers.keep(query, [sub])

    def paths() -> list[str]:
        pages = all_pages(service, "*")
        return [m["path"].removeprefix(f"{root.resolve()}/") for p in pages for m in p["matches"]]

    try:
        plant(root / "t3")
        taken = paths()
        assert "t3/MARKER.py" in taken and "t3/s0/z.py" not in taken
        plant(root / "t3", query="another query")
        assert "t3/MARKER.py" not in paths()
        plant(root / "t3", age=walk_split.LEFTOVER_S + 1)
        assert "t3/MARKER.py" not in paths()
        plant(root / "t3")
        (root / "t3").rename(root / "moved-away")  # replaced: a new directory, a new file
        (root / "t3").mkdir()
        (root / "t3" / "f1-new.py").write_text("x")
        after = paths()
        assert "t3/MARKER.py" not in after and "t3/f1-new.py" in after
    finally:
        service.scan_worker.stop()
