"""Process-wide hardening that needs no Landlock: no_new_privs, no core dumps, no root
(and, for an allowed root, no capabilities beyond bypassing file permissions)."""

from __future__ import annotations

import contextlib
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


# Capabilities kept when running as root with --allow-root: bypassing file permissions
# inside the paths Landlock allows is what running as root is for; everything else
# (loading kernel modules from memory, raw sockets, mounts, ptrace, setuid...) goes.
CAP_DAC_OVERRIDE: Final = 1
CAP_DAC_READ_SEARCH: Final = 2
CAP_FOWNER: Final = 3
KEPT_CAPABILITIES: Final = frozenset({CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER})
KEPT_CAPABILITY_NAMES: Final = ("dac_override", "dac_read_search", "fowner")

_PR_CAPBSET_DROP: Final = 24
_PR_CAP_AMBIENT: Final = 47
_PR_CAP_AMBIENT_CLEAR_ALL: Final = 4
_CAP_SETPCAP: Final = 8
_LINUX_CAPABILITY_VERSION_3: Final = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def capabilities() -> tuple[int, int]:
    """(effective, permitted) capability masks of this thread."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _libc_call("capget", ctypes.byref(header), data)
    effective = data[0].effective | (data[1].effective << 32)
    permitted = data[0].permitted | (data[1].permitted << 32)
    return effective, permitted


def drop_capabilities(keep: frozenset[int] = KEPT_CAPABILITIES) -> None:
    """Drop every capability but `keep`: bounding set, effective/permitted/inheritable,
    ambient. Without capabilities (any non-root user) this changes nothing."""
    _, permitted = capabilities()
    if permitted & (1 << _CAP_SETPCAP):  # dropping from the bounding set needs it
        for cap in range(_last_capability() + 1):
            if cap not in keep:
                _prctl(_PR_CAPBSET_DROP, cap)
    mask = sum(1 << cap for cap in keep) & permitted
    data = (_CapData * 2)()
    data[0].effective = data[0].permitted = mask & 0xFFFFFFFF
    data[1].effective = data[1].permitted = mask >> 32
    _libc_call("capset", ctypes.byref(_CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)), data)
    _prctl_ambient_clear()


def _prctl_ambient_clear() -> None:
    with contextlib.suppress(OSError):  # kernels before 4.3 have no ambient set
        _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)


def _last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return 63


def _libc_call(name: str, *args: object) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if int(getattr(libc, name)(*args)) < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
