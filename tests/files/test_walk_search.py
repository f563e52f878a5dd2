"""Listings, trees and searches: fd-based, bounded, symlinks shown but never followed."""

from __future__ import annotations

import os

import pytest

from mcp_fileserver.errors import InvalidRequest, NotAllowed
from mcp_fileserver.files.confine import Method
from mcp_fileserver.files.service import FileService
from tests.conftest import make_settings
from tests.files.helpers import CANARY, Workspace, tree_model


def service_for(ws: Workspace, method: Method, **limits: object) -> FileService:
    settings = make_settings(allow=[ws.root], log_dir=ws.base / "logs")
    service = FileService.from_settings(settings, method)
    if limits:
        service.limits = service.limits.model_copy(update=limits)
    return service


@pytest.fixture
def planted(ws: Workspace) -> Workspace:
    (ws.root / "dir_out").symlink_to(ws.outside)
    (ws.root / "file_out").symlink_to(ws.canary_file)
    (ws.root / "sub" / "loop").symlink_to("..")
    (ws.root / ".env").write_text(f"TOKEN={CANARY}\n")
    (ws.root / "sub" / "id_rsa").write_text(CANARY)
    (ws.root / ".ssh").mkdir()
    (ws.root / ".ssh" / "known_hosts").write_text(CANARY)
    os.mkfifo(ws.root / "sub" / "pipe")
    return ws


def names(listing) -> list[str]:
    return [e.name for e in listing.entries]


def test_list_directory(planted: Workspace, method: Method) -> None:
    s = service_for(planted, method)
    listing = s.list_directory(".")
    assert names(listing) == ["dir_out", "file_out", "hello.txt", "sub"]
    kinds = {e.name: e.type for e in listing.entries}
    assert kinds == {
        "dir_out": "symlink",
        "file_out": "symlink",
        "hello.txt": "file",
        "sub": "directory",
    }
    link = next(e for e in listing.entries if e.name == "file_out")
    assert link.size == len(str(planted.canary_file))  # lstat size: the link itself
    assert listing.total == 4 and listing.next_offset is None
    assert names(s.list_directory("sub")) == ["deeper", "loop", "notes.txt", "pipe"]
    kinds = {e.name: e.type for e in s.list_directory("sub").entries}
    assert kinds["pipe"] == "other"
    with pytest.raises(NotAllowed):
        s.list_directory("dir_out")
    with pytest.raises(NotAllowed):
        s.list_directory(str(planted.outside))


def test_list_directory_paging(ws: Workspace, method: Method) -> None:
    for i in range(25):
        (ws.root / "sub" / f"f{i:02d}").write_text("x")
    s = service_for(ws, method)
    pages, offset = [], 0
    while offset is not None:
        page = s.list_directory("sub", offset=offset, limit=10)
        pages.append(names(page))
        offset = page.next_offset
    assert [len(p) for p in pages] == [10, 10, 7]
    assert [n for p in pages for n in p] == sorted(
        ["deeper", "notes.txt", *(f"f{i:02d}" for i in range(25))]
    )
    assert s.list_directory("sub", offset=100).entries == []


def test_directory_tree(planted: Workspace, method: Method) -> None:
    s = service_for(planted, method)
    tree = tree_model(s, ".", max_depth=3)
    by_path = {e.path: e for e in tree.tree}
    assert [e.path for e in tree.tree] == [
        "dir_out",
        "file_out",
        "hello.txt",
        "sub",
        "sub/deeper",
        "sub/deeper/leaf.md",
        "sub/loop",
        "sub/notes.txt",
        "sub/pipe",
    ]
    assert by_path["dir_out"].type == "symlink" and by_path["dir_out"].expanded is None
    assert by_path["sub/loop"].type == "symlink" and by_path["sub/loop"].expanded is None
    assert by_path["sub"].expanded and by_path["sub/deeper"].expanded
    assert by_path["hello.txt"].expanded is None
    assert not tree.truncated and tree.stopped_by is None
    assert CANARY not in tree.model_dump_json()
    shallow = tree_model(s, ".", max_depth=1)
    assert [e.path for e in shallow.tree] == ["dir_out", "file_out", "hello.txt", "sub"]
    assert {e.path: e.expanded for e in shallow.tree}["sub"] is False


def test_directory_tree_limits_and_excludes(ws: Workspace, method: Method) -> None:
    for i in range(30):
        (ws.root / "sub" / f"f{i:02d}.log").write_text("x")
    s = service_for(ws, method)
    tree = tree_model(s, ".", max_entries=10)
    assert tree.truncated and tree.stopped_by == "max_entries" and tree.entries == 10
    excluded = tree_model(s, ".", exclude_patterns=["*.log", "deeper"])
    assert [e.path for e in excluded.tree if e.path.startswith("sub/")] == ["sub/notes.txt"]
    timed = tree_model(service_for(ws, method, walk_timeout_s=1e-9), ".")
    assert timed.truncated and timed.stopped_by == "timeout"


