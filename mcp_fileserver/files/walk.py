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
entries), checks a cancellation flag per segment (at most SEGMENT_MAX entries of one
directory), and reports why it stopped.

A directory is listed and filtered at once (`_list_dir`): the deny-list and `.gitignore`
prefilters are one regex search over its joined names each, so per-entry Python runs
only for the rare names a rule may match (see denylist.py, ignore.py).
"""

from __future__ import annotations

import bisect
import contextlib
import fnmatch
import heapq
import operator
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import compress
from typing import Literal, NamedTuple, Protocol

from mcp_fileserver.files import ignore
from mcp_fileserver.files.confine import DIR_FLAGS, FILE_FLAGS
from mcp_fileserver.files.denylist import DenyList

Kind = Literal["file", "directory", "symlink", "other"]
StopReason = Literal["max_entries", "max_results", "max_bytes", "timeout", "cancelled"]

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
    clock: Callable[[], float] = time.monotonic  # tests inject a clock to stop anywhere
    visited: int = 0
    stopped: StopReason | None = None
    last: tuple[tuple[str, ...], str] | None = None  # (directory, name) last counted
    deadline: float = field(init=False)
    _next_progress: int = field(init=False, default=PROGRESS_EVERY)

    def __post_init__(self) -> None:
        self.deadline = self.clock() + self.timeout_s

    def expired(self) -> bool:
        if self.stopped is None:
            if self.cancel is not None and self.cancel.is_set():
                self.stopped = "cancelled"
            elif self.clock() > self.deadline:
                self.stopped = "timeout"
        return self.stopped is not None

    def take(self, wanted: int) -> int:
        """Count up to `wanted` entries at once; how many the walk may hand over (0: stop).

        The clock and the cancellation flag are read on every call (a segment of entries
        apart), never before the first entry of a call, so a continued walk makes
        progress however small its budget."""
        visited = self.visited
        if visited > 0 and self.expired():
            return 0
        if self.max_entries is not None:
            room = self.max_entries - visited
            if room <= 0:
                self.stopped = "max_entries"
                return 0
            wanted = min(wanted, room)
        self.visited = visited = visited + wanted
        if self.progress is not None and visited >= self._next_progress:
            self._next_progress = visited + PROGRESS_EVERY
            self.progress(visited)
        return wanted

    def absorb(self, count: int, last: tuple[tuple[str, ...], str]) -> None:
        """Count `count` entries another process walked (walk_split.py), `last` the last
        of them; the next `take` reads the clock and the cancellation flag as usual."""
        self.visited += count
        self.last = last
        if self.progress is not None and self.visited >= self._next_progress:
            self._next_progress = self.visited + PROGRESS_EVERY
            self.progress(self.visited)


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


NAME = operator.attrgetter("name")
_IS_DIR = operator.methodcaller("is_dir", follow_symlinks=False)
SEGMENT_MAX = 1024  # entries of one directory handed over at once (then the budget is read)


class Segment:
    """A run of consecutive visible entries of one directory, in walk order.

    A segment ends at a subdirectory (descended right after the segment is consumed), at
    the end of its directory, or after SEGMENT_MAX entries, so consumers handle a whole
    directory's files in bulk rather than one generator step per entry. `dir_fd` stays
    open while the segment is current. A `context` segment holds one ancestor of a
    resume position, shown again (uncounted) only so that a tree can be nested. A `shared`
    segment (only with a `Helper`) carries the name matches another process found in a
    whole subtree of `rel` instead of entries (walk_split.py)."""

    __slots__ = ("context", "depth", "dir_fd", "entries", "names", "rel", "shared")

    def __init__(
        self,
        dir_fd: int,
        rel: tuple[str, ...],
        entries: list[os.DirEntry[str]],
        names: list[str],
        context: bool,
        shared: Shared | None = None,
    ) -> None:
        self.dir_fd = dir_fd
        self.rel = rel
        self.entries = entries
        self.names = names  # of the entries
        self.context = context
        self.depth = len(rel) + 1  # of the entries
        self.shared = shared


class Shared(NamedTuple):
    """What another process found walking a subtree (or the first part of one) by the
    same rules: name matches (their paths below the walk's start joined by `/`, the
    first letters of their kinds, the entries counted up to each), the entries it
    counted, the last of them, and whether it walked the whole subtree."""

    paths: list[str]
    kinds: str
    counts: list[int]
    visited: int
    last: tuple[tuple[str, ...], str] | None
    done: bool


class Helper(Protocol):
    """A second process sharing one walk (walk_split.py): between directories `pump`
    hands it subtrees of open frames (recorded in `Frame.delegated`); `reached` gives back
    what it found in one when the walk gets there: None walks it here. `listed` sees
    each frame as it opens (subtrees walked for an earlier page may be marked there)."""

    def listed(self, frame: Frame) -> None: ...

    def pump(self, stack: list[Frame]) -> None: ...

    def reached(self, frame: Frame, index: int, seen: set[tuple[int, int]]) -> Shared | None: ...


# A directory's visible entries sorted by name, their names, which are directories, the
# `.gitignore` layers that apply beneath it, and the names some of those layers (but the
# directory's own) matched: a subdirectory not named there has no layer matching its path.
Listed = tuple[
    list[os.DirEntry[str]], list[str], list[bool], tuple[ignore.IgnoreFile, ...], frozenset[str]
]
NO_NAMES: frozenset[str] = frozenset()


class Frame:
    """One open directory of a walk in progress: its visible entries, sorted, how far the
    walk has got (`pos`) and which subdirectories a `Helper` walks (index: its handle)."""

    __slots__ = (
        "context", "delegated", "dirs", "entries", "fd", "isdir", "layers", "matched", "names",
        "pos", "rel", "resume",
    )  # fmt: skip

    def __init__(
        self,
        fd: int,
        rel: tuple[str, ...],
        listed: Listed,
        resume: tuple[str, ...] | None,
        inclusive: bool,
    ) -> None:
        self.fd = fd
        self.rel = rel
        self.entries, self.names, self.isdir, self.layers, self.matched = listed
        self.dirs = list(compress(range(len(self.isdir)), self.isdir))  # their indexes
        self.pos = 0
        self.delegated: dict[int, object] = {}
        self.context = -1  # index of the resume position's ancestor in this directory
        self.resume: tuple[str, ...] | None = None  # below that ancestor
        if resume:
            names = self.names
            i = bisect.bisect_left(names, resume[0])
            self.pos = i
            at = i < len(names) and names[i] == resume[0]
            if at and (len(resume) > 1 or not inclusive):
                self.pos = i + 1
                if self.isdir[i]:  # its subtree comes next in pre-order: enter it
                    self.context, self.resume = i, resume[1:]


def _list_dir(
    fd: int,
    rel: tuple[str, ...],
    deny: DenyList,
    filters: Filters,
    layers: tuple[ignore.IgnoreFile, ...],
    bases_clear: bool = False,
) -> Listed:
    """The visible entries of one directory sorted by name, their names, which are
    directories, the `.gitignore` layers that apply beneath it (its own file added) and
    the names any of those layers matched (see `Listed`).

    Each filter runs over the whole directory at once (C-level passes over the names);
    only the few names some rule may match are then decided one by one. `bases_clear`:
    the parent's listing found no layer matching this directory (`ignore.candidates`)."""
    try:
        with os.scandir(fd) as it:
            entries = list(it)
    except OSError:
        return [], [], [], layers, NO_NAMES  # unreadable directory: nothing to show
    if not entries:
        return entries, [], [], layers, NO_NAMES
    entries.sort(key=NAME)
    names = list(map(NAME, entries))
    isdir = list(map(_IS_DIR, entries))
    drop = [i for i in deny.candidates(names) if deny.denies_name(names[i], is_dir=isdir[i])]
    matched = NO_NAMES
    if not filters.include_ignored:
        if ignore.GIT_DIR in names:
            drop.append(names.index(ignore.GIT_DIR))
        if ignore.IGNORE_FILE in names:
            own = ignore.read_ignore_file(fd, FILE_FLAGS, strip=len(rel))
            if own is not None:
                layers = (*layers, own)
        if layers:
            bases = [layer.base_of(rel) for layer in layers]
            # A layer added here has an empty base, so "no layer matches a base" holds
            # for it too.
            found = ignore.candidates(layers, bases, names, isdir, bases_clear=bases_clear)
            if found:
                matched = frozenset(names[i] for i in found)
                drop.extend(
                    i for i in found if ignore.is_ignored(layers, bases, names[i], isdir[i])
                )
    exclude = filters.exclude
    if exclude is not None:
        lead = "/".join(rel) + "/" if rel else ""
        drop.extend(
            i
            for i, name in enumerate(names)
            if exclude.match(name) or (lead and exclude.match(lead + name))
        )
    if drop:
        gone = set(drop)
        keep = [i for i in range(len(entries)) if i not in gone]
        entries = [entries[i] for i in keep]
        names = [names[i] for i in keep]
        isdir = [isdir[i] for i in keep]
    return entries, names, isdir, layers, matched


