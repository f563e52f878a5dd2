"""Searching names and contents beneath a confined directory, bounded and resumable.

Content patterns run on RE2 (google-re2), whose matching time is linear in the input,
so no pattern can hang the server; a pattern too large for RE2's memory budget is
refused. Files are read on descriptors opened relative to their parent (never
re-resolved by name); a file with a NUL byte in its first 8 KiB is binary and skipped
after that one small read. Lines are counted only where a match is, or where a large
file is read in several blocks. A search stopped by a budget or by `max_results`
returns the position to resume from (cursor.py), down to the line inside a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from itertools import compress

import re2

from mcp_fileserver.errors import InvalidRequest
from mcp_fileserver.files.cursor import Position
from mcp_fileserver.files.denylist import DenyList
from mcp_fileserver.files.walk import (
    NAME,
    Budget,
    Entry,
    Filters,
    compile_globs,
    kind_of_entry,
    open_file_in,
    segments,
    walk,
)

SCAN_BLOCK = 1 << 20  # bytes read at once from a large file
BINARY_PROBE = 8192  # a NUL byte in this many first bytes marks a file binary
MAX_LINE_CHARS = 500  # a matching line is shown at most this long
RE2_MAX_MEM = 8 << 20  # compiled-pattern memory; larger patterns are refused


@dataclass(frozen=True)
class NameMatch:
    rel: tuple[str, ...]
    kind: str


@dataclass(frozen=True)
class LineMatch:
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
) -> tuple[list[NameMatch], str | None, Position | None]:
    """Entries whose name matches the glob `pattern`, at any depth, like `find -name`.

    Returns the matches, why the search stopped early (or None) and where to resume.
    Names are matched a segment (a directory's run of entries) at a time, in one C-level
    pass: only matches cost any Python."""
    name_re = compile_globs([pattern])
    assert name_re is not None
    match = name_re.match
    found: list[NameMatch] = []
    last: tuple[str, ...] | None = None  # the last match
    for seg in segments(
        start_fd, deny=deny, budget=budget, filters=filters, after=after.rel if after else None
    ):
        if seg.context:
            continue
        hits = list(compress(seg.entries, map(match, map(NAME, seg.entries))))
        if not hits:
            continue
        rel = seg.rel
        for entry in hits:
            if len(found) >= max_results:
                assert last is not None
                return found, "max_results", Position(last)
            last = (*rel, entry.name)
            found.append(NameMatch(last, kind_of_entry(entry)))
    if budget.stopped is not None:
        if budget.last is not None:  # past the last match: the last entry counted
            parent, name = budget.last
            return found, budget.stopped, Position((*parent, name))
        return found, budget.stopped, after or Position(())
    return found, None, None


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
    skip: Callable[[int], bool] | None = None,
) -> tuple[list[LineMatch], ContentStats]:
    """Matching lines (1-based numbers) in the regular, non-binary files beneath start;
    a file for which `skip(fd)` is true is left out (one holding a secret)."""
    name_re = compile_globs([glob]) if glob else None
    stats = ContentStats()
    found: list[LineMatch] = []
    last: Entry | None = None  # the last entry done with
    inside = after is not None and after.offset is not None
    entries = walk(
        start_fd,
        deny=deny,
        budget=budget,
        filters=filters,
        after=after.rel if after else None,
        inclusive=inside,
    )
    for entry in entries:
        if entry.context:
            continue
        start, line = 0, 1
        if inside and after is not None and entry.rel == after.rel:
            start, line = after.offset or 0, after.line
        inside = False
        if entry.kind == "file" and (name_re is None or name_re.match(entry.name)):
            rel = entry.rel
            if stats.bytes_scanned >= max_bytes:
                stats.stopped = "max_bytes"
                stats.resume = _resume_after(last, after)
                return found, stats
            opened = open_file_in(entry.dir_fd, entry.name)
            if opened is not None:
                fd, size = opened
                try:
                    if skip is not None and skip(fd):
                        last = entry
                        continue
                    stop = _scan_file(
                        fd, size, rel, program, found, max_results, stats, budget,
                        max_bytes, start, line,
                    )  # fmt: skip
                finally:
                    os.close(fd)
                if stop is not None:
                    stats.resume = stop
                    return found, stats
        last = entry
    if budget.stopped is not None:
        stats.stopped = budget.stopped
        stats.resume = _resume_after(last, after)
    return found, stats


def _resume_after(last: Entry | None, after: Position | None) -> Position:
    """Where a stopped call continues: after its last entry, or where it began."""
    if last is not None:
        return Position(last.rel)
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
