"""A minimal ctypes binding of the Linux Landlock API (linux/landlock.h).

Why our own binding: no well-kept PyPI package exists, the surface is three syscalls
and three structs, ctypes needs no compile step, and it works unchanged inside the
PyInstaller bundle. Everything here is a thin, typed wrapper; policy lives in
`ruleset.py`, orchestration in `enforce.py`.

Access rights appeared over successive ABI versions; `fs_rights(abi)` and friends say
which ones a kernel understands, so a ruleset written for the newest ABI is masked down
on older kernels instead of failing (best effort, as the kernel documentation advises).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from typing import Final

# Syscall numbers: the unified table shared by x86_64, i386, aarch64, arm, riscv, ppc,
# s390x, loongarch (alpha and MIPS number them differently and are not supported).
_SYS_CREATE_RULESET: Final = 444
_SYS_ADD_RULE: Final = 445
_SYS_RESTRICT_SELF: Final = 446
_SUPPORTED_MACHINES: Final = frozenset(
    {"x86_64", "amd64", "aarch64", "arm64", "i386", "i686", "armv7l", "armv8l", "riscv64",
     "ppc64le", "ppc64", "s390x", "loongarch64"}
)  # fmt: skip

CREATE_RULESET_VERSION: Final = 1 << 0

RULE_PATH_BENEATH: Final = 1
RULE_NET_PORT: Final = 2

# Filesystem rights (handled_access_fs / allowed_access of a path rule).
FS_EXECUTE: Final = 1 << 0
FS_WRITE_FILE: Final = 1 << 1
FS_READ_FILE: Final = 1 << 2
FS_READ_DIR: Final = 1 << 3
FS_REMOVE_DIR: Final = 1 << 4
FS_REMOVE_FILE: Final = 1 << 5
FS_MAKE_CHAR: Final = 1 << 6
FS_MAKE_DIR: Final = 1 << 7
FS_MAKE_REG: Final = 1 << 8
FS_MAKE_SOCK: Final = 1 << 9
FS_MAKE_FIFO: Final = 1 << 10
FS_MAKE_BLOCK: Final = 1 << 11
FS_MAKE_SYM: Final = 1 << 12
FS_REFER: Final = 1 << 13  # ABI 2
FS_TRUNCATE: Final = 1 << 14  # ABI 3
FS_IOCTL_DEV: Final = 1 << 15  # ABI 5

# Network rights (ABI 4), TCP only.
NET_BIND_TCP: Final = 1 << 0
NET_CONNECT_TCP: Final = 1 << 1

# IPC scoping (ABI 6).
SCOPE_ABSTRACT_UNIX_SOCKET: Final = 1 << 0
SCOPE_SIGNAL: Final = 1 << 1

# landlock_restrict_self() flags (ABI 7): denial logging through the kernel audit
# subsystem. 0 keeps the kernel default: denials of this very program are logged.
RESTRICT_SELF_LOG_SAME_EXEC_OFF: Final = 1 << 0
RESTRICT_SELF_LOG_NEW_EXEC_ON: Final = 1 << 1
RESTRICT_SELF_LOG_SUBDOMAINS_OFF: Final = 1 << 2

_ABI1_FS: Final = (1 << 13) - 1

FS_RIGHT_NAMES: Final[dict[int, str]] = {
    FS_EXECUTE: "execute",
    FS_WRITE_FILE: "write_file",
    FS_READ_FILE: "read_file",
    FS_READ_DIR: "read_dir",
    FS_REMOVE_DIR: "remove_dir",
    FS_REMOVE_FILE: "remove_file",
    FS_MAKE_CHAR: "make_char",
    FS_MAKE_DIR: "make_dir",
    FS_MAKE_REG: "make_reg",
    FS_MAKE_SOCK: "make_sock",
    FS_MAKE_FIFO: "make_fifo",
    FS_MAKE_BLOCK: "make_block",
    FS_MAKE_SYM: "make_sym",
    FS_REFER: "refer",
    FS_TRUNCATE: "truncate",
    FS_IOCTL_DEV: "ioctl_dev",
}

# The only rights the kernel accepts on a rule for a non-directory.
FS_FILE_RIGHTS: Final = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV


def fs_rights(abi: int) -> int:
    """Every filesystem right the given ABI version can handle."""
    if abi < 1:
        return 0
    rights = _ABI1_FS
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def net_rights(abi: int) -> int:
    return NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0


def scopes(abi: int) -> int:
    return SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0


def right_names(mask: int) -> list[str]:
    return [name for bit, name in FS_RIGHT_NAMES.items() if mask & bit]


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # __attribute__((packed)) in the kernel header: 12 bytes
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


class _NetPortAttr(ctypes.Structure):
    _fields_ = (("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64))


class LandlockError(OSError):
    """A Landlock syscall failed; `errno` and `strerror` say why."""


def _ruleset_attr_size(abi: int) -> int:
    """The struct size this ABI knows (older kernels reject unknown non-zero tails)."""
    if abi >= 6:
        return ctypes.sizeof(_RulesetAttr)
    if abi >= 4:
        return 16
    return 8


_libc: ctypes.CDLL | None = None


def _syscall(number: int, *args: object) -> int:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    result = int(_libc.syscall(ctypes.c_long(number), *args))
    if result < 0:
        err = ctypes.get_errno()
        raise LandlockError(err, os.strerror(err))
    return result


def platform_supported() -> bool:
    return sys.platform.startswith("linux") and platform.machine().lower() in _SUPPORTED_MACHINES


def abi_version() -> int:
    """The Landlock ABI the kernel offers, or 0 when Landlock is absent or disabled."""
    if not platform_supported():
        return 0
    try:
        return _syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0),
                        ctypes.c_uint32(CREATE_RULESET_VERSION))  # fmt: skip
    except LandlockError:
        # ENOSYS: kernel built without Landlock; EOPNOTSUPP: disabled at boot (lsm=);
        # EPERM: a seccomp filter (an old container runtime's default profile) blocks it.
        return 0


def create_ruleset(abi: int, handled_fs: int, handled_net: int, scoped: int) -> int:
    """A new ruleset file descriptor handling exactly these rights."""
    attr = _RulesetAttr(handled_fs, handled_net, scoped)
    return _syscall(_SYS_CREATE_RULESET, ctypes.byref(attr),
                    ctypes.c_size_t(_ruleset_attr_size(abi)), ctypes.c_uint32(0))  # fmt: skip


def add_path_rule(ruleset_fd: int, parent_fd: int, allowed: int) -> None:
    """Allow `allowed` beneath the file or directory open as `parent_fd` (O_PATH is fine)."""
    attr = _PathBeneathAttr(allowed, parent_fd)
    _syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset_fd), ctypes.c_int(RULE_PATH_BENEATH),
             ctypes.byref(attr), ctypes.c_uint32(0))  # fmt: skip


def add_port_rule(ruleset_fd: int, port: int, allowed: int) -> None:
    attr = _NetPortAttr(allowed, port)
    _syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset_fd), ctypes.c_int(RULE_NET_PORT),
             ctypes.byref(attr), ctypes.c_uint32(0))  # fmt: skip


def restrict_self(ruleset_fd: int, flags: int = 0) -> None:
    """Enforce the ruleset on the calling thread and every child it creates from now on.

    Needs no_new_privs (or CAP_SYS_ADMIN). Landlock restricts the calling thread only:
    threads that already exist stay unrestricted, so call this while single-threaded.
    """
    _syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset_fd), ctypes.c_uint32(flags))
