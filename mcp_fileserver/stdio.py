"""The stdio transport, served by the event loop itself instead of helper threads.

Why: the MCP SDK's `stdio_server` reads stdin and writes stdout through
`anyio.wrap_file`, which hands every line read, every write and every flush to a worker
thread. That is three thread round trips per call on top of the tool's own, each a
wake-up of a worker and of the event loop, and every thread then contends for the GIL.
Measured with 8 calls in flight (bench/RESULTS.md, results of 2026-12-01): 23 context
switches per `read_text_file` call with the SDK's transport, 6 with this one; per call,
the server is now faster than a bare FastMCP server on the SDK's transport.

Here stdin and stdout are asyncio pipe transports (non-blocking descriptors watched by
the loop's epoll). The MCP session itself is still the SDK's: it takes the two streams
this module builds, parses and frames the messages as it always does. Only pipes and
sockets can be watched that way; a terminal, a regular file or `/dev/null` is read by
one thread (`ThreadedReadTransport`) and written from worker threads (`BlockingWriter`),
through the same line reader: whatever stdin is, a line over the size limit is dropped
as it arrives and answered with an error, and a bad line gets its JSON-RPC error.

While serving, descriptors 0 and 1 point at `/dev/null` and at stderr (as the SDK does):
a stray `print()` or a child process writing to fd 1 cannot corrupt the protocol. The
wire is served from private duplicates, and both descriptors, with their blocking mode,
are restored on exit.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import stat
import threading
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from fastmcp import FastMCP
from fastmcp.server.context import reset_transport, set_transport

from mcp_fileserver.errors import ConfigError
from mcp_fileserver.framework import (
    FrameworkChanged,
    lifespan,
    message_stream_pair,
    parse_message,
    receive_ready,
    self_check,
    serve_session,
    session_message,
    wire_bytes,
)
from mcp_fileserver.jsonrpc_errors import protocol_errors, too_large

READ_PAUSE_LINES = 64  # complete lines waiting to be parsed before stdin is paused
# The largest JSON-RPC message read from the client ([protocol] max_message_bytes).
# Requests to a read-only server are small (paths, patterns, SQL); 8 MiB leaves room for
# any real one and stops a runaway line from taking the server's memory.
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
WRITE_BATCH = 32  # answers ready at once that leave in one write to stdout
ID_SNIFF_BYTES = 4096  # of an oversized line, kept to find the request's id
# At the end of stdin, how long requests already read may still finish and be answered
# ([protocol] eof_drain_s; each tool call is bounded by its own limits well within it).
EOF_DRAIN_S = 60.0
EOF_DRAIN_POLL_S = 0.01


@asynccontextmanager
async def stdio_streams(
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, eof_drain_s: float = EOF_DRAIN_S
) -> AsyncIterator[tuple[Any, Any]]:
    """The (read, write) message streams of the MCP session over this process's stdio."""
    async with AsyncExitStack() as stack:
        in_pollable, out_pollable = _pollable(0), _pollable(1)
        wire_in = _claim(0, non_blocking=in_pollable)
        stack.callback(wire_in.release)
        wire_out = _claim(1, non_blocking=out_pollable)
        stack.callback(wire_out.release)
        loop = asyncio.get_running_loop()
        reader = LineReader(max_message_bytes)
        if in_pollable:
            read_transport, _ = await loop.connect_read_pipe(
                lambda: reader, os.fdopen(wire_in.private_fd, "rb", buffering=0, closefd=False)
            )
        else:
            read_transport = ThreadedReadTransport(loop, wire_in.private_fd, reader)
        stack.callback(read_transport.close)
        writer: PipeWriter | BlockingWriter
        if out_pollable:
            writer = pipe_writer = PipeWriter()
            write_transport, _ = await loop.connect_write_pipe(
                lambda: pipe_writer,
                os.fdopen(wire_out.private_fd, "wb", buffering=0, closefd=False),
            )
            stack.callback(write_transport.close)
            write_transport.set_write_buffer_limits(high=0)  # see PipeWriter.flush
        else:
            writer = BlockingWriter(wire_out.private_fd)
        async with message_streams(reader, writer, max_message_bytes, eof_drain_s) as streams:
            yield streams


