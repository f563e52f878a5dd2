"""Process-wide hardening that needs no Landlock: no_new_privs, no core dumps, no root."""

from __future__ import annotations

import ctypes
import os
import resource
import sys
import threading
from typing import Final

_PR_SET_DUMPABLE: Final = 4
_PR_GET_DUMPABLE: Final = 3
_PR_SET_NO_NEW_PRIVS: Final = 38
_PR_GET_NO_NEW_PRIVS: Final = 39


def _prctl(option: int, arg: int = 0) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    result = int(
        libc.prctl(
            ctypes.c_int(option),
            ctypes.c_ulong(arg),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
        )
    )
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def is_linux() -> bool:
    return sys.platform.startswith("linux")


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def set_no_new_privs() -> None:
    """execve can never grant more privileges (setuid bits, file capabilities) again."""
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)


def no_new_privs() -> bool:
    return is_linux() and _prctl(_PR_GET_NO_NEW_PRIVS) == 1


def disable_core_dumps() -> None:
    """No core file can hold a secret: RLIMIT_CORE 0 and, on Linux, non-dumpable.

    Non-dumpable also stops other processes of the same user from attaching with ptrace
    or reading /proc/PID/mem and /proc/PID/environ, where a database password lives.
    """
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if is_linux():
        _prctl(_PR_SET_DUMPABLE, 0)


def core_dumps_disabled() -> bool:
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    return soft == 0 and hard == 0


def thread_count() -> int:
    """Threads of this process, native ones included (Landlock covers only the caller)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()