def segments(
    start_fd: int,
    *,
    deny: DenyList,
    budget: Budget,
    filters: Filters | None = None,
    after: tuple[str, ...] | None = None,
    inclusive: bool = False,
    rel: tuple[str, ...] = (),
    bases_clear: bool = False,
    seen: set[tuple[int, int]] | None = None,
    helper: Helper | None = None,
) -> Iterator[Segment]:
    """Pre-order walk beneath `start_fd` (not closed here), sorted by name per directory,
    as segments (see `Segment`).

    Yields the visible entries whose path comes after `after` in walk order (or at it,
    when `inclusive`) and, right before the first of them, the ancestors it shares with
    `after` as context segments. Walk order is pre-order: right after a directory comes
    its first entry, so a position naming a directory resumes inside it. A directory is
    descended right after the segment it ends is consumed; descriptors are closed as the
    walk leaves. Entries are counted by the budget a segment at a time (a segment is cut
    to what `max_entries` leaves); `budget.last` is the last entry counted, and every
    entry up to it in walk order has been yielded.

    A walk of a subtree on another's behalf (walk_split.py) starts at the subtree: `rel`
    is its path below the first walk's start (paths, depths and `.gitignore` bases are
    those of the first walk), `bases_clear` what its parent's listing knew (`_list_dir`),
    and `seen` collects the directories it enters. With a `helper`, subtrees are walked
    by another process and come back as `shared` segments.
    """
    filters = filters or Filters()
    seen = set() if seen is None else seen
    st = os.fstat(start_fd)
    seen.add((st.st_dev, st.st_ino))
    listed = _list_dir(start_fd, rel, deny, filters, filters.ignore_layers, bases_clear)
    stack = [Frame(start_fd, rel, listed, after or None, inclusive)]
    if helper is not None:
        helper.listed(stack[0])
    max_depth = budget.max_depth
    take = budget.take
    pending: list[Segment] = []  # ancestors of `after`, shown if an entry below them follows
    try:
        while stack:
            frame = stack[-1]
            depth = len(frame.rel) + 1
            child: tuple[str, tuple[str, ...] | None] | None = None
            if frame.context >= 0:  # an ancestor of the resume position: enter it
                entry = frame.entries[frame.context]
                frame.context = -1
                if depth < max_depth:
                    pending.append(Segment(frame.fd, frame.rel, [entry], [entry.name], True))
                    child = (entry.name, frame.resume)
            else:
                pos, entries = frame.pos, frame.entries
                if pos >= len(entries):
                    stack.pop()
                    if frame.fd != start_fd:
                        os.close(frame.fd)
                    continue
                end = min(pos + SEGMENT_MAX, len(entries))
                dirs = frame.dirs  # a segment ends at the directory's next subdirectory
                nxt = bisect.bisect_left(dirs, pos)
                if nxt < len(dirs) and dirs[nxt] < end:
                    end = dirs[nxt] + 1
                allowed = take(end - pos)
                if allowed <= 0:
                    return
                last = pos + allowed
                names = frame.names
                budget.last = (frame.rel, names[last - 1])
                frame.pos = last
                if pending:  # those still open (on the stack) are ancestors of this entry
                    yield from _ancestors(pending, frame.rel)
                    pending.clear()
                yield Segment(frame.fd, frame.rel, entries[pos:last], names[pos:last], False)
                if budget.stopped is not None:
                    return
                if frame.isdir[last - 1] and depth < max_depth:
                    child = (entries[last - 1].name, None)
                    if helper is not None and last - 1 in frame.delegated:
                        shared = helper.reached(frame, last - 1, seen)
                        if shared is not None:
                            if shared.last is not None:
                                budget.absorb(shared.visited, shared.last)
                                yield Segment(frame.fd, frame.rel, [], [], False, shared)
                            if shared.done:
                                continue
                            child = (child[0], _below(shared.last, (*frame.rel, child[0])))
            if child is None:
                continue
            name, resume = child
            if helper is not None:
                helper.pump(stack)
            # An ancestor of a resume position is entered again even when seen (by
            # another process walking the first part of its subtree).
            fd = _open_child(frame.fd, name, seen, again=resume is not None)
            if fd is None:
                continue
            rel = (*frame.rel, name)
            listed = _list_dir(fd, rel, deny, filters, frame.layers, name not in frame.matched)
            if resume or True in listed[2]:
                stack.append(Frame(fd, rel, listed, resume, inclusive))
                if helper is not None:
                    helper.listed(stack[-1])
                continue
            try:  # no subdirectory (most directories): its entries at once, without a frame
                entries, names = listed[0], listed[1]
                pos, count = 0, len(entries)
                while pos < count:
                    allowed = take(min(count - pos, SEGMENT_MAX))
                    if allowed <= 0:
                        return
                    last = pos + allowed
                    budget.last = (rel, names[last - 1])
                    if pending:
                        yield from _ancestors(pending, rel)
                        pending.clear()
                    if pos == 0 and last == count:
                        yield Segment(fd, rel, entries, names, False)
                    else:
                        yield Segment(fd, rel, entries[pos:last], names[pos:last], False)
                    if budget.stopped is not None:
                        return
                    pos = last
            finally:
                os.close(fd)
    finally:
        for frame in stack:
            if frame.fd != start_fd:
                os.close(frame.fd)


