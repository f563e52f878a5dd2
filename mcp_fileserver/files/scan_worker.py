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

Name searches share their walk with it too (walk_split.py): the server hands it one
subtree at a time (a directory descriptor and the walk's rules), and it walks that
subtree by the same code (`search.subtree_names`), reporting the matches every few
milliseconds until the subtree is done or the server sends STOP.

If the worker dies, the batches it owed are scanned in the server process (their
descriptors are still held), a subtree it was walking is walked on from where its last
report ended, and later searches run in-process: a search never fails or loses a match
because of it.
"""

from __future__ import annotations

import contextlib
import gc
import marshal
import os
import pickle
import resource
import select
import signal
import socket
import struct
import sys
import threading
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mcp_fileserver.files.secret_content import SecretContent
from mcp_fileserver.files.walk import open_file_in

if TYPE_CHECKING:
    from mcp_fileserver.files.search import Matcher

BINARY_PROBE = 8192  # a NUL byte in this many first bytes marks a file binary

_HEADER = struct.Struct("!I")
# A request's first byte says what it is.
CONTENT, NAMES, STOP = b"C", b"N", b"S"
WORKER_NICE = 5  # the worker yields to the server (and others) when CPUs are scarce
_TASK = struct.Struct("!Q")  # a STOP names the subtree walk it ends
BELL_CHECK_S = 1.0  # a sleeping worker looks at its socket this often (a closed end: exit)
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


def _serve(sock: socket.socket, bell: int, secret: SecretContent | None) -> None:
    """The worker's loop: one request at a time, in order, until the server goes away.

    A batch gets one reply. A subtree walk gets reports until a final one; requests that
    arrive meanwhile are read at once (a STOP for the walk in progress ends it) and queued."""
    from mcp_fileserver.files.search import compile_content_pattern

    programs: dict[tuple[str, bool, bool], Matcher] = {}
    specs: dict[bytes, Any] = {}
    queue: deque[_Request] = deque()
    stopped: set[int] = set()  # subtree walks stopped before they began
    while True:
        request = queue.popleft() if queue else _read_request(sock, bell)
        if request is None:
            return
        kind, body, fds = request
        try:
            if kind == NAMES and len(fds) == 1:
                if not _walk_names(sock, body, fds[0], specs, queue, stopped):
                    return  # the server went away
                continue
            if kind == STOP:
                stopped.add(_TASK.unpack(body)[0])  # a walk still queued, or already over
                continue
            if kind != CONTENT:
                continue
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


_Request = tuple[bytes, bytes, list[int]]  # kind, body, descriptors


def _read_request(sock: socket.socket, bell: int = -1) -> _Request | None:
    """The next request (waits for it on the `bell`, if any), or None when the server
    closed its end."""
    if bell >= 0:
        _wait_for(sock, bell)
    head, fds, _flags, _addr = socket.recv_fds(sock, _HEADER.size, 256)
    if not head:
        return None
    try:
        (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size, head))
        request = _recv_exact(sock, size)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return request[:1], request[1:], fds


def _wait_for(sock: socket.socket, bell: int) -> None:
    """Sleep until the socket has something to read, woken by the server's bell.

    Waiting on the socket itself, the worker was woken as a socket wakes a reader: a
    synchronous wakeup, which the kernel serves on the waker's core, where the worker
    then waited behind the server's busy thread (up to ~10 ms) while the other core
    idled. An eventfd's wakeup is not synchronous: the worker runs on a free core at
    once. The socket is also checked every second, so a server that went away without
    a word (its end closed) is noticed."""
    while not select.select([sock], [], [], 0)[0]:
        if select.select([bell], [], [], BELL_CHECK_S)[0]:
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(bell)


def _walk_names(
    sock: socket.socket,
    body: bytes,
    fd: int,
    specs: dict[bytes, Any],
    queue: deque[_Request],
    stopped: set[int],
) -> bool:
    """Walk one subtree for a name search, sending a report every few milliseconds and a
    final one; False if the server went away meanwhile."""
    from mcp_fileserver.files.search import subtree_names

    spec_blob, task = pickle.loads(body)  # noqa: S301 (from our own server)
    spec = specs.get(spec_blob)
    if spec is None:
        specs.clear()  # one search's rules at a time
        spec = specs[spec_blob] = pickle.loads(spec_blob)  # noqa: S301 (our own server)
    task_id = task[0]
    gone = False
    for old in [i for i in stopped if i < task_id]:
        stopped.discard(old)  # walks begin in order: a STOP for these came after them

    def interrupted() -> bool:
        """Read what has arrived: True on a STOP for this walk (or the server gone)."""
        nonlocal gone
        while select.select([sock], [], [], 0)[0]:
            request = _read_request(sock)
            if request is None:
                gone = True
                return True
            if request[0] == STOP:
                stop = _TASK.unpack(request[1])[0]
                if stop == task_id:
                    return True
                stopped.add(stop)  # a walk queued behind this one
                continue
            queue.append(request)
        return False

    if task_id in stopped:
        stopped.discard(task_id)
        reports: Iterator[tuple[Any, ...]] = iter([(True, False, "", "", [], 0, None, [])])
    else:
        reports = subtree_names(fd, spec, task[1:], interrupted)
    for report in reports:
        payload = marshal.dumps((task_id, *report))
        sock.sendall(_HEADER.pack(len(payload)) + payload)
    return not gone


def _recv_exact(sock: socket.socket, want: int, head: bytes = b"") -> bytes:
    """`head` completed to `want` bytes from the socket."""
    buf = bytearray(head)
    while len(buf) < want:
        chunk = sock.recv(min(want - len(buf), 1 << 20))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _no_wakeup_preemption() -> None:
    """Run as a batch task (SCHED_BATCH: no wakeup preemption) at a lower priority.

    A request wakes the worker from the server's thread; as an ordinary task it was
    often run on the server's core, stopping the server for about a millisecond each
    time, so handing it subtrees of a name search cost more than they saved. On a busy
    machine the worker's share of a core came out of the server's, and a search shared
    with it ran slower than alone: at nice 5 it takes what the server leaves."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)


def _child_main(sock: socket.socket, bell: int, secret: SecretContent | None) -> None:
    """Set up the forked worker: no stdin/stdout, no inherited descriptors but its own
    socket, its bell and stderr, no collector, no Ctrl-C (the server decides when it
    ends)."""
    code = 0
    try:
        gc.disable()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _no_wakeup_preemption()
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)  # stdout belongs to the MCP protocol, never to the worker
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        top = limit if 0 < limit < (1 << 20) else 65536
        low = 3
        for keep in sorted({sock.fileno(), bell} - {-1}):
            os.closerange(low, keep)
            low = keep + 1
        os.closerange(low, top)
        _serve(sock, bell, secret)
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
        self._bell = -1  # an eventfd rung after each request (Linux), see `_wait_for`
        self._pid = 0
        self._lock = threading.Lock()
        self._buf = bytearray()
        self.owed = 0  # replies of an abandoned search still to be read and dropped
        self.batches_sent = 0
        self.tasks_sent = 0
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
        bell = _new_bell()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            parent.close()
            _child_main(child, bell, self._secret)
        child.close()
        self._pid = pid
        self._sock = parent
        self._bell = bell

    def acquire(self, owed_at_most: int | None = None) -> bool:
        """Take the worker for one search, or False (busy or gone: search in-process).

        What an earlier search left owed is read first, waiting for all of it. With
        `owed_at_most`, the worker is taken if at most that much is owed (the caller takes
        or drops it as it comes, `settle`), else after reading only what has arrived: a
        worker still finishing an earlier search's work (or short of CPU) is not waited
        for."""
        if not self.alive or not self._lock.acquire(blocking=False):
            return False
        try:
            if owed_at_most is None:
                while self.owed:
                    self.settle(self.receive())
            elif self.owed > owed_at_most:
                while self.owed and self.poll():
                    self.settle(self.receive())
        except (OSError, EOFError):
            self._lock.release()
            return False
        if self.owed > (owed_at_most or 0):
            self._lock.release()
            return False
        return True

    def settle(self, reply: object) -> None:
        """Drop a reply an earlier search left owed."""
        if _is_final(reply):
            self.owed -= 1

    def release(self, owed: int) -> None:
        """Give the worker back; `owed`: final replies still to come (read and dropped by
        the next `acquire`)."""
        self.owed += owed
        self._lock.release()

    def send(
        self, spec: tuple[str, bool, bool], cap: int, groups: Sequence[tuple[int, list[str]]]
    ) -> None:
        """Send one batch: `groups` of (directory descriptor, file names)."""
        body = marshal.dumps((spec, cap, [names for _, names in groups]))
        self._send(CONTENT + body, [fd for fd, _ in groups])
        self.batches_sent += 1

    def send_names(self, dir_fd: int, spec: bytes, task: tuple[object, ...]) -> None:
        """Hand over one subtree of a name search (`search.subtree_names` says what `spec`
        and `task` hold); reports come back until a final one."""
        self._send(NAMES + pickle.dumps((spec, task)), [dir_fd])

    def send_stop(self, task: int) -> None:
        """End the subtree walk `task`, in progress or queued (its final report comes)."""
        self._send(STOP + _TASK.pack(task), [])

    def new_task(self) -> int:
        """An id for a subtree walk, never used before by this worker."""
        self.tasks_sent += 1
        return self.tasks_sent

    def _send(self, body: bytes, fds: list[int]) -> None:
        assert self._sock is not None
        frame = _HEADER.pack(len(body)) + body
        try:
            sent = socket.send_fds(self._sock, [frame], fds) if fds else self._sock.send(frame)
            if sent < len(frame):
                self._sock.sendall(frame[sent:])
        except OSError:
            self._died()
            raise
        self._ring()

    def _ring(self) -> None:
        if self._bell >= 0:
            with contextlib.suppress(OSError):
                os.eventfd_write(self._bell, 1)

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

    def receive(self) -> list[list[FileResult]] | tuple[Any, ...]:
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
        result: list[list[FileResult]] | tuple[Any, ...] = marshal.loads(body)  # noqa: S302
        return result

    def receive_batch(self) -> list[list[FileResult]]:
        """The next reply, which must be a batch's."""
        reply = self.receive()
        if not isinstance(reply, list):
            self._died()
            raise OSError("search worker sent a report where a batch reply was due")
        return reply

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
            self._ring()  # it wakes, finds the socket closed and exits
            with contextlib.suppress(OSError):
                os.waitpid(self._pid, 0)
        self.dead = True


def _new_bell() -> int:
    """A non-blocking eventfd to wake the worker by (Linux), or -1: it waits on its socket."""
    if not hasattr(os, "eventfd"):
        return -1
    try:
        return os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    except OSError:
        return -1


def _is_final(reply: object) -> bool:
    """A batch's reply, or the last report of a subtree walk (task id, final, ...)."""
    return not isinstance(reply, tuple) or bool(reply[1])


_ALL: weakref.WeakSet[ScanWorker] = weakref.WeakSet()


def start_workers() -> None:
    """Fork every worker created so far (the server calls this once, after the sandbox)."""
    for worker in list(_ALL):
        worker.start()
