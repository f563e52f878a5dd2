"""Directory listings and bounded, resumable recursive walks on descriptors.

A walk starts from a directory `Confinement.open` returned and opens each subdirectory
with `openat(parent_fd, name, O_NOFOLLOW | O_DIRECTORY)`, so a directory swapped for a
symlink mid-walk is simply skipped, never followed. Symlinks are reported as symlinks
(lstat semantics) and not descended; denied names are left out entirely; a directory
already seen (same st_dev, st_ino: bind-mount loops) is not entered twice. Unless the
caller includes ignored files, `.git` and what `.gitignore` files ignore are left out
(see ignore.py).

Order is stable: pre-order, names sorted per directory, i.e. the lexicographic order of
the entries' path components. A walk may start *after* a position (cursor.py), so one
stopped by its time budget, a cancellation or the caller's result limit continues
exactly where it stopped. Every walk is bounded by depth and a deadline (and optionally
entries), checks a cancellation flag per entry, and reports why it stopped.
"""

from __future__ import annotations

import bisect
import contextlib
import fnmatch
import heapq
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from mcp_fileserver.files import ignore
from mcp_fileserver.files.confine import DIR_FLAGS, FILE_FLAGS
from mcp_fileserver.files.denylist import DenyList

Kind = Literal["file", "directory", "symlink", "other"]
StopReason = Literal["max_entries", "max_results", "max_bytes", "timeout", "cancelled"]

MAX_WALK_DEPTH = 256  # directory descriptors held at once by one walk
PROGRESS_EVERY = 256  # entries between progress callbacks (a multiple of CHECK_EVERY)
CHECK_EVERY = 32  # entries between reads of the clock and the cancellation flag


def kind_of(mode: int) -> Kind:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


def kind_of_entry(entry: os.DirEntry[str]) -> Kind:
    """The type the directory scan reported (d_type): no stat unless the filesystem lacks it."""
    try:
        if entry.is_file(follow_symlinks=False):
            return "file"
        if entry.is_dir(follow_symlinks=False):
            return "directory"
        if entry.is_symlink():
            return "symlink"
    except OSError:
        pass
    return "other"


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


class Entry:
    """One directory entry; `rel` (its path below the walk's start) is built on demand.

    `dir_fd` (the parent directory) stays open while the entry is current. `context` marks
    an ancestor of a resume position, yielded again only so a tree can be nested."""

    __slots__ = ("context", "depth", "dir_fd", "dirent", "kind", "name", "parent")

    def __init__(
        self,
        name: str,
        parent: tuple[str, ...],
        kind: Kind,
        dir_fd: int,
        dirent: os.DirEntry[str] | None = None,
        context: bool = False,
    ) -> None:
        self.name = name
        self.parent = parent
        self.kind = kind
        self.depth = len(parent) + 1
        self.dir_fd = dir_fd
        self.dirent = dirent
        self.context = context

    @property
    def rel(self) -> tuple[str, ...]:
        return (*self.parent, self.name)

    def lstat(self) -> os.stat_result | None:
        try:
            if self.dirent is not None:
                return self.dirent.stat(follow_symlinks=False)
            return os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
        except OSError:
            return None  # vanished since the scan


@dataclass
class Budget:
    """Shared limits of one walk; `stopped` says which limit ended it, if any."""

    timeout_s: float
    max_entries: int | None = None
    max_depth: int = MAX_WALK_DEPTH
    progress: Callable[[int], None] | None = None
    cancel: threading.Event | None = None
    visited: int = 0
    stopped: StopReason | None = None
    last: tuple[tuple[str, ...], str] | None = None  # (directory, name) last counted
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout_s

    def expired(self) -> bool:
        if self.stopped is None:
            if self.cancel is not None and self.cancel.is_set():
                self.stopped = "cancelled"
            elif time.monotonic() > self.deadline:
                self.stopped = "timeout"
        return self.stopped is not None

    def count(self) -> bool:
        """Count one entry; False once the walk must stop. The clock and the cancellation
        flag are read every CHECK_EVERY entries (microseconds apart), and never before the
        first entry of a call, so a continued walk makes progress however small its budget."""
        visited = self.visited
        if visited % CHECK_EVERY == 0 and visited > 0:
            if self.expired():
                return False
            if self.progress is not None and visited % PROGRESS_EVERY == 0:
                self.progress(visited)
        if self.max_entries is not None and visited >= self.max_entries:
            self.stopped = "max_entries"
            return False
        self.visited = visited + 1
        return True


@dataclass(frozen=True)
class Filters:
    """What a walk leaves out besides denied names."""

    exclude: re.Pattern[str] | None = None
    include_ignored: bool = False
    ignore_layers: tuple[ignore.IgnoreFile, ...] = ()  # from directories above the start


