"""The record write's system calls, made without giving up the GIL.

Python's `os` and `fcntl` functions release the GIL around every system call. The audit
record is written on the event loop, after each call, with `flock`, `stat`, `write` and
`flock` again. When tool threads are waiting for the GIL (several calls in flight), each
release hands it to one of them, and the loop gets it back only when that thread lets go:
measured on a server with 8 calls in flight, the post-call part of the audit spent about
80 us per call waiting for the GIL, more than the four calls themselves cost. On a local
file they take microseconds, so they are made here through `ctypes.PyDLL`, which keeps
the GIL. The one call that can wait long, `flock` on a lock another process holds, is
first tried without blocking and only then made with `fcntl.flock`, which releases it.

Elsewhere than Linux with glibc (or if a symbol is missing), the `os` and `fcntl`
functions are used: the same results, with the GIL released.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import sys
from dataclasses import dataclass
from typing import Any

_AT_FDCWD = -100
_STATX_BASIC_STATS = 0x7FF


class _Timestamp(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_int64), ("tv_nsec", ctypes.c_uint32), ("_pad", ctypes.c_int32)]


class _Statx(ctypes.Structure):
    """`struct statx` (linux/stat.h): one layout on every architecture, unlike `stat`."""

    _fields_ = [
        ("stx_mask", ctypes.c_uint32),
        ("stx_blksize", ctypes.c_uint32),
        ("stx_attributes", ctypes.c_uint64),
        ("stx_nlink", ctypes.c_uint32),
        ("stx_uid", ctypes.c_uint32),
        ("stx_gid", ctypes.c_uint32),
        ("stx_mode", ctypes.c_uint16),
        ("_spare0", ctypes.c_uint16),
        ("stx_ino", ctypes.c_uint64),
        ("stx_size", ctypes.c_uint64),
        ("stx_blocks", ctypes.c_uint64),
        ("stx_attributes_mask", ctypes.c_uint64),
        ("stx_atime", _Timestamp),
        ("stx_btime", _Timestamp),
        ("stx_ctime", _Timestamp),
        ("stx_mtime", _Timestamp),
        ("stx_rdev_major", ctypes.c_uint32),
        ("stx_rdev_minor", ctypes.c_uint32),
        ("stx_dev_major", ctypes.c_uint32),
        ("stx_dev_minor", ctypes.c_uint32),
        ("_spare2", ctypes.c_uint64 * 14),
    ]


@dataclass(frozen=True)
class _Libc:
    flock: Any
    write: Any
    statx: Any


def _load() -> _Libc | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: the GIL is kept during the call
        flock, write, statx = libc.flock, libc.write, libc.statx
    except (OSError, AttributeError):
        return None
    flock.argtypes, flock.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    write.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
    write.restype = ctypes.c_ssize_t
    statx.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_Statx),
    ]
    statx.restype = ctypes.c_int
    return _Libc(flock, write, statx)


_LIBC = _load()
_statx_usable = True


def _error(path: bytes | None = None) -> OSError:
    code = ctypes.get_errno()
    if path is None:
        return OSError(code, os.strerror(code))
    return OSError(code, os.strerror(code), os.fsdecode(path))  # ENOENT: FileNotFoundError


def lock_exclusive(fd: int) -> None:
    """`flock(fd, LOCK_EX)`; the GIL is released only to wait for another process."""
    if _LIBC is not None and _LIBC.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB) == 0:
        return
    fcntl.flock(fd, fcntl.LOCK_EX)  # held elsewhere (or no libc): wait, GIL released


def unlock(fd: int) -> None:
    """`flock(fd, LOCK_UN)` (never waits)."""
    if _LIBC is None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    elif _LIBC.flock(fd, fcntl.LOCK_UN) != 0:
        raise _error()


def write(fd: int, data: bytes) -> int:
    """`write(2)`, retried if interrupted by a signal; returns the bytes written."""
    if _LIBC is None:
        return os.write(fd, data)
    while True:
        written = _LIBC.write(fd, data, len(data))
        if written >= 0:
            return int(written)
        if ctypes.get_errno() != errno.EINTR:
            raise _error()


def identity(path: bytes) -> tuple[int, int, int]:
    """(st_dev, st_ino, st_size) of `path` (as `os.stat` gives them; symlinks followed).
    Raises FileNotFoundError and the other OSErrors `os.stat` would."""
    global _statx_usable
    if _LIBC is not None and _statx_usable:
        buf = _Statx()
        if _LIBC.statx(_AT_FDCWD, path, 0, _STATX_BASIC_STATS, ctypes.byref(buf)) == 0:
            return os.makedev(buf.stx_dev_major, buf.stx_dev_minor), buf.stx_ino, buf.stx_size
        if ctypes.get_errno() not in (errno.ENOSYS, errno.EPERM):
            raise _error(path)
        _statx_usable = False  # an old kernel, or a seccomp filter without statx
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino, stat.st_size
