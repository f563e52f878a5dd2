"""Searching names and contents beneath a confined directory, bounded and resumable.

Content patterns run on RE2 (google-re2), whose matching time is linear in the input,
so no pattern can hang the server; a pattern too large for RE2's memory budget is
refused. Files are read on descriptors opened relative to their parent (never
re-resolved by name); a file with a NUL byte in its first 8 KiB is binary and skipped
after that one small read. Lines are counted only where a match is, or where a large
file is read in several blocks. A search stopped by a budget or by `max_results`
returns the position to resume from (cursor.py), down to the line inside a file.

Content search runs on two cores when the search worker is up (scan_worker.py): files
go in batches to the worker or are scanned here, and `_ContentRun` merges the results
in walk order, scanning a file again here whenever a budget could stop inside it, so
the answer is the one a single process gives.
"""

from __future__ import annotations

import operator
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from itertools import compress, repeat
from typing import Any, NamedTuple

import re2

from mcp_fileserver.errors import InvalidRequest
from mcp_fileserver.files.cursor import Position
from mcp_fileserver.files.denylist import DenyList
from mcp_fileserver.files.scan_worker import (
    BIG,
    BINARY,
    BINARY_PROBE,
    TEXT,
    FileResult,
    ScanWorker,
    scan_small,
)
from mcp_fileserver.files.secret_content import SecretContent
from mcp_fileserver.files.walk import (
    Budget,
    Filters,
    Kind,
    Segment,
    compile_globs,
    kind_of_entry,
    open_file_in,
    segments,
)
from mcp_fileserver.files.walk_split import QUEUED, Leftovers, SplitWalk

SCAN_BLOCK = 1 << 20  # bytes read at once from a large file
BATCH_FILES = 64  # files per batch (the worker's unit of work)
BATCH_DIRS = 32  # directories per batch (descriptors per message)
IN_FLIGHT = 3  # batches the worker holds at once; more are scanned in this process
MAX_QUEUED = 16  # batches scanned ahead of the merge at most
MAX_LINE_CHARS = 500  # a matching line is shown at most this long
RE2_MAX_MEM = 8 << 20  # compiled-pattern memory; larger patterns are refused
REPORT_S = 0.005  # a worker walking a subtree reports its matches this often
CHECK_S = 0.0005  # and looks for a STOP this often


class NameMatch(NamedTuple):  # a tuple: made once per match, a frozen dataclass cost more
    path: str  # below the search's start, components joined by `/` (no name holds one)
    kind: Kind


KIND_CODES: dict[str, Kind] = {k[0]: k for k in ("file", "directory", "symlink", "other")}


class LineMatch(NamedTuple):
    rel: tuple[str, ...]
    line: int
    text: str


@dataclass
class ContentStats:
    files_scanned: int = 0
    bytes_scanned: int = 0
    stopped: str | None = None
    resume: Position | None = None  # set when stopped: where a continuation starts