def compile_globs(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """Shell globs (`*`, `?`, `[...]`) as one case-sensitive regex, like `find -name`."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def scan_page(
    dir_fd: int, deny: DenyList, offset: int, limit: int, budget: Budget
) -> tuple[list[str], int]:
    """Names `offset..offset+limit` of one directory in sorted order, and how many it holds.

    Memory stays proportional to the page, not the directory, so paging reaches every
    entry of a directory of any size.
    """
    total = 0
    visible: list[str] = []
    want = offset + limit
    with os.scandir(dir_fd) as it:
        for i, entry in enumerate(it):
            if i % 4096 == 0 and budget.expired():
                break
            if deny.denies_name(entry.name, is_dir=entry.is_dir(follow_symlinks=False)):
                continue
            total += 1
            visible.append(entry.name)
            if len(visible) >= 2 * want + 4096:
                visible = heapq.nsmallest(want, visible)
    page = heapq.nsmallest(want, visible)[offset:]
    return page, total


class _Frame:
    """One open directory of a walk in progress."""

    __slots__ = ("entries", "fd", "ignore_bases", "layers", "rel", "resume")

    def __init__(
        self,
        fd: int,
        rel: tuple[str, ...],
        entries: list[os.DirEntry[str]],
        layers: tuple[ignore.IgnoreFile, ...],
        resume: tuple[str, ...] | None,
    ) -> None:
        self.fd = fd
        self.rel = rel
        self.layers = layers
        self.resume = resume  # the rest of the resume position while on its path
        self.ignore_bases = tuple(layer.base_of(rel) for layer in layers)
        start = 0
        if resume:
            start = bisect.bisect_left([e.name for e in entries], resume[0])
        # One iterator per directory: the walk leaves it to descend and picks it up again.
        self.entries: Iterator[os.DirEntry[str]] = iter(entries[start:] if start else entries)


def _list_dir(fd: int, deny: DenyList) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(fd) as it:
            entries = [
                e
                for e in it
                if not deny.denies_name(e.name, is_dir=e.is_dir(follow_symlinks=False))
            ]
    except OSError:
        return []  # unreadable directory: nothing to show
    entries.sort(key=_name)
    return entries


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def walk(
    start_fd: int,
    *,
    deny: DenyList,
    budget: Budget,
    filters: Filters | None = None,
    after: tuple[str, ...] | None = None,
    inclusive: bool = False,
    select: Callable[[str], object] | None = None,
) -> Iterator[Entry]:
    """Pre-order walk beneath `start_fd` (not closed here), sorted by name per directory.

    Yields each visible entry whose path comes after `after` in walk order (or at it,
    when `inclusive`), plus the ancestors of `after` marked `context`. Directories are
    descended right after they are yielded; descriptors are closed as the walk leaves.
    With `select`, only entries whose name it accepts are yielded (and no context):
    the others are still counted, descended, and recorded in `budget.last`.
    """
    filters = filters or Filters()
    exclude = filters.exclude
    honour_ignores = not filters.include_ignored
    seen: set[tuple[int, int]] = set()
    st = os.fstat(start_fd)
    seen.add((st.st_dev, st.st_ino))
    layers = filters.ignore_layers
    if honour_ignores:
        own = ignore.read_ignore_file(start_fd, FILE_FLAGS)
        if own is not None:
            layers = (*layers, own)
    stack = [_Frame(start_fd, (), _list_dir(start_fd, deny), layers, after or None)]
    max_depth = budget.max_depth
    count = budget.count
    git_dir = ignore.GIT_DIR
    is_ignored = ignore.is_ignored
    try:
        while stack:
            frame = stack[-1]
            dir_fd, dir_rel, dir_layers = frame.fd, frame.rel, frame.layers
            bases = frame.ignore_bases
            check_layers = honour_ignores and bool(dir_layers)
            depth = len(dir_rel) + 1
            resume, frame.resume = frame.resume, None
            descend: tuple[str, tuple[str, ...] | None] | None = None
            for dirent in frame.entries:
                name = dirent.name
                context = skip_self = False
                child_resume: tuple[str, ...] | None = None
                if resume is not None:
                    if name == resume[0]:
                        if len(resume) > 1:
                            context, child_resume = True, resume[1:]
                        else:
                            skip_self = not inclusive
                    resume = None  # every later sibling comes after the position
                if dirent.is_file(follow_symlinks=False):
                    kind: Kind = "file"
                    is_dir = False
                else:
                    kind = kind_of_entry(dirent)
                    is_dir = kind == "directory"
                if honour_ignores and (
                    name == git_dir
                    or (check_layers and is_ignored(dir_layers, bases, name, is_dir))
                ):
                    continue
                if exclude is not None and (
                    exclude.match(name) or exclude.match("/".join((*dir_rel, name)))
                ):
                    continue
                if not skip_self:
                    if not context:
                        if not count():
                            return
                        budget.last = (dir_rel, name)
                    if select is None or (not context and select(name)):
                        yield Entry(name, dir_rel, kind, dir_fd, dirent, context)
                        if budget.stopped is not None:
                            return
                if is_dir and depth < max_depth:
                    descend = (name, child_resume)
                    break
            if descend is None:
                stack.pop()
                if dir_fd != start_fd:
                    os.close(dir_fd)
                continue
            name, child_resume = descend
            child = _open_child(dir_fd, name, seen)
            if child is None:
                continue
            child_layers = dir_layers
            entries = _list_dir(child, deny)
            if honour_ignores and any(e.name == ignore.IGNORE_FILE for e in entries):
                own = ignore.read_ignore_file(child, FILE_FLAGS, strip=depth)
                if own is not None:
                    child_layers = (*child_layers, own)
            stack.append(_Frame(child, (*dir_rel, name), entries, child_layers, child_resume))
    finally:
        for frame in stack:
            if frame.fd != start_fd:
                os.close(frame.fd)


def _open_child(dir_fd: int, name: str, seen: set[tuple[int, int]]) -> int | None:
    try:
        child = os.open(name, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError:
        return None  # swapped for a symlink or removed: never followed
    try:
        cst = os.fstat(child)
    except OSError:
        os.close(child)
        return None
    key = (cst.st_dev, cst.st_ino)
    if key in seen:
        os.close(child)
        return None
    seen.add(key)
    return child


def open_file_in(dir_fd: int, name: str) -> tuple[int, int] | None:
    """Open a walked entry for reading without following a symlink: (fd, size), or None
    if it is not a regular file."""
    try:
        fd = os.open(name, FILE_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            return fd, st.st_size
    except OSError:
        pass
    with contextlib.suppress(OSError):
        os.close(fd)
    return None
