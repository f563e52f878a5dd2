"""A second process that reads and matches files for content searches (issue 19 §2).

A content search is bound by reading and matching files, which in one interpreter uses
one core (RE2 holds the GIL while it matches). The server therefore forks one worker
when it starts, right after the sandbox is applied and while it is still
single-threaded: the worker inherits the sandbox (Landlock, no_new_privs, no core
dumps, the capabilities left) and nothing else is exec'd, so it works the same in the
frozen binary and the container.

The worker holds no path and resolves none. The server walks, filters (deny-list,
`.gitignore`, glob) and sends batches over a Unix socket: directory descriptors the
walk already opened beneath a confined root (SCM_RIGHTS) with the names of regular
files in them. The worker opens each name relative to its descriptor with O_NOFOLLOW
(`open_file_in`, the walk's own function: a regular file or nothing), reads and
matches it, and answers with the matches per file; it never writes to stdout (its
stdin and stdout are /dev/null). Results are merged by the server in walk order, so
answers and cursors are exactly those of a search in one process.

If the worker dies, the batches it owed are scanned in the server process (their
descriptors are still held) and later searches run in-process: a search never fails
or loses a match because of it.
"""

from __future__ import annotations

import contextlib
import gc
import marshal
import os
import resource
import signal
import socket
import struct
import sys
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mcp_fileserver.files.secret_content import SecretContent
from mcp_fileserver.files.walk import open_file_in

if TYPE_CHECKING:
    from mcp_fileserver.files.search import Matcher

BINARY_PROBE = 8192  # a NUL byte in this many first bytes marks a file binary

_HEADER = struct.Struct("!I")
MAX_FRAME = 64 << 20  # a reply is at most cap matches of 500 characters per file
REPLY_TIMEOUT_S = 30.0  # a worker silent this long is treated as dead

# The outcome of one file: (status, bytes read, matches as (line, offset, text)).
EMPTY, SKIPPED, BINARY, TEXT, BIG, SECRET = range(6)
FileResult = tuple[int, int, list[tuple[int, int, str]]]
BIG_FILE = 1 << 20  # larger files are scanned by the server block by block, under budget


def scan_small(
    dir_fd: int,
    name: str,
    program: Matcher,
    cap: int,
    secret: SecretContent | None,
) -> FileResult:
    """Open `name` beneath `dir_fd` (never following a symlink) and match it whole, as
    `search._scan_file` would when no budget interrupts it: the first `BINARY_PROBE`
    bytes decide binary, then the rest is read at once. At most `cap` matches."""
    from mcp_fileserver.files.search import line_matches

    if "/" in name or name in (".", ".."):
        return SKIPPED, 0, []  # a directory entry's own name, never a path
    opened = open_file_in(dir_fd, name)
    if opened is None:
        return SKIPPED, 0, []
    fd, size = opened
    try:
        if size > BIG_FILE:
            return BIG, 0, []
        if secret and secret.in_file(fd):
            return SECRET, 0, []
        if size == 0:
            return EMPTY, 0, []
        data = os.pread(fd, min(BINARY_PROBE, size), 0)
        if not data:
            return EMPTY, 0, []
        if b"\0" in data:
            return BINARY, len(data), []
        while len(data) < size:
            more = os.pread(fd, size - len(data), len(data))
            if not more:
                break  # the file shrank
            data += more
        return TEXT, len(data), line_matches(data, program, cap)
    finally:
        os.close(fd)


# -- the worker process ------------------------------------------------------------------


def _serve(sock: socket.socket, secret: SecretContent | None) -> None:
    """The worker's loop: one batch in, one reply out, until the server goes away."""
    from mcp_fileserver.files.search import compile_content_pattern

    programs: dict[tuple[str, bool, bool], Matcher] = {}
    while True:
        head, fds, _flags, _addr = socket.recv_fds(sock, _HEADER.size, 256)
        if not head:
            return
        try:
            (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size, head))
            body = _recv_exact(sock, size)
            spec, cap, groups = marshal.loads(body)  # noqa: S302 (from our own server)
            key = (spec[0], bool(spec[1]), bool(spec[2]))
            program = programs.get(key)
            if program is None:
                program = compile_content_pattern(key[0], regex=key[1], case_sensitive=key[2])
                programs[key] = program
            out = [
                [scan_small(fd, name, program, cap, secret) for name in names]
                for fd, names in zip(fds, groups, strict=True)
            ]
        finally:
            for fd in fds:
                os.close(fd)
        payload = marshal.dumps(out)
        sock.sendall(_HEADER.pack(len(payload)) + payload)