def search_names(
    start_fd: int,
    pattern: str,
    *,
    deny: DenyList,
    budget: Budget,
    filters: Filters,
    max_results: int,
    after: Position | None = None,
    worker: ScanWorker | None = None,
    leftovers: Leftovers | None = None,
    query: str = "",
) -> tuple[list[NameMatch], str | None, Position | None]:
    """Entries whose name matches the glob `pattern`, at any depth, like `find -name`.

    Returns the matches, why the search stopped early (or None) and where to resume.
    Names are matched a segment (a directory's run of entries) at a time, in C-level
    passes: a literal every match must hold (`mod` of `mod*.py`) is looked for in the
    joined names first, so most directories cost one substring search; only matches
    cost any Python. With a `worker` (free, and the budget on the real clock), subtrees
    ahead of this walk are walked there at the same time (walk_split.py); the answer is
    the one a single process gives. `leftovers` keeps what it walked ahead of this page
    for the next page of the same `query`."""
    test = _name_test(pattern)
    literal = _glob_literal(pattern)
    found: list[NameMatch] = []
    helper = None
    shareable = budget.clock is time.monotonic and budget.max_entries is None
    if worker is not None and shareable and worker.acquire(owed_at_most=QUEUED):
        spec = (pattern, deny, replace(filters, ignore_layers=()))
        helper = SplitWalk(worker, spec, budget, max_results, found.__len__, leftovers, query)
    try:
        for seg in segments(
            start_fd, deny=deny, budget=budget, filters=filters,
            after=after.rel if after else None, helper=helper,
        ):  # fmt: skip
            shared = seg.shared
            if shared is not None:
                paths, room = shared.paths, max_results - len(found)
                found.extend(
                    map(NameMatch, paths[:room], map(KIND_CODES.__getitem__, shared.kinds[:room]))
                )
                if len(paths) > room:  # stopped at the match after the room left
                    budget.visited += shared.counts[room] - shared.visited  # counted up to it
                    return found, "max_results", _after_last(found)
                continue
            hits = _hits(seg, test, literal)
            if not hits:
                continue
            names, entries = seg.names, seg.entries
            lead = "/".join(seg.rel) + "/" if seg.rel else ""
            for i in hits:
                if len(found) >= max_results:
                    return found, "max_results", _after_last(found)
                found.append(NameMatch(lead + names[i], kind_of_entry(entries[i])))
    finally:
        if helper is not None:
            helper.close()
    if budget.stopped is not None:
        if budget.last is not None:  # past the last match: the last entry counted
            parent, name = budget.last
            return found, budget.stopped, Position((*parent, name))
        return found, budget.stopped, after or Position(())
    return found, None, None


def _after_last(found: list[NameMatch]) -> Position:
    """Where the next page starts: after the last match (no name holds a `/`)."""
    return Position(tuple(found[-1].path.split("/")))


def _hits(seg: Segment, test: Callable[[list[str]], Iterator[object]], literal: str) -> list[int]:
    """Indexes of the entries of a segment whose names match."""
    names = seg.names
    if seg.context or (literal and literal not in "/".join(names)):
        return []
    return list(compress(range(len(names)), test(names)))


# A subtree walk's report to the server (walk_split.py): final, done (None: stopped at the
# match after `cap`, which the server stops at, so only the page it was for uses it), the
# matches since the last report (their paths joined by NUL, which no name holds; their
# kinds' first letters; the entries counted up to each), the entries counted, the last of
# them, and the directories entered since the last report. Strings, not a tuple per
# match: the server reads a page of matches in one piece.
Report = tuple[
    bool,
    bool | None,
    str,
    str,
    list[int],
    int,
    tuple[tuple[str, ...], str] | None,
    list[tuple[int, int]],
]


