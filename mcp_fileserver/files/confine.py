"""Confinement: the only code that opens a path a client gave us.

Invariant: every descriptor `Confinement.open` returns refers to an object reached by
resolving the client's path *beneath* the descriptor of an allowed root, with no
component (as typed, or as actually resolved) matching the deny-list. Nothing outside
a root is ever opened, and the caller learns nothing about the outside.

How (in the spirit of Go's `os.Root`):

- Each allowed root is opened once at startup; its descriptor, not its name, is the
  anchor of every later lookup, so renaming or symlinking a parent of the root changes
  nothing.
- The client's path is taken literally: no trimming, unquoting, percent-decoding or `~`.
  An absolute path must lie inside a root when compared component by component with
  the root's real path (never by string prefix); a relative path resolves against the
  single root and is ambiguous when there are several. NUL bytes are refused.
- Linux: `openat2(root_fd, rel, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: the kernel
  refuses `..` above the root, absolute symlinks and /proc magic links, atomically with
  the lookup (no check-then-use race). When openat2 refuses (EXDEV, ELOOP, EAGAIN) or
  is unavailable (ENOSYS, seccomp EPERM) the component walk decides.
- Walk (any POSIX): one `openat(O_NOFOLLOW)` per component from a held directory
  descriptor; symlinks are read with `readlinkat` and spliced into the remaining path;
  `..` pops the descriptor stack and can never go above the root; an absolute symlink is
  followed only when its target lies beneath the root's real path. Hard limits:
  `MAX_SYMLINKS` links and `MAX_STEPS` components per lookup.
- `Method.REALPATH` (`realpath` + `commonpath`, then open) is the portable reference,
  selectable but never the default: it is weaker, since a component swapped for a
  symlink between the check and the open is not detected. Windows is refused at startup:
  listings and walks need directory descriptors, which Windows does not have.
- Linux: the object is first opened `O_PATH` (no driver's open runs, no FIFO is
  touched) and checked with `fstat`; only a regular file or a directory is reopened for
  reading, through `/proc/self/fd`. Elsewhere files are opened
  `O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC`, so opening a FIFO never waits;
  callers `fstat` the descriptor and read only regular files.
- A path ending in `/` names a directory, as POSIX says: `plain.txt/` is ENOTDIR.

Not defended (out of scope, documented in docs/files.md): bind mounts and hard links
that a local user created inside a root beforehand (they are, to the kernel, part of the
root); a root directory that is itself moved elsewhere after startup (its descriptor
follows it, like `os.Root`: it keeps serving under its configured name, and a directory
created later at that name is not served; a removed root serves nothing); anything a
local user with write access to a root can do to its contents. Symlinks and `..` are
handled; so are races that swap a directory for a symlink during a lookup.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import sys
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from mcp_fileserver.errors import ConfigError, InvalidRequest, NotAllowed, PolicyViolation
from mcp_fileserver.files.denylist import DenyList

MAX_SYMLINKS = 40  # the kernel's own limit for one lookup
MAX_STEPS = 4096  # components processed per lookup, splices included
MAX_NARROWED_ROOTS = 256  # distinct client roots kept open (MCP Roots)


def _flag(name: str) -> int:
    """An open(2) flag, 0 where the platform lacks it (so this module imports anywhere)."""
    return int(getattr(os, name, 0))


FILE_FLAGS = os.O_RDONLY | _flag("O_NONBLOCK") | _flag("O_NOCTTY") | _flag("O_CLOEXEC")
_O_PATH = _flag("O_PATH")
_O_DIRECTORY = _flag("O_DIRECTORY")
# Linux: a client's path is first opened O_PATH, which neither reads nor opens the
# object (no device driver's open runs, no FIFO is touched); only a regular file or a
# directory is then reopened for reading through /proc/self/fd. Elsewhere (no O_PATH,
# or no /proc) the object is opened non-blocking and checked with fstat before any read.
_PROBE_BY_PATH = bool(_O_PATH) and os.path.isdir("/proc/self/fd")
_PROBE_FLAGS = (_O_PATH | _flag("O_CLOEXEC")) if _PROBE_BY_PATH else FILE_FLAGS
DIR_FLAGS = os.O_RDONLY | _flag("O_DIRECTORY") | _flag("O_CLOEXEC")
# Intermediate directories need only search permission; O_PATH gives exactly that.
_STEP_FLAGS = (_flag("O_PATH") or os.O_RDONLY) | _flag("O_DIRECTORY") | _flag("O_CLOEXEC")
_ROOT_FLAGS = _STEP_FLAGS

_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_RESOLVE = _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS
_SYS_OPENAT2 = 437  # same number on x86_64 and aarch64 (and every arch since 5.6)

Want = Literal["file", "dir", "any"]


class Method(StrEnum):
    """How a path is resolved beneath a root (see the module docstring)."""

    OPENAT2 = "openat2"
    WALK = "walk"
    REALPATH = "realpath"


class _Refused(Exception):
    """Internal: the lookup must fail with NotAllowed; `args[0]` is the operator detail."""


@dataclass(frozen=True, eq=False)
class Root:
    """An allowed directory: its real path (for display and comparison) and descriptor."""

    path: Path
    fd: int = field(repr=False)
    dev: int = field(repr=False)
    ino: int = field(repr=False)
    parts: tuple[str, ...] = field(init=False, repr=False)
    text: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", str(self.path))
        object.__setattr__(self, "parts", split_path(self.text))

    def display(self, rel: Sequence[str]) -> str:
        return f"{self.text}/{'/'.join(rel)}" if rel else self.text


@dataclass(eq=False)
class Opened:
    """A descriptor opened beneath `root`; `rel` is its real path relative to the root."""

    fd: int
    root: Root
    rel: tuple[str, ...]
    stat: os.stat_result

    @property
    def path(self) -> str:
        return self.root.display(self.rel)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass(frozen=True)
class Located:
    """`lstat` of a path beneath a root: the symlink itself when the last part is one."""

    root: Root
    rel: tuple[str, ...]
    stat: os.stat_result

    @property
    def path(self) -> str:
        return self.root.display(self.rel)


def split_path(path: str) -> tuple[str, ...]:
    """Components of a POSIX path exactly as typed, minus empty and `.` parts."""
    return tuple(p for p in path.split("/") if p not in ("", "."))


def open_root(path: Path) -> Root:
    """Open an allowed directory once; `path` must already be its real path."""
    fd = os.open(path, _ROOT_FLAGS)
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode):
        os.close(fd)
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path))
    return Root(path=Path(path), fd=fd, dev=st.st_dev, ino=st.st_ino)


class Confinement:
    """The allowed roots, the deny-list, and the one way to open a path beneath them."""

    def __init__(
        self,
        roots: Iterable[Path],
        deny: DenyList,
        method: Method | None = None,
    ) -> None:
        if os.name != "posix":
            raise ConfigError(
                "file tools need a POSIX system (Linux, macOS, BSD); Windows is not supported"
            )
        self.deny = deny
        self.method = method or default_method()
        self.roots: tuple[Root, ...] = tuple(open_root(Path(p)) for p in roots)
        self._narrowed: dict[tuple[int, tuple[str, ...]], Root] = {}
        self._lock = threading.Lock()
        fds = [r.fd for r in self.roots]
        self._finalizer = weakref.finalize(self, _close_all, fds, self._narrowed)

    def close(self) -> None:
        self._finalizer()

    # -- the entry point -------------------------------------------------------------

    def open(self, path: str, *, want: Want = "any", roots: Sequence[Root] | None = None) -> Opened:
        """Open `path` beneath one of `roots` (default: all configured roots).

        Raises NotAllowed (outside, denied, missing, escaping symlink), InvalidRequest
        (NUL byte, ambiguous relative path, wrong kind, a file named with a trailing
        `/`) or PolicyViolation (a FIFO, socket or device, whatever was wanted: they are
        never opened for I/O).
        """
        root, parts = self.locate(path, roots)
        # No O_DIRECTORY for directories unless the path ends with `/` (then a file is
        # ENOTDIR, as the OS says): the kind is checked after fstat, so a wrong kind gets
        # a precise message instead of a bare "not found".
        slash = _names_a_directory(path)
        flags = _PROBE_FLAGS | (_O_DIRECTORY if slash else 0)
        opened = self._open_parts(root, parts, flags, slash=slash)
        try:
            _check_kind(opened.stat, want)
            if _PROBE_BY_PATH:
                _reopen_for_reading(opened)
        except BaseException:
            opened.close()
            raise
        return opened

    def lstat(self, path: str, *, roots: Sequence[Root] | None = None) -> Located:
        """Metadata of `path` without following a final symlink (it is reported as one)."""
        root, parts = self.locate(path, roots)
        slash = _names_a_directory(path)
        if not parts or parts[-1] == ".." or slash:
            # A trailing `/` resolves a final symlink and requires a directory (POSIX).
            with self._open_parts(root, parts, DIR_FLAGS, slash=slash) as opened:
                return Located(opened.root, opened.rel, opened.stat)
        name = parts[-1]
        with self._open_parts(root, parts[:-1], _STEP_FLAGS) as parent:
            try:
                st = os.stat(name, dir_fd=parent.fd, follow_symlinks=False)
            except OSError as exc:
                raise NotAllowed(detail=f"lstat failed: {_errname(exc)}", violation=False) from None
            if self.deny.denies_name(name, is_dir=stat.S_ISDIR(st.st_mode)):
                raise NotAllowed(detail="denied name")
            return Located(parent.root, (*parent.rel, name), st)

    # -- MCP Roots ---------------------------------------------------------------------

    def narrow(self, client_paths: Iterable[str]) -> tuple[Root, ...]:
        """The intersection of the configured roots with the client's root directories.

        A client root containing a configured root keeps that root; one inside a
        configured root narrows to it (opened beneath the configured root, so it can
        never widen); one elsewhere is ignored. No client root at all intersects to
        nothing.
        """
        result: list[Root] = []
        for raw in client_paths:
            if "\0" in raw or not raw.startswith("/"):
                continue
            candidates = {split_path(raw), split_path(os.path.realpath(raw))}
            for root in self.roots:
                for cparts in candidates:
                    found = self._intersect(root, cparts)
                    if found is not None and found not in result:
                        result.append(found)
                        break
        # A narrowed root inside another kept root adds nothing.
        return tuple(r for r in result if not any(_inside(r, o) for o in result if o is not r))

    def _intersect(self, root: Root, cparts: tuple[str, ...]) -> Root | None:
        if ".." in cparts:
            return None
        rparts = root.parts
        if cparts[: len(rparts)] != rparts and rparts[: len(cparts)] != cparts:
            return None
        if len(cparts) <= len(rparts):
            return root  # the client root contains this configured root
        key = (root.fd, cparts[len(rparts) :])
        with self._lock:
            cached = self._narrowed.get(key)
            if cached is not None:
                return cached
            if len(self._narrowed) >= MAX_NARROWED_ROOTS:
                return None  # fail closed: an unopened client root narrows further
            try:
                opened = self._open_parts(root, key[1], DIR_FLAGS)
            except NotAllowed:
                return None
            if not stat.S_ISDIR(opened.stat.st_mode):
                opened.close()
                return None
            narrowed = Root(
                path=root.path.joinpath(*opened.rel),
                fd=opened.fd,
                dev=opened.stat.st_dev,
                ino=opened.stat.st_ino,
            )
            self._narrowed[key] = narrowed
            return narrowed

    # -- lexical step: which root, which components ----------------------------------

    def locate(
        self, path: str, roots: Sequence[Root] | None = None
    ) -> tuple[Root, tuple[str, ...]]:
        """Pick the root for `path` and the components beneath it, without touching disk."""
        roots = self.roots if roots is None else tuple(roots)
        if "\0" in path:
            raise InvalidRequest("path contains a NUL byte")
        if not path:
            raise InvalidRequest("path is empty")
        if not roots:
            raise NotAllowed(
                detail="no effective roots (client roots excluded every directory)",
                violation=False,
            )
        parts = split_path(path)
        if path.startswith("/"):
            best: Root | None = None
            for root in roots:
                rparts = root.parts
                if parts[: len(rparts)] == rparts and (
                    best is None or len(rparts) > len(best.parts)
                ):
                    best = root
            if best is None:
                raise NotAllowed(detail="outside roots")
            return best, parts[len(best.parts) :]
        if len(roots) > 1:
            raise InvalidRequest(
                "relative path is ambiguous with several allowed directories; "
                "give an absolute path (see list_allowed_directories)"
            )
        return roots[0], parts

    # -- resolution ------------------------------------------------------------------

    def _open_parts(
        self, root: Root, parts: Sequence[str], flags: int, *, slash: bool = False
    ) -> Opened:
        # Deny rules may differ for files and directories (denylist.py): the components
        # walked through are directories and are checked now; the last one now if it is
        # denied either way, else once fstat says what it is (O_PATH: opening it had no
        # effect).
        final = parts[-1] if parts and parts[-1] != ".." else None
        named = [p for p in parts if p != ".."]
        passed = named[:-1] if final is not None else named
        if any(self.deny.denies_name(p, is_dir=True) for p in passed) or (
            final is not None
            and self.deny.denies_name(final, is_dir=True)
            and self.deny.denies_name(final, is_dir=False)
        ):
            raise NotAllowed(detail="denied name")  # whatever it turns out to be
        try:
            fd, rel = self._resolve(root, parts, flags)
        except _Refused as exc:
            raise NotAllowed(detail=str(exc)) from None
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # resolved (inside) to a socket: cannot be opened
                raise PolicyViolation(
                    "not a regular file", detail="socket", violation=False
                ) from None
            if exc.errno == errno.ENOTDIR and slash:
                raise InvalidRequest("not a directory (the path ends with '/')") from None
            # absent or unreadable: not a policy refusal, so never counted towards a lockout
            raise NotAllowed(detail=f"open failed: {_errname(exc)}", violation=False) from None
        try:
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):  # O_PATH | O_NOFOLLOW on a link left unresolved
                raise NotAllowed(detail="open failed: ELOOP")
            is_dir = stat.S_ISDIR(st.st_mode)
            if final is not None and self.deny.denies_name(final, is_dir=is_dir):
                raise NotAllowed(detail="denied name")
            if self.deny.denies_parts(rel, last_is_dir=is_dir):
                raise NotAllowed(detail="denied name (after resolution)")
        except BaseException:
            os.close(fd)
            raise
        return Opened(fd=fd, root=root, rel=rel, stat=st)

    def _resolve(self, root: Root, parts: Sequence[str], flags: int) -> tuple[int, tuple[str, ...]]:
        if self.method is Method.OPENAT2:
            rel_text = "/".join(parts) or "."
            for _ in range(3):
                try:
                    fd = openat2(root.fd, rel_text, flags, _RESOLVE)
                except OSError as exc:
                    if exc.errno == errno.EAGAIN:
                        continue  # a concurrent rename; the kernel asks us to retry
                    if exc.errno == errno.ENOSYS:
                        self.method = Method.WALK
                    elif exc.errno not in (errno.EXDEV, errno.ELOOP, errno.EPERM):
                        raise
                    break  # the walk decides: absolute links inside, loops, seccomp
                else:
                    try:
                        return fd, _real_rel(root, fd)
                    except BaseException:
                        os.close(fd)
                        raise
        if self.method is Method.REALPATH:
            return _realpath_open(root, parts, flags)
        return walk_open(root, parts, flags)


# -- the three mechanisms ----------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


def openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    """The raw openat2(2) system call; raises OSError like os.open."""
    if _libc is None:
        raise OSError(errno.ENOSYS, "openat2 is Linux-only")
    how = _OpenHow(flags, 0, resolve)
    fd = _libc.syscall(
        ctypes.c_long(_SYS_OPENAT2),
        ctypes.c_long(dirfd),
        ctypes.c_char_p(os.fsencode(path)),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return fd


def walk_open(root: Root, parts: Sequence[str], flags: int) -> tuple[int, tuple[str, ...]]:
    """Resolve `parts` beneath `root` one `openat(O_NOFOLLOW)` at a time (see module doc)."""
    # (component, came from a symlink target): the operator detail names the culprit
    pending = [(p, False) for p in reversed(parts) if p not in ("", ".")]
    stack: list[int] = []
    names: list[str] = []
    links = steps = 0
    top_is_final = False  # whether stack[-1] was opened with the caller's flags
    try:
        while pending:
            steps += 1
            if steps > MAX_STEPS:
                raise _Refused("too many path components")
            name, spliced = pending.pop()
            if name == "..":
                if not stack:
                    raise _Refused("symlink escape" if spliced else "'..' above root")
                os.close(stack.pop())
                names.pop()
                top_is_final = False
                continue
            here = stack[-1] if stack else root.fd
            step_flags = flags if not pending else _STEP_FLAGS
            try:
                fd = os.open(name, step_flags | os.O_NOFOLLOW, dir_fd=here)
                if step_flags & _O_PATH and stat.S_ISLNK(os.fstat(fd).st_mode):
                    os.close(fd)  # O_PATH | O_NOFOLLOW opened the link itself: splice it
                    raise OSError(errno.ELOOP, "symlink")
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise
                target = _readlink(name, here)
                if target is None:
                    raise
                links += 1
                if links > MAX_SYMLINKS:
                    raise _Refused("too many symlinks") from None
                target_parts = split_path(target)
                if target.startswith("/"):
                    rparts = root.parts
                    if target_parts[: len(rparts)] != rparts:
                        raise _Refused("symlink escape") from None
                    target_parts = target_parts[len(rparts) :]
                    while stack:
                        os.close(stack.pop())
                    names.clear()
                pending.extend((p, True) for p in reversed(target_parts))
                continue
            stack.append(fd)
            names.append(name)
            top_is_final = not pending
        if stack and not top_is_final:
            last = stack.pop()
            try:
                fd = os.open(".", flags, dir_fd=last)
            finally:
                os.close(last)
            stack.append(fd)
        if not stack:
            return os.open(".", flags, dir_fd=root.fd), ()
        return stack.pop(), tuple(names)
    finally:
        for fd in stack:
            os.close(fd)


def _readlink(name: str, dir_fd: int) -> str | None:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return None


def _real_rel(root: Root, fd: int) -> tuple[str, ...]:
    """Where the kernel actually went, relative to the root (defence in depth, deny-list).

    Compared with where the root's descriptor is *now*: a root moved after startup keeps
    serving (its descriptor follows it); a root removed serves nothing."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
        base = os.readlink(f"/proc/self/fd/{root.fd}")
    except OSError:
        raise _Refused("cannot verify resolved path (/proc unavailable)") from None
    if base.endswith(" (deleted)") and not os.path.isdir(base):
        raise _Refused("allowed directory was removed")
    if real == base:
        return ()
    if not real.startswith(base.rstrip("/") + "/"):
        raise _Refused("resolved outside root")
    return split_path(real[len(base) :])


