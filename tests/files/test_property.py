"""Property: whatever the tree (symlinks inside, outside, looping, chained) and whatever
the path string, nothing outside the root is ever opened, stat'ed or listed.

The check does not trust the code under test: every descriptor it returns is compared,
by (st_dev, st_ino), with the set of every object outside the root, and its kernel path
(/proc/self/fd) must lie beneath the root.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_fileserver.errors import Refusal
from mcp_fileserver.files import walk
from mcp_fileserver.files.confine import Confinement, Method
from mcp_fileserver.files.denylist import DEFAULT_DENY_PATTERNS, DenyList

DIRS = ["a", "b", "a/c", "b/d", "a/c/e", ".ssh"]
LINK_HOMES = ["", "a", "b", "a/c"]
LINK_NAMES = ["l1", "l2", "l3"]
TARGETS = [
    ".",
    "..",
    "../..",
    "a",
    "b/d",
    "a/../b",
    "l1",
    "l2",
    "l3",
    "l1/..",
    "../outside",
    "../outside/canary.txt",
    "../../outside/sub",
    "b/../../outside",
    "../root/a",
    "{root}",
    "{root}/a/c",
    "{root}/../outside",
    "{outside}",
    "{outside}/canary.txt",
    "/",
    "/etc",
    ".ssh",
    "f.txt",
    "missing",
]
COMPONENTS = [
    "",
    ".",
    "..",
    "a",
    "b",
    "c",
    "d",
    "e",
    "l1",
    "l2",
    "l3",
    "f.txt",
    "outside",
    "canary.txt",
    "sub",
    ".ssh",
    "root",
]
PREFIXES = ["", "/", "{root}/", "{root}", "{outside}/", "{root}-x/", "{base}/", "./"]

tree_strategy = st.fixed_dictionaries(
    {
        "dirs": st.lists(st.sampled_from(DIRS), max_size=6, unique=True),
        "files": st.lists(st.sampled_from(["", "a", "b", "a/c", "b/d"]), max_size=4),
        "links": st.lists(
            st.tuples(
                st.sampled_from(LINK_HOMES), st.sampled_from(LINK_NAMES), st.sampled_from(TARGETS)
            ),
            max_size=8,
        ),
    }
)
path_strategy = st.tuples(
    st.sampled_from(PREFIXES), st.lists(st.sampled_from(COMPONENTS), max_size=7)
).map(lambda t: t[0] + "/".join(t[1]))


@contextmanager
def planted(tree: dict) -> Iterator[tuple[Path, Path, Path, set[tuple[int, int]]]]:
    base = Path(tempfile.mkdtemp(prefix="confine-prop-")).resolve()
    try:
        root, outside = base / "root", base / "outside"
        root.mkdir()
        (outside / "sub").mkdir(parents=True)
        (outside / "canary.txt").write_text("CANARY")
        (base / "root-x").mkdir()
        for d in tree["dirs"]:
            (root / d).mkdir(parents=True, exist_ok=True)
        for home in tree["files"]:
            (root / home).mkdir(parents=True, exist_ok=True)
            (root / home / "f.txt").write_text("inside")
        fmt = {"root": str(root), "outside": str(outside)}
        for home, name, target in tree["links"]:
            (root / home).mkdir(parents=True, exist_ok=True)
            link = root / home / name
            if not link.is_symlink() and not link.exists():
                link.symlink_to(target.format(**fmt))
        outside_ids = {_id(base)}
        for path in (outside, base / "root-x"):
            outside_ids.add(_id(path))
            for dirpath, dirnames, filenames in os.walk(path):
                for n in dirnames + filenames:
                    outside_ids.add(_id(Path(dirpath) / n))
        yield base, root, outside, outside_ids
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _id(path: Path) -> tuple[int, int]:
    s = path.lstat()
    return (s.st_dev, s.st_ino)


def _beneath(fd: int, root: Path) -> bool:
    real = os.readlink(f"/proc/self/fd/{fd}")
    return real == str(root) or real.startswith(f"{root}/")


def _outcome(c: Confinement, path: str) -> tuple[int, int] | str:
    try:
        with c.open(path) as f:
            return (f.stat.st_dev, f.stat.st_ino)
    except Refusal as exc:
        return type(exc).__name__


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(tree=tree_strategy, paths=st.lists(path_strategy, min_size=1, max_size=12))
def test_nothing_outside_is_ever_opened_or_listed(tree: dict, paths: list[str]) -> None:
    deny = DenyList(DEFAULT_DENY_PATTERNS)
    with planted(tree) as (base, root, outside, outside_ids):
        mechanisms = {m: Confinement([root], deny, m) for m in Method}
        try:
            for raw in paths:
                path = raw.format(root=root, outside=outside, base=base)
                outcomes = {}
                for method, c in mechanisms.items():
                    outcomes[method] = _check_one(c, path, root, outside_ids)
                # the kernel mechanism and the walk agree exactly (same object or refusal)
                assert outcomes[Method.OPENAT2] == outcomes[Method.WALK], path
            _check_walk(mechanisms[Method.WALK], root, outside_ids, deny)
        finally:
            for c in mechanisms.values():
                c.close()


def _check_one(
    c: Confinement, path: str, root: Path, outside_ids: set[tuple[int, int]]
) -> tuple[int, int] | str:
    try:
        opened = c.open(path)
    except Refusal as exc:
        return type(exc).__name__
    with opened:
        ident = (opened.stat.st_dev, opened.stat.st_ino)
        assert ident not in outside_ids, path
        assert _beneath(opened.fd, root), path
        assert ".ssh" not in opened.rel
        if walk.kind_of(opened.stat.st_mode) == "directory":
            names, _ = walk.scan_page(opened.fd, c.deny, 0, 1000, walk.Budget(timeout_s=30))
            for name in names:
                child = os.stat(name, dir_fd=opened.fd, follow_symlinks=False)
                assert (child.st_dev, child.st_ino) not in outside_ids, (path, name)
    try:
        found = c.lstat(path)
    except Refusal:
        return ident
    assert (found.stat.st_dev, found.stat.st_ino) not in outside_ids, path
    return ident


def _check_walk(
    c: Confinement, root: Path, outside_ids: set[tuple[int, int]], deny: DenyList
) -> None:
    budget = walk.Budget(max_entries=10_000, timeout_s=30)
    with c.open(".", want="dir") as top:
        for entry in walk.walk(top.fd, deny=deny, budget=budget):
            st_ = os.stat(entry.name, dir_fd=entry.dir_fd, follow_symlinks=False)
            assert (st_.st_dev, st_.st_ino) not in outside_ids, entry.rel
            assert _beneath(entry.dir_fd, root)
            assert ".ssh" not in entry.rel
    assert budget.stopped is None