class _EnteredDirs(set[tuple[int, int]]):
    """The walk's `seen` set, also listing the directories in the order they were entered."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[tuple[int, int]] = []

    def add(self, key: tuple[int, int]) -> None:
        super().add(key)
        self.order.append(key)


def subtree_names(
    fd: int,
    spec: tuple[str, DenyList, Filters],
    task: tuple[Any, ...],
    interrupted: Callable[[], bool],
) -> Iterator[Report]:
    """The search worker's half of a shared name search: walk the subtree `fd` (not
    closed here) as `search_names` would, reporting every `REPORT_S` seconds, until it is done,
    holds more than `cap` matches, reaches the walk's deadline or `interrupted()`.

    `spec` is the search (pattern, deny-list, filters); `task` is the subtree's path, the
    `.gitignore` layers above it, what its parent's listing knew (`bases_clear`), `cap`,
    the walk's deadline (time.monotonic) and its depth limit."""
    pattern, deny, filters = spec
    rel, layers, bases_clear, cap, deadline, max_depth = task
    test = _name_test(pattern)
    literal = _glob_literal(pattern)
    clock = time.monotonic
    budget = Budget(timeout_s=deadline - clock(), max_depth=max_depth)
    entered = _EnteredDirs()
    sent = 1  # the subtree itself is entered first: the server counts it
    paths: list[str] = []
    kinds: list[str] = []
    counts: list[int] = []
    total = 0
    slice_end, check_at = clock() + REPORT_S, clock() + CHECK_S

    def report(final: bool, done: bool | None, last: tuple[tuple[str, ...], str] | None) -> Report:
        """What was found since the last report."""
        found = "\0".join(paths), "".join(kinds), counts
        return (final, done, *found, budget.visited, last, entered.order[sent:])

    for seg in segments(
        fd, deny=deny, budget=budget, filters=replace(filters, ignore_layers=layers),
        rel=rel, bases_clear=bases_clear, seen=entered,
    ):  # fmt: skip
        hits = _hits(seg, test, literal)
        if hits:
            lead = "/".join(seg.rel) + "/"
            names, entries = seg.names, seg.entries
            for i in hits:
                paths.append(lead + names[i])
                kinds.append(kind_of_entry(entries[i])[0])
                counts.append(budget.visited)
                total += 1
                if total > cap:  # the server stops in these: no need to go on
                    # Its count is its whole segment's, not up to this match: done None.
                    yield report(True, None, (seg.rel, names[i]))
                    return
        now = clock()
        if now >= check_at:  # told to stop: report where this ended, at once
            check_at = now + CHECK_S
            stop = interrupted()
            if stop or now >= slice_end:
                yield report(stop, False, budget.last)
                if stop:
                    return
                paths, kinds, counts, sent = [], [], [], len(entered.order)
                slice_end = now + REPORT_S
    yield report(True, budget.stopped is None, budget.last)


def _name_test(pattern: str) -> Callable[[list[str]], Iterator[object]]:
    """Which names match the glob, one truth value per name in C-level passes: the
    common shapes (`*.md`, `test_*`, `Makefile`) as string methods, the rest as the
    regex `fnmatch` makes (`find -name` semantics either way)."""
    star = pattern.find("*")
    if not any(c in pattern for c in "?[") and pattern.count("*") <= 1:
        if star < 0:
            return lambda names: map(operator.eq, names, repeat(pattern))
        if star == 0:
            return lambda names: map(str.endswith, names, repeat(pattern[1:]))
        if star == len(pattern) - 1:
            return lambda names: map(str.startswith, names, repeat(pattern[:-1]))
    name_re = compile_globs([pattern])
    assert name_re is not None
    return lambda names: map(name_re.match, names)


def _glob_literal(pattern: str) -> str:
    """The longest run of plain characters every name matching the glob holds (before
    any `[`, which may open a class); empty when there is none."""
    plain = pattern.split("[", 1)[0]
    return max(plain.replace("?", "*").split("*"), key=len)


class Matcher:
    """Finds the next match in a buffer: `find(data, pos)` is its start, or -1.

    A case-sensitive literal (the common search) is `bytes.find`, which needs no regex
    engine; anything else runs on RE2, called at its bytes-level entry point (the public
    `search` wraps each call in Python-level offset bookkeeping that cost more than the
    match itself on small files)."""

    __slots__ = ("_literal", "_match", "_unanchored")

    def __init__(self, literal: bytes | None, program: re2._Regexp | None) -> None:
        self._literal = literal
        self._match = program._regexp.Match if program is not None else None
        self._unanchored = re2._Anchor.UNANCHORED

    def find(self, data: bytes, pos: int) -> int:
        if self._literal is not None:
            return data.find(self._literal, pos)
        assert self._match is not None
        return int(self._match(self._unanchored, data, pos, len(data))[0][0])


def compile_content_pattern(pattern: str, *, regex: bool, case_sensitive: bool) -> Matcher:
    """A matcher over UTF-8 bytes; for regular expressions `^`/`$` match at line ends."""
    if not regex and case_sensitive:
        return Matcher(pattern.encode("utf-8", errors="surrogateescape"), None)
    options = re2.Options()
    options.max_mem = RE2_MAX_MEM
    options.case_sensitive = case_sensitive
    options.literal = not regex
    options.log_errors = False
    options.never_nl = False
    source = pattern if not regex else f"(?m){pattern}"
    try:
        return Matcher(None, re2.compile(source.encode("utf-8"), options))
    except re2.error:
        raise InvalidRequest("invalid or too complex regular expression") from None


