"""Reading an already-confined regular file: whole, head or tail, within a byte cap.

Every function takes a descriptor from `Confinement.open(want="file")` and reads at most
`max_bytes` (+ one block for the line scan), so an 8 GiB file costs what a small one
does: `head` reads forward until it has its lines, `tail` seeks back from the end in
blocks. Text is cut only at a UTF-8 character boundary, and a NUL byte in what would be
returned means binary content, refused with a pointer to `read_media_file`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mcp_fileserver.errors import InvalidRequest

BLOCK = 64 * 1024
BINARY_MESSAGE = "binary file (contains NUL bytes); use read_media_file for images and audio"


@dataclass(frozen=True)
class Text:
    text: str
    truncated: bool  # content exists beyond what was returned (lines or bytes)
    size: int  # the file's size in bytes


def read_text(
    fd: int, size: int, *, max_bytes: int, head: int | None = None, tail: int | None = None
) -> Text:
    """The file's text (whole, first `head` lines or last `tail` lines), capped."""
    if head is not None and tail is not None:
        raise InvalidRequest("give head or tail, not both")
    if head is not None:
        data, truncated = _head(fd, head, max_bytes)
    elif tail is not None:
        data, truncated = _tail(fd, size, tail, max_bytes)
    else:
        data = _pread_upto(fd, 0, max_bytes + 1)
        truncated = len(data) > max_bytes
        data = _cut_utf8_end(data[:max_bytes]) if truncated else data
    if b"\0" in data:
        raise InvalidRequest(BINARY_MESSAGE)
    return Text(text=data.decode("utf-8", errors="replace"), truncated=truncated, size=size)


def _head(fd: int, lines: int, max_bytes: int) -> tuple[bytes, bool]:
    buf = bytearray()
    found = 0
    offset = 0
    while True:
        block = os.pread(fd, min(BLOCK, max_bytes + 1 - len(buf)), offset)
        if not block:
            return bytes(buf), False
        offset += len(block)
        start = len(buf)
        buf += block
        pos = start
        while found < lines:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                break
            found += 1
            pos = nl + 1
        if found == lines and pos <= max_bytes:
            more = pos < len(buf) or bool(os.pread(fd, 1, offset))
            return bytes(buf[:pos]), more
        if len(buf) > max_bytes or found == lines:
            return _cut_utf8_end(bytes(buf[:max_bytes])), True


def _tail(fd: int, size: int, lines: int, max_bytes: int) -> tuple[bytes, bool]:
    """The last `lines` lines; a final newline does not count as an extra empty line."""
    end = size
    buf = b""
    while True:
        want = min(BLOCK, end)
        if want <= 0:
            break
        end -= want
        buf = os.pread(fd, want, end) + buf
        body = buf[:-1] if buf.endswith(b"\n") else buf
        if body.count(b"\n") >= lines:
            cut = len(body)
            for _ in range(lines):
                cut = body.rfind(b"\n", 0, cut)
            data = buf[cut + 1 :]
            if len(data) > max_bytes:
                return _cut_utf8_start(data[-max_bytes:]), True
            return data, True
        if len(buf) > max_bytes:
            return _cut_utf8_start(buf[-max_bytes:]), True
    return buf, False


def _pread_upto(fd: int, offset: int, count: int) -> bytes:
    chunks: list[bytes] = []
    while count > 0:
        block = os.pread(fd, min(count, 1 << 20), offset)
        if not block:
            break
        chunks.append(block)
        offset += len(block)
        count -= len(block)
    return b"".join(chunks)


def _cut_utf8_end(data: bytes) -> bytes:
    """Drop an incomplete multibyte character at the end (at most 3 bytes)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return data  # ASCII: complete
        if byte >= 0xC0:  # a lead byte: is its sequence complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= need else data[:-back]
    return data


def _cut_utf8_start(data: bytes) -> bytes:
    """Drop continuation bytes of a character that began before the window."""
    skip = 0
    while skip < min(3, len(data)) and 0x80 <= data[skip] < 0xC0:
        skip += 1
    return data[skip:]


def read_capped(fd: int, size: int, max_bytes: int) -> bytes:
    """The whole file, which the caller has checked is at most `max_bytes` long."""
    return _pread_upto(fd, 0, min(size, max_bytes) + 1)[:max_bytes]