def _pollable(fd: int) -> bool:
    """Whether epoll can watch `fd`: a pipe or a socket (not a tty, file or device)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class _Claim:
    """fd 0 or 1 moved aside: the wire is served from `private_fd`, while `fd` itself
    points at `/dev/null` (stdin) or at stderr (stdout) until `release`."""

    def __init__(self, fd: int, private_fd: int, was_blocking: bool) -> None:
        self.fd = fd
        self.private_fd = private_fd
        self.was_blocking = was_blocking

    def release(self) -> None:
        """Put the wire back on `fd` with its original blocking mode (the description
        is shared with whoever started us)."""
        try:
            os.set_blocking(self.private_fd, self.was_blocking)
            os.dup2(self.private_fd, self.fd)
        finally:
            os.close(self.private_fd)


def _claim(fd: int, *, non_blocking: bool = True) -> _Claim:
    """`fd` moved aside; `non_blocking=False` for a descriptor served by blocking calls
    in threads (its mode is then left as it is, and restored all the same)."""
    was_blocking = os.get_blocking(fd)
    private_fd = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    if not non_blocking and not was_blocking:
        os.set_blocking(private_fd, True)
    try:
        diversion = _stderr_or_null() if fd == 1 else os.open(os.devnull, os.O_RDONLY)
        try:
            os.dup2(diversion, fd)
        finally:
            os.close(diversion)
    except OSError:
        os.close(private_fd)
        raise
    return _Claim(fd, private_fd, was_blocking)


def _stderr_or_null() -> int:
    try:
        return os.dup(2)
    except OSError:
        return os.open(os.devnull, os.O_WRONLY)


@dataclass(frozen=True)
class Oversized:
    """A line longer than the limit: dropped as it arrived, its first bytes kept so the
    error can name the request's id."""

    head: bytes
    size: int