def _below(last: tuple[tuple[str, ...], str] | None, rel: tuple[str, ...]) -> tuple[str, ...]:
    """The position `last` (the last entry another process counted in the directory `rel`)
    relative to `rel`: where this walk resumes; empty (its first entry) when it is None."""
    if last is None:
        return ()
    path = (*last[0], last[1])
    return path[len(rel) :]


def _ancestors(pending: list[Segment], rel: tuple[str, ...]) -> Iterator[Segment]:
    """The context segments of `pending` whose entry is an ancestor of the directory `rel`."""
    for seg in pending:
        depth = len(seg.rel)
        if rel[:depth] == seg.rel and rel[depth : depth + 1] == (seg.entries[0].name,):
            yield seg


def walk(
    start_fd: int,
    *,
    deny: DenyList,
    budget: Budget,
    filters: Filters | None = None,
    after: tuple[str, ...] | None = None,
    inclusive: bool = False,
) -> Iterator[Entry]:
    """`segments`, one entry at a time (for callers that need no speed)."""
    for seg in segments(
        start_fd, deny=deny, budget=budget, filters=filters, after=after, inclusive=inclusive
    ):
        for dirent in seg.entries:
            yield Entry(
                dirent.name, seg.rel, kind_of_entry(dirent), seg.dir_fd, dirent, seg.context
            )


def _open_child(
    dir_fd: int, name: str, seen: set[tuple[int, int]], again: bool = False
) -> int | None:
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
    if key in seen and not again:
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