def _reopen_for_reading(opened: Opened) -> None:
    """Swap an O_PATH descriptor (already checked: a regular file or a directory) for
    one that can be read, through its /proc magic link: the same object, no lookup."""
    mode = opened.stat.st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise PolicyViolation("not a regular file", detail=describe_special(mode))
    fd = os.open(f"/proc/self/fd/{opened.fd}", FILE_FLAGS)
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (opened.stat.st_dev, opened.stat.st_ino):
        os.close(fd)
        raise NotAllowed(detail="changed while opening")
    os.close(opened.fd)
    opened.fd = fd


def _names_a_directory(path: str) -> bool:
    """Whether the path, as typed, can only name a directory (`x/`, `x/.`), as POSIX
    reads a trailing slash: `plain.txt/` is ENOTDIR, never the file."""
    return path.endswith("/") or path.endswith("/.")


def _realpath_open(root: Root, parts: Sequence[str], flags: int) -> tuple[int, tuple[str, ...]]:
    """The portable, weaker check: resolve the name, compare, then open (racy)."""
    real = os.path.realpath(os.path.join(str(root.path), *parts))
    base = str(root.path)
    if os.path.commonpath([real, base]) != base:
        raise _Refused("outside root (realpath)")
    rel = Path(real).relative_to(base).parts
    return os.open(real, flags | _flag("O_NOFOLLOW")), tuple(rel)


def default_method() -> Method:
    if _libc is not None and os.path.isdir("/proc/self/fd"):
        return Method.OPENAT2
    return Method.WALK


def _check_kind(st: os.stat_result, want: Want) -> None:
    mode = st.st_mode
    if want == "dir" and not stat.S_ISDIR(mode):
        raise InvalidRequest("not a directory")
    if want == "file":
        if stat.S_ISDIR(mode):
            raise InvalidRequest("is a directory; use list_directory")
        if not stat.S_ISREG(mode):
            raise PolicyViolation(
                "not a regular file", detail=describe_special(mode), violation=False
            )


def describe_special(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def _inside(inner: Root, outer: Root) -> bool:
    o = outer.parts
    return inner.parts[: len(o)] == o and len(inner.parts) > len(o)


def _close_all(fds: list[int], narrowed: dict[tuple[int, tuple[str, ...]], Root]) -> None:
    for fd in [*fds, *(r.fd for r in narrowed.values())]:
        with contextlib.suppress(OSError):
            os.close(fd)
    narrowed.clear()


def _errname(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, "error")
