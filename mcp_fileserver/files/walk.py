"""Directory listings and bounded recursive walks on descriptors, never on path strings.

A walk starts from a directory `Confinement.open` returned and opens each subdirectory
with `openat(parent_fd, name, O_NOFOLLOW | O_DIRECTORY)`, so a directory swapped for a
symlink mid-walk is simply skipped, never followed. Symlinks are reported as symlinks
(lstat semantics) and not descended; denied names are left out entirely; a directory
already seen (same st_dev, st_ino: bind-mount loops) is not entered twice. Every walk is
bounded by entries visited, depth and a deadline, and reports why it stopped.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from mcp_fileserver.files.confine import DIR_FLAGS, FILE_FLAGS
from mcp_fileserver.files.denylist import DenyList

Kind = Literal["file", "directory", "symlink", "other"]
StopReason = Literal["max_entries", "max_results", "max_bytes", "timeout", "max_depth"]

MAX_WALK_DEPTH = 256  # directory descriptors held at once by one walk
PROGRESS_EVERY = 256  # entries between progress callbacks


def kind_of(mode: int) -> Kind:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Entry:
    """One directory entry as lstat sees it; `rel` is relative to the walk's start."""

    name: str
    rel: tuple[str, ...]
    kind: Kind
    size: int
    mtime: float
    depth: int
    dir_fd: int = field(repr=False)  # the parent directory, open while the entry is current


@dataclass
class Budget:
    """Shared limits of one walk; `stopped` says which limit ended it, if any."""

    max_entries: int
    timeout_s: float
    max_depth: int = MAX_WALK_DEPTH
    progress: Callable[[int], None] | None = None
    visited: int = 0
    stopped: StopReason | None = None
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout_s

    def expired(self) -> bool:
        if self.stopped is None and time.monotonic() > self.deadline:
            self.stopped = "timeout"
        return self.stopped is not None

    def count(self) -> bool:
        """Count one entry; False once the walk must stop."""
        if self.expired():
            return False
        if self.visited >= self.max_entries:
            self.stopped = "max_entries"
            return False
        self.visited += 1
        if self.progress is not None and self.visited % PROGRESS_EVERY == 0:
            self.progress(self.visited)
        return True


def compile_globs(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """Shell globs (`*`, `?`, `[...]`) as one case-sensitive regex, like `find -name`."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def _excluded(exclude: re.Pattern[str] | None, name: str, rel: tuple[str, ...]) -> bool:
    return exclude is not None and bool(exclude.match(name) or exclude.match("/".join(rel)))


def scan(dir_fd: int, deny: DenyList, limit: int) -> tuple[list[str], bool]:
    """Up to `limit` visible names of one directory, sorted; True if there were more."""
    names: list[str] = []
    more = False
    with os.scandir(dir_fd) as it:
        for entry in it:
            if deny.denies_name(entry.name, is_dir=entry.is_dir(follow_symlinks=False)):
                continue
            if len(names) >= limit:
                more = True
                break
            names.append(entry.name)
    names.sort()
    return names, more


def lstat_entry(dir_fd: int, name: str, rel: tuple[str, ...], depth: int) -> Entry | None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return None  # vanished since the scan
    return Entry(name, rel, kind_of(st.st_mode), st.st_size, st.st_mtime, depth, dir_fd)


def walk(
    start_fd: int,
    *,
    deny: DenyList,
    budget: Budget,
    exclude: re.Pattern[str] | None = None,
) -> Iterator[Entry]:
    """Pre-order walk beneath `start_fd` (not closed here), sorted by name per directory.

    Yields each visible entry; directories are descended right after they are yielded.
    The entry's `dir_fd` stays open until the generator resumes.
    """
    seen: set[tuple[int, int]] = set()
    st = os.fstat(start_fd)
    seen.add((st.st_dev, st.st_ino))
    yield from _walk_dir(start_fd, (), 1, deny, budget, exclude, seen)


def _walk_dir(
    dir_fd: int,
    rel: tuple[str, ...],
    depth: int,
    deny: DenyList,
    budget: Budget,
    exclude: re.Pattern[str] | None,
    seen: set[tuple[int, int]],
) -> Iterator[Entry]:
    try:
        names, _ = scan(dir_fd, deny, budget.max_entries + 1)
    except OSError:
        return  # unreadable directory: nothing to show
    for name in names:
        child_rel = (*rel, name)
        if _excluded(exclude, name, child_rel):
            continue
        if not budget.count():
            return
        entry = lstat_entry(dir_fd, name, child_rel, depth)
        if entry is None:
            continue
        yield entry
        if budget.stopped is not None:
            return
        if entry.kind != "directory":
            continue
        if depth >= budget.max_depth:
            continue
        try:
            child = os.open(name, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
        except OSError:
            continue  # swapped for a symlink or removed: never followed
        try:
            cst = os.fstat(child)
            key = (cst.st_dev, cst.st_ino)
            if key in seen:
                continue
            seen.add(key)
            yield from _walk_dir(child, child_rel, depth + 1, deny, budget, exclude, seen)
        finally:
            os.close(child)
        if budget.stopped is not None:
            return


def open_file_in(dir_fd: int, name: str) -> int | None:
    """Open a walked entry for reading without following a symlink; None if not regular."""
    try:
        fd = os.open(name, FILE_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
    except OSError:
        pass
    with contextlib.suppress(OSError):
        os.close(fd)
    return None
