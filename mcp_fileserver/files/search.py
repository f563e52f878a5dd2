"""Searching names and contents beneath a confined directory, with hard bounds.

Content patterns run on RE2 (google-re2), whose matching time is linear in the input,
so no pattern can hang the server; a pattern too large for RE2's memory budget is
refused. Files are scanned in blocks on descriptors opened relative to their parent
(never re-resolved by name), binary files (NUL in the first block) are skipped, and the
total bytes scanned, results and time are bounded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import re2

from mcp_fileserver.errors import InvalidRequest
from mcp_fileserver.files.denylist import DenyList
from mcp_fileserver.files.walk import Budget, compile_globs, open_file_in, walk

SCAN_BLOCK = 1 << 20
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


def search_names(
    start_fd: int,
    pattern: str,
    *,
    deny: DenyList,
    budget: Budget,
    exclude: list[str],
    max_results: int,
) -> tuple[list[NameMatch], str | None]:
    """Entries whose name matches the glob `pattern`, at any depth, like `find -name`."""
    name_re = compile_globs([pattern])
    assert name_re is not None
    found: list[NameMatch] = []
    for entry in walk(start_fd, deny=deny, budget=budget, exclude=compile_globs(exclude)):
        if name_re.match(entry.name):
            if len(found) >= max_results:
                return found, "max_results"
            found.append(NameMatch(entry.rel, entry.kind))
    return found, budget.stopped


def compile_content_pattern(pattern: str, *, regex: bool, case_sensitive: bool) -> re2._Regexp:
    """An RE2 program over UTF-8 bytes; `^`/`$` match at line boundaries."""
    options = re2.Options()
    options.max_mem = RE2_MAX_MEM
    options.case_sensitive = case_sensitive
    options.literal = not regex
    options.log_errors = False
    options.never_nl = False
    source = pattern if not regex else f"(?m){pattern}"
    try:
        return re2.compile(source.encode("utf-8"), options)
    except re2.error:
        raise InvalidRequest("invalid or too complex regular expression") from None


def search_contents(
    start_fd: int,
    program: re2._Regexp,
    *,
    deny: DenyList,
    budget: Budget,
    glob: str | None,
    max_results: int,
    max_bytes: int,
    skip: Callable[[int], bool] | None = None,
) -> tuple[list[LineMatch], ContentStats]:
    """Matching lines (1-based numbers) in the regular, non-binary files beneath start;
    a file for which `skip(fd)` is true is left out (one holding a secret)."""
    name_re = compile_globs([glob]) if glob else None
    stats = ContentStats()
    found: list[LineMatch] = []
    for entry in walk(start_fd, deny=deny, budget=budget):
        if entry.kind != "file" or (name_re is not None and not name_re.match(entry.name)):
            continue
        fd = open_file_in(entry.dir_fd, entry.name)
        if fd is None:
            continue
        try:
            if skip is not None and skip(fd):
                continue
            if _collect(
                _scan_fd(fd, entry.rel, program, stats, budget, max_bytes),
                found,
                max_results,
                stats,
            ):
                return found, stats
        finally:
            os.close(fd)
    stats.stopped = stats.stopped or budget.stopped
    return found, stats


def search_one_file(
    fd: int, program: re2._Regexp, *, budget: Budget, max_results: int, max_bytes: int
) -> tuple[list[LineMatch], ContentStats]:
    """Matching lines of one already-opened regular file."""
    stats = ContentStats()
    found: list[LineMatch] = []
    _collect(_scan_fd(fd, (), program, stats, budget, max_bytes), found, max_results, stats)
    return found, stats


def _collect(
    matches: Iterator[LineMatch], found: list[LineMatch], max_results: int, stats: ContentStats
) -> bool:
    """Append matches; True once the search must stop."""
    for match in matches:
        if len(found) >= max_results:
            stats.stopped = "max_results"
            return True
        found.append(match)
    return stats.stopped is not None


def _scan_fd(
    fd: int,
    rel: tuple[str, ...],
    program: re2._Regexp,
    stats: ContentStats,
    budget: Budget,
    max_bytes: int,
) -> Iterator[LineMatch]:
    stats.files_scanned += 1
    offset = 0
    line_no = 1  # number of the first line in `carry + block`
    carry = b""
    while True:
        if budget.expired():
            stats.stopped = "timeout"
            return
        room = max_bytes - stats.bytes_scanned
        if room <= 0:
            stats.stopped = "max_bytes"
            return
        block = os.pread(fd, min(SCAN_BLOCK, room), offset)
        if offset == 0 and b"\0" in block[:8192]:
            return  # binary
        if not block:
            if carry:
                yield from _matches(rel, program, carry, line_no)
            return
        offset += len(block)
        stats.bytes_scanned += len(block)
        data = carry + block
        end = data.rfind(b"\n") + 1
        if end == 0 and len(data) < SCAN_BLOCK:
            carry = data  # one long line so far; keep reading
            continue
        if end == 0:
            end = len(data)  # a line longer than a block is matched in pieces
        yield from _matches(rel, program, data[:end], line_no)
        line_no += data.count(b"\n", 0, end)
        carry = data[end:]


def _matches(
    rel: tuple[str, ...], program: re2._Regexp, chunk: bytes, first_line: int
) -> Iterator[LineMatch]:
    """One result per matching line of `chunk` (complete lines, numbered from first_line)."""
    pos = 0
    line_no = first_line
    counted_to = 0
    while pos < len(chunk):
        m = program.search(chunk, pos)
        if m is None:
            return
        start = chunk.rfind(b"\n", 0, m.start()) + 1
        end = chunk.find(b"\n", m.start())
        end = len(chunk) if end < 0 else end
        line_no += chunk.count(b"\n", counted_to, start)
        counted_to = start
        text = chunk[start:end].rstrip(b"\r").decode("utf-8", errors="replace")
        yield LineMatch(rel, line_no, text[:MAX_LINE_CHARS])
        pos = end + 1