def search_contents(
    start_fd: int,
    program: Matcher,
    *,
    deny: DenyList,
    budget: Budget,
    filters: Filters,
    glob: str | None,
    max_results: int,
    max_bytes: int,
    after: Position | None = None,
    secret: SecretContent | None = None,
    worker: ScanWorker | None = None,
    spec: tuple[str, bool, bool] | None = None,
) -> tuple[list[LineMatch], ContentStats]:
    """Matching lines (1-based numbers) in the regular, non-binary files beneath start;
    a file holding a configured secret (`secret`) is left out.

    With a `worker` (scan_worker.py; `spec` is the pattern it compiles), batches of files
    are read and matched in the worker process while this one walks and matches others;
    results are merged in walk order, so the answer and its cursor are the same."""
    run = _ContentRun(program, budget, max_results, max_bytes, secret)
    inside = after is not None and after.offset is not None
    name_re = compile_globs([glob]) if glob else None
    held = worker if worker is not None and spec is not None and worker.acquire() else None
    if held is not None:
        run.worker, run.spec = held, spec
    try:
        for seg in segments(
            start_fd, deny=deny, budget=budget, filters=filters,
            after=after.rel if after else None, inclusive=inside,
        ):  # fmt: skip
            if seg.context:
                continue
            files = [e.name for e in seg.entries if e.is_file(follow_symlinks=False)]
            if name_re is not None:
                files = list(compress(files, map(name_re.match, files)))
            if not files:
                continue
            if inside:  # the file a cursor stopped inside: continue it where it stopped
                inside = False
                assert after is not None
                if (*seg.rel, files[0]) == after.rel:
                    run.flush()
                    if run.stopped or run.exact(
                        seg.dir_fd, after.rel, after.offset or 0, after.line
                    ):
                        return run.finish(after)
                    files = files[1:]
            if files and run.add(seg.dir_fd, seg.rel, files):
                return run.finish(after)
        if not run.flush() and budget.stopped is not None:
            run.stats.stopped = budget.stopped
            if budget.last is not None:  # every entry up to the last counted is done
                parent, name = budget.last
                run.stats.resume = Position((*parent, name))
            else:
                run.stats.resume = _resume_after(run.last, after)
        return run.finish(after)
    finally:
        run.close(held)


class _Batch:
    """Files of one or more directories, scanned together; `fds` are duplicates held
    until the batch is merged (the walk closes its own as it leaves a directory)."""

    __slots__ = ("groups", "remote", "results")

    def __init__(self) -> None:
        self.groups: list[tuple[int, tuple[str, ...], list[str]]] = []
        self.results: list[list[FileResult]] | None = None
        self.remote = False

    def files(self) -> int:
        return sum(len(names) for _, _, names in self.groups)


