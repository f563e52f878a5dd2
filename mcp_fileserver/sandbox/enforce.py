"""Applying the sandbox to the running process, and describing what it would apply.

Order matters: the audit log folder and the private temporary folder must exist before
Landlock is on (rules are attached to open directories), no_new_privs must precede
landlock_restrict_self, and the process must still be single-threaded because Landlock
confines the calling thread and its future children only.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Literal

from mcp_fileserver.config import Settings
from mcp_fileserver.errors import ConfigError
from mcp_fileserver.sandbox import landlock as ll
from mcp_fileserver.sandbox import process
from mcp_fileserver.sandbox.report import SandboxReport
from mcp_fileserver.sandbox.ruleset import PathRule, Ruleset, RuntimeFacts, compute_ruleset

ROOT_REFUSAL = (
    "refusing to run as root: run as an unprivileged user, or pass --allow-root "
    "(MCP_FILESERVER_ALLOW_ROOT=1) if you really must"
)
ROOT_WARNING = (
    "running as root because --allow-root was given: the sandbox still confines the "
    "process, but run it as an unprivileged user where you can"
)


def refuse_root(settings: Settings) -> bool:
    """Raise `ConfigError` for root without `allow_root`; True when running as root anyway."""
    if not process.running_as_root():
        return False
    if not settings.sandbox.allow_root:
        raise ConfigError(ROOT_REFUSAL)
    return True


def plan_sandbox(settings: Settings) -> SandboxReport:
    """What `apply_sandbox` would enforce here, without changing anything (for `check`)."""
    mode = settings.sandbox.mode
    root = process.running_as_root()
    notes = (ROOT_REFUSAL,) if root and not settings.sandbox.allow_root else ()
    if mode == "off" or not process.is_linux():
        return _off(settings, root=root, notes=notes)
    abi = ll.abi_version()
    facts = RuntimeFacts.gather(settings, temp_dir=_planned_temp_dir(settings))
    ruleset = compute_ruleset(settings, facts)
    created_at_start = {settings.log_dir, facts.temp_dir}
    skipped = tuple(
        {"path": str(rule.path), "reason": "does not exist"}
        for rule in ruleset.paths
        if rule.path not in created_at_start and not os.path.exists(rule.path)
    )
    enforced, missing = _features(abi)
    enforced = ["no_new_privs", "core dumps disabled", *enforced]
    if root and settings.sandbox.allow_root:
        enforced.append(
            f"root capabilities dropped except {', '.join(process.KEPT_CAPABILITY_NAMES)}"
        )
    return SandboxReport(
        mode=mode,
        status="planned" if abi or mode == "on" else "unavailable",
        landlock_abi=abi,
        enforced=tuple(enforced),
        not_enforced=tuple(missing),
        ruleset=ruleset.as_dict(),
        skipped_paths=skipped,
        temp_dir=str(facts.temp_dir) if facts.temp_dir else None,
        running_as_root=root,
        notes=notes,
    )


def apply_sandbox(settings: Settings) -> SandboxReport:
    """Confine this process for the rest of its life; raise `ConfigError` when `require`
    cannot be met. Call once, after every import and before serving."""
    mode = settings.sandbox.mode
    root = process.running_as_root()
    if mode == "off":
        return _off(settings, root=root)
    if not process.is_linux():
        if mode == "require":
            raise ConfigError(
                f"--sandbox require: the sandbox needs Linux (Landlock); this is {sys.platform}"
            )
        return _off(settings, root=root)
    abi = ll.abi_version()
    if abi == 0 and mode == "require":
        raise ConfigError(
            "--sandbox require: this kernel does not offer Landlock (Linux 5.13+ with "
            "landlock in the lsm= boot list, not blocked by seccomp); use --sandbox on to "
            "run without it"
        )

    enforced: list[str] = []
    missing: list[str] = []
    threads = process.thread_count()
    if threads > 1:
        message = f"{threads - 1} thread(s) started before the sandbox are not confined"
        if mode == "require":
            raise ConfigError(f"--sandbox require: {message}")
        missing.append(message)

    if settings.audit.enabled:
        _ensure_private_dir(settings.log_dir)
    temp_dir = _make_temp_dir(settings)
    facts = RuntimeFacts.gather(settings, temp_dir=temp_dir)
    ruleset = compute_ruleset(settings, facts)

    process.disable_core_dumps()
    enforced.append("core dumps disabled")
    process.set_no_new_privs()
    enforced.append("no_new_privs")
    if root:
        process.drop_capabilities()
        kept = ", ".join(process.KEPT_CAPABILITY_NAMES)
        enforced.append(f"root capabilities dropped except {kept}")

    if temp_dir is None and _needs_temp_dir(settings):
        missing.append(
            f"no private temporary folder ({_temp_dir_path()} unusable): SQLite sorts "
            "too big for memory will fail"
        )

    features, unsupported, skipped = _apply_landlock(ruleset, abi, require=mode == "require")
    enforced += features
    missing += unsupported
    status: Literal["enforced", "partial"] = "enforced" if features and not missing else "partial"
    return SandboxReport(
        mode=mode,
        status=status,
        landlock_abi=abi,
        enforced=tuple(enforced),
        not_enforced=tuple(missing),
        ruleset=ruleset.as_dict(),
        skipped_paths=tuple(skipped),
        temp_dir=str(temp_dir) if temp_dir else None,
        running_as_root=root,
    )


class _EssentialRuleFailed(Exception):
    pass


def _apply_landlock(
    ruleset: Ruleset, abi: int, *, require: bool
) -> tuple[list[str], list[str], list[dict[str, str]]]:
    """Enforce the ruleset: (what is enforced, what is not, rules skipped)."""
    if abi == 0:
        return [], _features(0)[1], []
    try:
        skipped = _enforce_landlock(ruleset, abi)
    except _EssentialRuleFailed as exc:
        if require:
            raise ConfigError(f"--sandbox require: {exc}") from None
        return [], [f"Landlock: not applied, {exc}"], []
    enforced, missing = _features(abi)
    if not _outside_is_refused():
        if require:
            raise ConfigError("--sandbox require: Landlock did not take effect")
        return [], [*missing, "Landlock: applied but a self-test listing of / succeeded"], skipped
    return enforced, missing, skipped


def _enforce_landlock(ruleset: Ruleset, abi: int) -> list[dict[str, str]]:
    """Build the kernel ruleset (masked to `abi`) and restrict this thread with it."""
    handled_fs = ruleset.handled_fs & ll.fs_rights(abi)
    handled_net = ruleset.handled_net & ll.net_rights(abi)
    scoped = ruleset.scoped & ll.scopes(abi)
    skipped: list[dict[str, str]] = []
    ruleset_fd = ll.create_ruleset(abi, handled_fs, handled_net, scoped)
    try:
        for rule in ruleset.paths:
            problem = _add_path_rule(ruleset_fd, rule, handled_fs)
            if problem is None:
                continue
            if rule.essential:
                raise _EssentialRuleFailed(f"cannot grant {rule.reason} {rule.path}: {problem}")
            skipped.append({"path": str(rule.path), "reason": problem})
        if handled_net:
            for port in ruleset.connect_ports:
                ll.add_port_rule(ruleset_fd, port, ll.NET_CONNECT_TCP)
        ll.restrict_self(ruleset_fd, 0)
    finally:
        os.close(ruleset_fd)
    return skipped


def _add_path_rule(ruleset_fd: int, rule: PathRule, handled_fs: int) -> str | None:
    """Attach one rule; a short reason when the path cannot carry one (e.g. missing)."""
    try:
        fd = os.open(rule.path, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        return "does not exist" if isinstance(exc, FileNotFoundError) else exc.strerror
    try:
        access = rule.access & handled_fs
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= ll.FS_FILE_RIGHTS
        if access:
            ll.add_path_rule(ruleset_fd, fd, access)
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        os.close(fd)
    return None


def _features(abi: int) -> tuple[list[str], list[str]]:
    """What Landlock at this ABI confines, and what it cannot."""
    if abi == 0:
        return [], ["Landlock: not offered by this kernel (no file or network confinement)"]
    enforced = [f"Landlock filesystem (ABI {abi}): read, write and execute confined"]
    missing: list[str] = []
    if abi < 2:
        missing.append("Landlock ABI < 2: renaming or linking across folders is always denied")
    if abi < 3:
        missing.append("truncating files: needs Landlock ABI 3")
    if abi >= 4:
        enforced.append("TCP: no bind, connect only to configured PostgreSQL ports")
    else:
        missing.append("TCP bind/connect restrictions: need Landlock ABI 4 (Linux 6.7)")
    if abi >= 5:
        enforced.append("device ioctl denied")
    else:
        missing.append("device ioctl restrictions: need Landlock ABI 5 (Linux 6.10)")
    if abi >= 6:
        enforced.append("IPC scoped: no abstract UNIX sockets or signals outside the sandbox")
    else:
        missing.append("abstract UNIX socket and signal scoping: need Landlock ABI 6 (Linux 6.12)")
    if abi >= 7:
        enforced.append("denials logged by the kernel audit subsystem (when auditing is on)")
    return enforced, missing


def _outside_is_refused() -> bool:
    """Self-test: nothing grants the filesystem root, so listing it must now fail."""
    try:
        fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except PermissionError:
        return True
    os.close(fd)
    return False


def _ensure_private_dir(path: Path) -> None:
    """The audit log folder must exist before Landlock is on; create it owner-only."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"audit log folder {path} cannot be created: {exc.strerror or exc}"
        ) from None