def test_walk_skips_directory_swapped_for_symlink(ws: Workspace) -> None:
    """The walk opens children with O_NOFOLLOW relative to the parent descriptor."""
    from mcp_fileserver.files import walk

    budget = walk.Budget(max_entries=100, timeout_s=10)
    root_fd = os.open(ws.root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        seen = []
        for entry in walk.walk(root_fd, deny=service_for(ws, Method.WALK).deny, budget=budget):
            seen.append(entry.rel)
            if entry.rel == ("sub",):
                os.rename(ws.root / "sub", ws.root / "sub.moved")
                (ws.root / "sub").symlink_to(ws.outside)
        assert all("canary.txt" not in rel for rel in seen)
    finally:
        os.close(root_fd)


def test_search_files(planted: Workspace, method: Method) -> None:
    s = service_for(planted, method)
    found = s.search_files(".", "*.txt")
    assert [m.path for m in found.matches] == [
        str(planted.root / "hello.txt"),
        str(planted.root / "sub" / "notes.txt"),
    ]
    assert s.search_files(".", "canary*").matches == []
    assert s.search_files(".", "*id_rsa*").matches == []
    assert s.search_files(".", ".env").matches == []
    assert [m.path for m in s.search_files(".", "*", exclude_patterns=["sub"]).matches] == [
        str(planted.root / p) for p in ("dir_out", "file_out", "hello.txt")
    ]
    limited = s.search_files(".", "*", max_results=2)
    assert len(limited.matches) == 2 and limited.stopped_by == "max_results"
    assert s.search_files("sub", "*.md").matches[0].path == str(planted.root / "sub/deeper/leaf.md")


def test_search_file_contents(planted: Workspace, method: Method) -> None:
    s = service_for(planted, method)
    found = s.search_file_contents(".", "second line")
    assert [(m.path, m.line, m.text) for m in found.matches] == [
        (str(planted.root / "hello.txt"), 2, "second line"),
        (str(planted.root / "sub/deeper/leaf.md"), 2, "second line"),
    ]
    assert s.search_file_contents(".", CANARY).matches == []
    assert s.search_file_contents(".", "TOKEN").matches == []
    regex = s.search_file_contents(".", r"^(hello|third) \w+$", regex=True)
    assert [m.line for m in regex.matches] == [1, 3]
    assert s.search_file_contents(".", "HELLO").matches == []
    assert len(s.search_file_contents(".", "HELLO", case_sensitive=False).matches) == 1
    assert len(s.search_file_contents(".", "line", glob="*.md").matches) == 1
    one = s.search_file_contents("hello.txt", "line")
    assert [m.line for m in one.matches] == [2, 3]
    assert s.search_file_contents(".", "a.c", regex=False).matches == []  # literal by default


def test_search_contents_limits(ws: Workspace, method: Method) -> None:
    (ws.root / "many.txt").write_text("match\n" * 500)
    (ws.root / "bin.dat").write_bytes(b"match\0match\n")
    s = service_for(ws, method, max_search_bytes=600)
    found = s.search_file_contents(".", "match", max_results=1000)
    assert found.stopped_by == "max_bytes" and found.bytes_scanned <= 600
    assert all(m.path.endswith("many.txt") for m in found.matches)  # binary skipped
    capped = service_for(ws, method).search_file_contents(".", "match", max_results=7)
    assert len(capped.matches) == 7 and capped.stopped_by == "max_results"


def test_line_numbers_across_blocks(ws: Workspace) -> None:
    from mcp_fileserver.files import search

    lines = [f"row {i}" + ("x" * 100) for i in range(30_000)]  # ~3 MB, several blocks
    lines[12_345] = "needle here"
    lines[29_999] = "needle at the end"
    (ws.root / "big.txt").write_text("\n".join(lines))
    s = service_for(ws, Method.OPENAT2)
    found = s.search_file_contents("big.txt", "needle")
    assert [m.line for m in found.matches] == [12_346, 30_000]
    assert (ws.root / "big.txt").stat().st_size > search.SCAN_BLOCK


@pytest.mark.parametrize("pattern", ["(", "a{2,1}", "(?<name", "((a{1000}){1000}){1000}"])
def test_invalid_or_huge_regex_is_invalid_request(ws: Workspace, pattern: str) -> None:
    s = service_for(ws, Method.OPENAT2)
    with pytest.raises(InvalidRequest, match="regular expression"):
        s.search_file_contents(".", pattern, regex=True)


def test_regex_dos_patterns_run_in_linear_time(ws: Workspace) -> None:
    """Catastrophic-backtracking patterns are harmless on RE2 (a hang would fail the run)."""
    (ws.root / "aaa.txt").write_text("a" * 100_000 + "\n" + ("ab" * 50_000) + "\n")
    s = service_for(ws, Method.OPENAT2)
    for pattern in (r"(a*)*b", r"(a|aa)+$", r"^(a+)+$", r"(.*a){20}", r"(x+x+)+y"):
        s.search_file_contents(".", pattern, regex=True)  # completes


def test_backreferences_are_not_supported(ws: Workspace) -> None:
    s = service_for(ws, Method.OPENAT2)
    with pytest.raises(InvalidRequest):
        s.search_file_contents(".", r"(a)\1", regex=True)


def test_tree_answer_is_capped_by_max_walk_entries_and_continues(ws: Workspace) -> None:
    s = service_for(ws, Method.OPENAT2, max_walk_entries=2)
    names: list[str] = []
    cursor = None
    while True:
        page = tree_model(s, ".", max_depth=1, max_entries=1000, cursor=cursor)
        assert page.entries <= 2
        names += [e.path for e in page.tree]
        cursor = page.next_cursor
        if cursor is None:
            break
        assert page.stopped_by == "max_entries"
    assert names == ["hello.txt", "sub"]