class _ContentRun:
    """One content search: batches in walk order, scanned here or in the worker, merged
    in order under the budgets."""

    def __init__(
        self,
        program: Matcher,
        budget: Budget,
        max_results: int,
        max_bytes: int,
        secret: SecretContent | None,
    ) -> None:
        self.program = program
        self.budget = budget
        self.max_results = max_results
        self.max_bytes = max_bytes
        self.secret = secret
        self.stats = ContentStats()
        self.found: list[LineMatch] = []
        self.last: tuple[str, ...] | None = None  # the last file done with
        self.stopped = False
        self.worker: ScanWorker | None = None
        self.spec: tuple[str, bool, bool] | None = None
        self.queue: deque[_Batch] = deque()
        self.remote = 0  # batches the worker holds
        self.batch = _Batch()
        self.scanned = False  # a file was scanned: budgets may stop the next

    # -- building batches -------------------------------------------------------------

    def add(self, dir_fd: int, rel: tuple[str, ...], names: list[str]) -> bool:
        """Queue the files `names` of the directory `dir_fd`; True once the search stopped."""
        batch = self.batch
        batch.groups.append((os.dup(dir_fd), rel, names))
        if batch.files() < BATCH_FILES and len(batch.groups) < BATCH_DIRS:
            return False
        self.batch = _Batch()
        return self._dispatch(batch)

    def flush(self) -> bool:
        """Dispatch the partial batch and merge everything queued; True if stopped."""
        if self.stopped:
            return True
        if self.batch.groups:
            batch, self.batch = self.batch, _Batch()
            if self._dispatch(batch):
                return True
        while self.queue:
            if self._merge_head():
                return True
        return False

    def _dispatch(self, batch: _Batch) -> bool:
        # Merge what is ready first, so the worker's count of batches is current.
        while self.queue and (self.queue[0].results is not None or self._reply_ready()):
            if self._merge_head():
                self._close_batch(batch)
                return True
        worker = self.worker
        if worker is not None and self.remote < IN_FLIGHT:
            try:
                assert self.spec is not None
                cap = self.max_results + 1
                worker.send(self.spec, cap, [(fd, names) for fd, _, names in batch.groups])
                batch.remote = True
                self.remote += 1
            except OSError:
                self._worker_lost()
        if not batch.remote:
            self._scan_here(batch)
        self.queue.append(batch)
        while self.queue:
            head = self.queue[0]
            ready = head.results is not None or self._reply_ready()
            if not ready and len(self.queue) < MAX_QUEUED:
                return False
            if self._merge_head():
                return True
        return False

    def _reply_ready(self) -> bool:
        if self.worker is None:
            return False
        try:
            return self.worker.poll()
        except (OSError, EOFError):
            self._worker_lost()
            return True  # the head was scanned here instead

    def _scan_here(self, batch: _Batch) -> None:
        """Scan a batch in this process; stops early (fewer results) when the budget ends."""
        results: list[list[FileResult]] = []
        program, cap, secret, budget = self.program, self.max_results + 1, self.secret, self.budget
        for fd, _, names in batch.groups:
            group: list[FileResult] = []
            results.append(group)
            for name in names:
                if self.scanned and budget.expired():
                    batch.results = results
                    return
                group.append(scan_small(fd, name, program, cap, secret))
                self.scanned = True
        batch.results = results

    def _worker_lost(self) -> None:
        """The worker died: what it owed is scanned here (the descriptors are held)."""
        self.worker = None
        self.remote = 0
        for batch in self.queue:
            if batch.remote and batch.results is None:
                batch.remote = False
                self._scan_here(batch)

    # -- merging in order -------------------------------------------------------------

    def _merge_head(self) -> bool:
        """Merge the oldest batch, waiting for its reply if the worker holds it."""
        batch = self.queue[0]
        if batch.results is None:
            assert self.worker is not None
            try:
                batch.results = self.worker.receive_batch()
                self.remote -= 1
            except (OSError, EOFError):
                self._worker_lost()
        self.queue.popleft()
        try:
            return self._merge(batch)
        finally:
            for fd, _, _ in batch.groups:
                os.close(fd)

    def _merge(self, batch: _Batch) -> bool:
        """Apply a batch's results in order; a file whose result would cross a limit (or
        that is large) is scanned again here by `exact`, which stops where one process
        would. True once the search stopped."""
        assert batch.results is not None
        stats, found, budget = self.stats, self.found, self.budget
        max_results, max_bytes = self.max_results, self.max_bytes
        for (fd, rel_dir, names), results in zip(batch.groups, batch.results, strict=False):
            if stats.bytes_scanned > 0 and budget.expired():
                return self._stop(budget.stopped or "timeout")
            for i, (status, size, matches) in enumerate(results):
                if status == TEXT:
                    if not matches and stats.bytes_scanned + size <= max_bytes:
                        stats.bytes_scanned += size
                        stats.files_scanned += 1
                        continue
                elif status == BINARY:
                    if stats.bytes_scanned + size <= max_bytes:
                        stats.bytes_scanned += size
                        continue
                elif status != BIG:
                    continue  # empty, not a regular file, or holding a secret: nothing read
                if i:
                    self.last = (*rel_dir, names[i - 1])
                if stats.bytes_scanned >= max_bytes:
                    return self._stop("max_bytes")
                rel = (*rel_dir, names[i])
                if (
                    status == BIG
                    or stats.bytes_scanned + size > max_bytes
                    or len(found) + len(matches) > max_results
                ):
                    if self.exact(fd, rel):
                        return True
                    continue
                stats.bytes_scanned += size
                stats.files_scanned += 1
                found.extend(LineMatch(rel, line, text) for line, _, text in matches)
            if results:
                self.last = (*rel_dir, names[len(results) - 1])
            if len(results) < len(names):  # scanned here and stopped by the budget
                return self._stop(budget.stopped or "timeout")
        if len(batch.results) < len(batch.groups):
            return self._stop(budget.stopped or "timeout")
        return False

    def exact(self, dir_fd: int, rel: tuple[str, ...], start: int = 0, line: int = 1) -> bool:
        """Scan one file here, block by block under every budget, exactly as a search in
        one process does; True if a limit stopped the search inside it."""
        opened = open_file_in(dir_fd, rel[-1])
        if opened is not None:
            fd, size = opened
            try:
                if self.secret and self.secret.in_file(fd):
                    self.last = rel
                    return False
                stop = _scan_file(
                    fd, size, rel, self.program, self.found, self.max_results, self.stats,
                    self.budget, self.max_bytes, start, line,
                )  # fmt: skip
            finally:
                os.close(fd)
            self.scanned = True
            if stop is not None:
                self.stats.resume = stop
                self.stopped = True
                return True
        self.last = rel
        return False

    def _stop(self, reason: str) -> bool:
        self.stats.stopped = reason
        self.stats.resume = Position(self.last) if self.last is not None else None
        self.stopped = True
        return True

    def finish(self, after: Position | None) -> tuple[list[LineMatch], ContentStats]:
        if self.stats.stopped is not None and self.stats.resume is None:
            self.stats.resume = after if after is not None else Position(())
        return self.found, self.stats

    @staticmethod
    def _close_batch(batch: _Batch) -> None:
        for fd, _, _ in batch.groups:
            os.close(fd)
        batch.groups.clear()

    def close(self, held: ScanWorker | None) -> None:
        """Close what was never merged; the replies of batches the worker still holds are
        read and dropped by the next search that takes it."""
        for batch in (*self.queue, self.batch):
            for fd, _, _ in batch.groups:
                os.close(fd)
        self.queue.clear()
        self.batch = _Batch()
        if held is not None:
            held.release(self.remote if self.worker is not None else 0)