def _planned_temp_dir(settings: Settings) -> Path | None:
    return _temp_dir_path() if _needs_temp_dir(settings) else None


def _needs_temp_dir(settings: Settings) -> bool:
    """SQLite spills big sorts and temporary b-trees to files; nothing else writes temp."""
    return any(db.engine == "sqlite" for db in settings.databases)


def _temp_dir_path() -> Path:
    return Path(tempfile.gettempdir()) / f"mcp-fileserver-{os.getuid()}"


def _make_temp_dir(settings: Settings) -> Path | None:
    """A private folder for SQLite's temporary files, or None when it cannot be had.

    One stable owner-only folder per user (like tmux's): SQLite unlinks its temporary
    files as soon as it opens them, so nothing accumulates, and no per-run folder is
    left behind (removing it would need rights on the system temp folder itself).
    """
    if not _needs_temp_dir(settings):
        return None
    path = _temp_dir_path()
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None  # squatted or too open: better no temporary files than shared ones
    if not _point_sqlite_at(path):
        return None
    tempfile.tempdir = str(path)
    return path


def _point_sqlite_at(path: Path) -> bool:
    """Make SQLite put temporary files in `path` process-wide.

    SQLite reads SQLITE_TMPDIR/TMPDIR once, when the library initialises (at import),
    so the environment is too late here; the temp_store_directory pragma sets the
    process-wide `sqlite3_temp_directory` that every connection uses.
    """
    quoted = str(path).replace("'", "''")
    try:
        with closing(sqlite3.connect(":memory:")) as conn:
            conn.execute(f"PRAGMA temp_store_directory = '{quoted}'")
            row = conn.execute("PRAGMA temp_store_directory").fetchone()
    except sqlite3.Error:
        return False
    return row is not None and row[0] == str(path)


def _off(settings: Settings, *, root: bool, notes: tuple[str, ...] = ()) -> SandboxReport:
    if settings.sandbox.mode == "off":
        reason = "disabled by configuration (sandbox mode off)"
    else:
        reason = f"not available on {sys.platform}: the sandbox uses Linux Landlock"
    return SandboxReport(
        mode=settings.sandbox.mode,
        status="off",
        not_enforced=(reason,),
        running_as_root=root,
        notes=notes,
    )