class LineReader(asyncio.Protocol):
    """stdin as an async iterator of text lines, as `anyio.wrap_file(TextIOWrapper)`
    gives them to the SDK: UTF-8 with replacement characters, universal newlines
    (`\\n`, `\\r\\n` or `\\r`), a last unterminated line at EOF.

    A line longer than `max_line_bytes` is never held whole: from the moment it passes
    the limit its bytes are counted and dropped, and it comes out as `Oversized`.
    Reading pauses while READ_PAUSE_LINES complete lines wait, so a client that floods
    the pipe fills its own pipe buffer, not our memory."""

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self._max = max_line_bytes
        self._lines: deque[bytes | Oversized] = deque()
        self._partial: list[bytes] = []  # the current line's chunks, without terminator
        self._partial_size = 0
        self._dropped: int | None = None  # bytes of an oversized line, once past the limit
        self._head = b""
        self._after_cr = False  # the last chunk ended with "\r": a leading "\n" is its pair
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self._transport: asyncio.ReadTransport | None = None
        self._paused = False  # kept here: 3.11.2's pipe transport has no is_reading()

    # -- protocol (called by the loop) --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.ReadTransport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._after_cr and data.startswith(b"\n"):
            data = data[1:]
        self._after_cr = data.endswith(b"\r")
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            self._extend(data[start:end])
            self._end_line()
            start = end + 1
        if start < len(data):
            self._extend(data[start:])
        if len(self._lines) >= READ_PAUSE_LINES and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True
        if self._lines:
            self._wake()

    def _extend(self, piece: bytes) -> None:
        if self._dropped is not None:
            self._dropped += len(piece)
            return
        if self._partial_size + len(piece) > self._max:
            self._head = (b"".join(self._partial) + piece[:ID_SNIFF_BYTES])[:ID_SNIFF_BYTES]
            self._dropped = self._partial_size + len(piece)
            self._partial, self._partial_size = [], 0
            return
        if piece:
            self._partial.append(piece)
            self._partial_size += len(piece)

    def _end_line(self, terminator: bytes = b"\n") -> None:
        if self._dropped is not None:
            self._lines.append(Oversized(self._head, self._dropped))
            self._dropped, self._head = None, b""
            return
        self._partial.append(terminator)
        self._lines.append(b"".join(self._partial))
        self._partial, self._partial_size = [], 0

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._wake()

    # -- async iteration (what the message reader consumes) -----------------------------

    def __aiter__(self) -> LineReader:
        return self

    async def __anext__(self) -> str | Oversized:
        while not self._lines:
            if self._eof:
                if self._partial or self._dropped is not None:
                    self._end_line(b"")  # the last line, unterminated
                    continue
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        line = self._lines.popleft()
        if self._paused and len(self._lines) < READ_PAUSE_LINES // 2:
            self._paused = False
            if self._transport is not None:
                self._transport.resume_reading()
        if isinstance(line, Oversized):
            return line
        return line.decode("utf-8", "replace")

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class PipeWriter(asyncio.Protocol):
    """stdout as the SDK's writer: `await write(text)` then `await flush()`.

    A write goes to the pipe at once when it can; what the pipe cannot take yet is kept
    by the transport (high-water mark 0, so writing is "paused" whenever anything is
    kept), and `flush` waits until it has all gone out, as a blocking write would: a
    response is never left behind in memory when the session ends. A closed pipe raises
    BrokenPipeError, as a blocking write would, and ends the session."""

    def __init__(self) -> None:
        self._transport: asyncio.WriteTransport | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or BrokenPipeError("stdout closed")
        self._can_write.set()

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    async def write(self, data: str | bytes) -> None:
        if self._lost is not None or self._transport is None or self._transport.is_closing():
            raise BrokenPipeError("stdout closed")
        self._transport.write(data.encode("utf-8") if isinstance(data, str) else data)

    async def flush(self) -> None:
        if not self._can_write.is_set():
            await self._can_write.wait()
        if self._lost is not None:
            raise BrokenPipeError("stdout closed")


READ_CHUNK = 64 * 1024  # bytes per read of a stdin that is not a pipe


class ThreadedReadTransport(asyncio.ReadTransport):
    """Feeds a `LineReader` from a descriptor epoll cannot watch (a terminal, a regular
    file, `/dev/null`) with one thread doing blocking reads. At most one chunk is in
    flight: the thread waits for the event loop to take each chunk before reading the
    next, and stops reading while the line reader has paused it, so a huge file or line
    on stdin never piles up in memory."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, protocol: LineReader) -> None:
        super().__init__()
        self._loop = loop
        self._fd = fd
        self._protocol = protocol
        self._reading = threading.Event()
        self._reading.set()
        self._taken = threading.Event()
        self._closing = False
        protocol.connection_made(self)
        self._thread = threading.Thread(target=self._run, name="mcp-stdin", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._reading.wait()
            if self._closing:
                return
            try:
                data = os.read(self._fd, READ_CHUNK)
            except OSError:
                data = b""
            if not self._deliver(data):
                return
            if not data:
                return

    def _deliver(self, data: bytes) -> bool:
        """Hand `data` (b"" for end of input) to the loop; wait until it is taken."""
        self._taken.clear()
        try:
            self._loop.call_soon_threadsafe(self._take, data)
        except RuntimeError:  # the loop is closed: nobody is reading any more
            return False
        while not self._taken.wait(0.5):
            if self._closing or self._loop.is_closed():
                return False
        return True

    def _take(self, data: bytes) -> None:
        try:
            if self._closing:
                return
            if data:
                self._protocol.data_received(data)
            else:
                self._protocol.eof_received()
        finally:
            self._taken.set()

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def is_reading(self) -> bool:
        return self._reading.is_set()

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._reading.set()  # a paused thread sees the close and ends
            self._protocol.connection_lost(None)


class BlockingWriter:
    """stdout that epoll cannot watch (a terminal, a regular file, `/dev/null`), with
    `PipeWriter`'s interface: each write is done whole, in a worker thread, before it
    returns; `flush` has nothing left to wait for."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    async def write(self, data: str | bytes) -> None:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        await anyio.to_thread.run_sync(_write_all, self._fd, raw)

    async def flush(self) -> None:
        return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def run_stdio(
    mcp: FastMCP,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    eof_drain_s: float = EOF_DRAIN_S,
) -> None:
    """Serve `mcp` over stdio: `FastMCP.run_stdio_async` (fastmcp 4.2) with
    `stdio_streams` in place of the SDK's transport, and no banner."""
    await require_framework()
    token = set_transport("stdio")
    try:
        async with (
            lifespan(mcp),
            stdio_streams(max_message_bytes, eof_drain_s) as (read_stream, write_stream),
        ):
            await serve_session(mcp, read_stream, write_stream)
    finally:
        reset_transport(token)