def _resume_after(last: tuple[str, ...] | None, after: Position | None) -> Position:
    """Where a stopped call continues: after its last entry, or where it began."""
    if last is not None:
        return Position(last)
    return after if after is not None else Position(())


def search_one_file(
    fd: int, size: int, program: Matcher, *, budget: Budget, max_results: int,
    max_bytes: int, after: Position | None = None,
) -> tuple[list[LineMatch], ContentStats]:  # fmt: skip
    """Matching lines of one already-opened regular file."""
    stats = ContentStats()
    found: list[LineMatch] = []
    start, line = (after.offset or 0, after.line) if after is not None else (0, 1)
    stop = _scan_file(
        fd, size, (), program, found, max_results, stats, budget, max_bytes, start, line
    )
    stats.resume = stop
    return found, stats


def _scan_file(
    fd: int,
    size: int,
    rel: tuple[str, ...],
    program: Matcher,
    found: list[LineMatch],
    max_results: int,
    stats: ContentStats,
    budget: Budget,
    max_bytes: int,
    offset: int,
    line: int,
) -> Position | None:
    """Append the matches of one file from byte `offset` (the start of line `line`);
    return where to resume if a limit stopped the scan inside it.

    The first read of a file is small (the binary probe); later reads are large blocks.
    The budgets are checked before each read, except that the first file of a call
    always gets one read matched, so every continued call makes progress."""
    pos = offset
    carry = b""
    progressed = stats.bytes_scanned > 0
    while True:
        if pos >= size:
            start = pos - len(carry)
            return _match_chunk(carry, start, line, rel, program, found, max_results, stats)
        room = max_bytes - stats.bytes_scanned
        if progressed and (budget.expired() or room <= 0):
            stats.stopped = budget.stopped or "max_bytes"
            return Position(rel, pos - len(carry), line)
        want = min(BINARY_PROBE if pos == 0 else SCAN_BLOCK, size - pos)
        block = os.pread(fd, min(want, room) if room > 0 else want, pos)
        if not block:  # the file shrank: what is left is the last line
            size = pos
            continue
        if pos == 0:
            if b"\0" in block:
                stats.bytes_scanned += len(block)
                return None  # binary
            stats.files_scanned += 1
        pos += len(block)
        stats.bytes_scanned += len(block)
        data = carry + block if carry else block
        if pos >= size or len(data) < SCAN_BLOCK:
            carry = data  # matched whole: at the end of the file, or once a block is full
            continue
        end = data.rfind(b"\n") + 1
        if end == 0:
            end = len(data)  # a line longer than a block is matched in pieces
        chunk_start = pos - len(data)
        stop = _match_chunk(data[:end], chunk_start, line, rel, program, found, max_results, stats)
        if stop is not None:
            return stop
        progressed = True
        line += data.count(b"\n", 0, end)
        carry = data[end:]