def _recv_exact(sock: socket.socket, want: int, head: bytes = b"") -> bytes:
    """`head` completed to `want` bytes from the socket."""
    buf = bytearray(head)
    while len(buf) < want:
        chunk = sock.recv(min(want - len(buf), 1 << 20))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _child_main(sock: socket.socket, keep: int, secret: SecretContent | None) -> None:
    """Set up the forked worker: no stdin/stdout, no inherited descriptors but its own
    socket and stderr, no collector, no Ctrl-C (the server decides when it ends)."""
    code = 0
    try:
        gc.disable()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)  # stdout belongs to the MCP protocol, never to the worker
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        top = limit if 0 < limit < (1 << 20) else 65536
        os.closerange(3, keep)
        os.closerange(keep + 1, top)
        _serve(sock, secret)
    except (EOFError, OSError):
        pass  # the server closed its end or went away
    except BaseException:  # the worker must end here, never return
        code = 1
    finally:
        os._exit(code)


# -- the server's handle -------------------------------------------------------------------


class ScanWorker:
    """The server's side of the worker: start, send batches, read replies, and notice
    when it is gone. One search uses it at a time (`acquire`); others run in-process."""

    def __init__(self, secret: SecretContent | None = None) -> None:
        self._secret = secret
        self._sock: socket.socket | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._buf = bytearray()
        self.owed = 0  # replies of an abandoned search still to be read and dropped
        self.batches_sent = 0
        self.dead = False
        _ALL.add(self)

    @property
    def alive(self) -> bool:
        return self._sock is not None and not self.dead

    @property
    def pid(self) -> int:
        return self._pid

    def start(self) -> None:
        """Fork the worker (call while the process is single-threaded)."""
        if self._sock is not None or not hasattr(os, "fork"):
            return
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            parent.close()
            _child_main(child, child.fileno(), self._secret)
        child.close()
        self._pid = pid
        self._sock = parent

    def acquire(self) -> bool:
        """Take the worker for one search, or False (busy or gone: search in-process)."""
        if not self.alive or not self._lock.acquire(blocking=False):
            return False
        try:
            while self.owed:
                self.receive()
                self.owed -= 1
        except OSError:
            self._lock.release()
            return False
        return True

    def release(self, owed: int) -> None:
        self.owed += owed
        self._lock.release()

    def send(
        self, spec: tuple[str, bool, bool], cap: int, groups: Sequence[tuple[int, list[str]]]
    ) -> None:
        """Send one batch: `groups` of (directory descriptor, file names)."""
        assert self._sock is not None
        body = marshal.dumps((spec, cap, [names for _, names in groups]))
        frame = _HEADER.pack(len(body)) + body
        try:
            sent = socket.send_fds(self._sock, [frame], [fd for fd, _ in groups])
            if sent < len(frame):
                self._sock.sendall(frame[sent:])
            self.batches_sent += 1
        except OSError:
            self._died()
            raise

    def poll(self) -> bool:
        """Whether a whole reply is waiting (reads what has arrived, never blocks)."""
        if self._complete():
            return True
        assert self._sock is not None
        try:
            chunk = self._sock.recv(1 << 20, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            self._died()
            raise
        if not chunk:
            self._died()
            raise EOFError("search worker stopped")
        self._buf += chunk
        return self._complete()

    def receive(self) -> list[list[FileResult]]:
        """The next reply (blocks until it is complete)."""
        assert self._sock is not None
        while not self._complete():
            self._sock.settimeout(REPLY_TIMEOUT_S)
            try:
                chunk = self._sock.recv(1 << 20)
            except OSError:
                self._died()
                raise
            finally:
                self._sock.settimeout(None)
            if not chunk:
                self._died()
                raise EOFError("search worker stopped")
            self._buf += chunk
        (size,) = _HEADER.unpack_from(self._buf)
        body = bytes(self._buf[_HEADER.size : _HEADER.size + size])
        del self._buf[: _HEADER.size + size]
        result: list[list[FileResult]] = marshal.loads(body)  # noqa: S302 (our worker)
        return result

    def _complete(self) -> bool:
        if len(self._buf) < _HEADER.size:
            return False
        (size,) = _HEADER.unpack_from(self._buf)
        if size > MAX_FRAME:
            self._died()
            raise OSError("search worker sent an oversized reply")
        return len(self._buf) >= _HEADER.size + size

    def _died(self) -> None:
        if self.dead:
            return
        self.dead = True
        from loguru import logger

        logger.warning("the content-search worker process stopped; searches run in-process")
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        with contextlib.suppress(OSError):
            os.waitpid(self._pid, os.WNOHANG)

    def stop(self) -> None:
        """End the worker (tests; a server's worker ends with the server's socket)."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            with contextlib.suppress(OSError):
                os.waitpid(self._pid, 0)
        self.dead = True


_ALL: weakref.WeakSet[ScanWorker] = weakref.WeakSet()


def start_workers() -> None:
    """Fork every worker created so far (the server calls this once, after the sandbox)."""
    for worker in list(_ALL):
        worker.start()