@asynccontextmanager
async def message_streams(
    lines: LineReader,
    out: PipeWriter | BlockingWriter,
    max_message_bytes: int,
    eof_drain_s: float = EOF_DRAIN_S,
) -> AsyncIterator[tuple[Any, Any]]:
    """The SDK session's (read, write) message streams over our line reader and writer:
    what the SDK's `stdio_server` does, except that a line that is not one valid
    JSON-RPC message gets an answer (jsonrpc_errors.py) instead of silence."""
    read_in, read_stream = message_stream_pair()
    write_stream, write_out = message_stream_pair()
    errors_out = write_stream.clone()
    # Requests handed to the session and not answered yet. At the end of stdin the
    # session stops and drops what is still running; so the input is closed only once
    # these are answered (or cancelled by the client), within `eof_drain_s`: a client that
    # writes its requests and closes stdin (a file, `cat requests | mcp-fileserver`)
    # still gets every answer.
    pending: set[Any] = set()

    async def read_messages() -> None:
        async with read_in, errors_out:
            async for line in lines:
                if isinstance(line, Oversized):
                    for error in too_large(line.head, line.size, max_message_bytes):
                        await errors_out.send(session_message(error))
                    continue
                try:
                    message = parse_message(line)
                except Exception:
                    for error in protocol_errors(line):
                        await errors_out.send(session_message(error))
                    continue
                _track(pending, message)
                await read_in.send(session_message(message))
            with anyio.move_on_after(eof_drain_s):
                while pending:
                    await anyio.sleep(EOF_DRAIN_POLL_S)

    async def write_messages() -> None:
        # Answers that are ready together leave in one write: with calls in flight, one
        # pipe write (and one wake-up of the client) per answer was a fifth of the event
        # loop's time (bench/RESULTS.md, issue 15). Order and flushing are unchanged.
        async with write_out:
            async for item in write_out:
                batch = [item, *receive_ready(write_out, WRITE_BATCH - 1)]
                lines = [part for each in batch for part in (wire_bytes(each), b"\n")]
                await out.write(b"".join(lines))
                await out.flush()
                for each in batch:
                    if getattr(each.message, "method", None) is None:  # a response or error
                        pending.discard(getattr(each.message, "id", None))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(read_messages)
        tasks.start_soon(write_messages)
        yield read_stream, write_stream


def _track(pending: set[Any], message: Any) -> None:
    """Note a request the session will answer; forget one the client cancelled (the
    session then sends no answer)."""
    method = getattr(message, "method", None)
    request_id = getattr(message, "id", None)
    if method is not None and request_id is not None:
        pending.add(request_id)
    elif method == "notifications/cancelled":
        params = getattr(message, "params", None) or {}
        if isinstance(params, dict):
            pending.discard(params.get("requestId"))


async def require_framework() -> None:
    """Refuse to serve (exit 2) when the framework no longer routes tool calls through
    the audit as framework.py expects: never serve unaudited calls."""
    try:
        await self_check()
    except FrameworkChanged as exc:
        raise ConfigError(
            f"refusing to start: this FastMCP release changed what the audit relies on "
            f"({exc}); install the pinned dependencies"
        ) from None