def line_matches(data: bytes, program: Matcher, cap: int) -> list[tuple[int, int, str]]:
    """(line number, offset of the line, line text) of at most `cap` matching lines of a
    whole file's bytes, as `_match_chunk` finds them."""
    find = program.find
    mstart = find(data, 0)
    out: list[tuple[int, int, str]] = []
    line_no, counted_to, size = 1, 0, len(data)
    while mstart >= 0 and len(out) < cap:
        start = data.rfind(b"\n", 0, mstart) + 1
        end = data.find(b"\n", mstart)
        end = size if end < 0 else end
        line_no += data.count(b"\n", counted_to, start)
        counted_to = start
        text = data[start:end].rstrip(b"\r").decode("utf-8", errors="replace")
        out.append((line_no, start, text[:MAX_LINE_CHARS]))
        if end + 1 >= size:
            break
        mstart = find(data, end + 1)
    return out


def _match_chunk(
    chunk: bytes,
    chunk_start: int,
    first_line: int,
    rel: tuple[str, ...],
    program: Matcher,
    found: list[LineMatch],
    max_results: int,
    stats: ContentStats,
) -> Position | None:
    """Append one result per matching line of `chunk` (whole lines from `chunk_start`,
    the first numbered `first_line`); past `max_results`, the position of the next one."""
    if not chunk:
        return None
    find = program.find
    mstart = find(chunk, 0)
    if mstart < 0:
        return None
    line_no = first_line
    counted_to = 0
    size = len(chunk)
    while mstart >= 0:
        start = chunk.rfind(b"\n", 0, mstart) + 1
        end = chunk.find(b"\n", mstart)
        end = size if end < 0 else end
        line_no += chunk.count(b"\n", counted_to, start)
        counted_to = start
        if len(found) >= max_results:
            stats.stopped = "max_results"
            return Position(rel, chunk_start + start, line_no)
        text = chunk[start:end].rstrip(b"\r").decode("utf-8", errors="replace")
        found.append(LineMatch(rel, line_no, text[:MAX_LINE_CHARS]))
        if end + 1 >= size:
            break
        mstart = find(chunk, end + 1)
    return None
