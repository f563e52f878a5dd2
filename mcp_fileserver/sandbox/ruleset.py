"""The ruleset: a pure function of the settings and a few facts about the runtime.

`compute_ruleset(settings, facts)` says everything the server process may still touch
once the sandbox is on; anything not listed is refused by the kernel. The rights use
the newest Landlock vocabulary; `enforce.py` masks them down to what the kernel offers.
Keeping this pure (no filesystem access, no syscalls) lets `check` print it, lets tests
compute exactly what the server applies, and keeps the policy readable in one place.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from mcp_fileserver.config import DatabaseConfig, Settings
from mcp_fileserver.sandbox import landlock as ll

READ: Final = ll.FS_READ_FILE | ll.FS_READ_DIR
READ_FILE: Final = ll.FS_READ_FILE
# The audit log folder: append, rotate (rename within the folder), compress, prune.
LOG_WRITE: Final = (
    READ | ll.FS_WRITE_FILE | ll.FS_MAKE_REG | ll.FS_REMOVE_FILE | ll.FS_TRUNCATE | ll.FS_REFER
)
TEMP_WRITE: Final = LOG_WRITE | ll.FS_MAKE_DIR | ll.FS_REMOVE_DIR
DEV_NULL: Final = ll.FS_READ_FILE | ll.FS_WRITE_FILE

# What the interpreter and its C libraries may load after startup: shared libraries
# (dlopen of extension modules, NSS, iconv), the loader cache and time zone data.
SYSTEM_READ: Final = (
    "/usr/lib",
    "/usr/lib64",
    "/lib",
    "/lib64",
    "/usr/local/lib",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/usr/share/zoneinfo",
)
# What a PostgreSQL connection needs: name resolution and TLS trust anchors (certificate
# symlinks in /etc/ssl/certs point into /usr/share/ca-certificates). /etc/passwd lets libpq
# find the default user name; it is world-readable and holds no secrets.
NETWORK_READ: Final = (
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/passwd",
    "/etc/group",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
    "/etc/pki/tls/certs",
    "/etc/pki/ca-trust/extracted",  # Fedora/RHEL: what /etc/pki/tls/certs links to
    "/etc/ssl/cert.pem",  # Alpine, macOS-style single bundle
)
# libpq connection options and environment variables that name files it reads.
PG_FILE_OPTIONS: Final = ("sslrootcert", "sslcert", "sslkey", "sslcrl", "sslcrldir", "passfile")
PG_FILE_ENV: Final = (
    "PGPASSFILE",
    "PGSERVICEFILE",
    "PGSYSCONFDIR",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGSSLCRL",
    "PGSSLCRLDIR",
)


@dataclass(frozen=True)
class PathRule:
    """Allow `access` (Landlock rights) on `path` and, for a directory, beneath it."""

    path: Path
    access: int
    reason: str
    essential: bool = False  # without it the server cannot do its job


@dataclass(frozen=True)
class Ruleset:
    """Everything the process may touch once sandboxed; the kernel refuses the rest."""

    paths: tuple[PathRule, ...]
    connect_ports: tuple[int, ...]
    # Handle every right we know: whatever is not granted above is denied.
    handled_fs: int = ll.fs_rights(99)
    handled_net: int = ll.NET_BIND_TCP | ll.NET_CONNECT_TCP
    scoped: int = ll.SCOPE_ABSTRACT_UNIX_SOCKET | ll.SCOPE_SIGNAL

    def as_dict(self) -> dict[str, object]:
        return {
            "paths": [
                {"path": str(r.path), "access": ll.right_names(r.access), "reason": r.reason}
                for r in self.paths
            ],
            "tcp_connect_ports": list(self.connect_ports),
            "tcp_bind_ports": [],
        }


@dataclass(frozen=True)
class RuntimeFacts:
    """What the running interpreter needs to keep working; `gather()` reads them once."""

    executable: Path | None
    import_roots: tuple[Path, ...]
    bundle_dir: Path | None = None  # sys._MEIPASS in the PyInstaller build
    home: Path | None = None
    temp_dir: Path | None = None
    wal_databases: frozenset[Path] = frozenset()
    environ: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def gather(cls, settings: Settings, *, temp_dir: Path | None = None) -> RuntimeFacts:
        home = os.environ.get("HOME")
        return cls(
            executable=_real(sys.executable) if sys.executable else None,
            import_roots=_import_roots(),
            bundle_dir=_real(meipass) if (meipass := getattr(sys, "_MEIPASS", None)) else None,
            home=Path(home) if home else None,
            temp_dir=temp_dir,
            wal_databases=frozenset(
                db.path
                for db in settings.databases
                if db.engine == "sqlite" and db.path is not None and _is_wal(db.path)
            ),
            environ={k: v for k, v in os.environ.items() if k in PG_FILE_ENV},
        )


def compute_ruleset(settings: Settings, facts: RuntimeFacts) -> Ruleset:
    """The exact rules the server applies for these settings on this runtime."""
    rules: list[PathRule] = []

    def grant(
        paths: Iterable[Path | str], access: int, reason: str, *, essential: bool = False
    ) -> None:
        rules.extend(PathRule(Path(p), access, reason, essential) for p in paths)

    grant(settings.allowed_dirs, READ, "allowed directory", essential=True)
    for db in settings.databases:
        if db.engine == "sqlite" and db.path is not None:
            grant([db.path], READ_FILE, f"SQLite database {db.name}", essential=True)
            # A reader opens a non-empty rollback journal to see whether it is hot; in
            # PERSIST mode one always stays beside the database (missing ones are skipped).
            journal = db.path.with_name(db.path.name + "-journal")
            grant([journal], READ_FILE, f"SQLite database {db.name} (journal)")
            if db.path in facts.wal_databases:
                # WAL readers open the -wal and -shm files, which come and go with writers.
                grant([db.path.parent], READ_FILE, f"SQLite database {db.name} (WAL files)")
    if settings.audit.enabled:
        grant([settings.log_dir], LOG_WRITE, "audit log folder", essential=True)
    if facts.temp_dir is not None:
        grant([facts.temp_dir], TEMP_WRITE, "private temporary folder")

    if facts.executable is not None:
        grant([facts.executable], READ_FILE, "Python runtime (executable)")
    if facts.bundle_dir is not None:
        grant([facts.bundle_dir], READ, "Python runtime (bundle)")
    grant(facts.import_roots, READ, "Python runtime (modules)")
    grant(SYSTEM_READ, READ, "system libraries and time zones")
    grant(["/dev/null"], DEV_NULL, "system (/dev/null)")
    grant(["/dev/urandom"], READ_FILE, "system (/dev/urandom)")

    postgres = [db for db in settings.databases if db.engine == "postgresql"]
    if postgres:
        grant(NETWORK_READ, READ, "PostgreSQL (name resolution, TLS roots)")
        grant(_pg_client_files(postgres, facts), READ, "PostgreSQL client files")

    mysql = [db for db in settings.databases if db.engine in ("mariadb", "mysql")]
    if mysql:
        grant(NETWORK_READ, READ, "MariaDB/MySQL (name resolution, TLS roots)")
        grant(_mysql_client_files(mysql), READ, "MariaDB/MySQL TLS files")
    ports = sorted({*_pg_ports(postgres), *_mysql_ports(mysql)})
    return Ruleset(paths=_dedupe(rules), connect_ports=tuple(ports))


def _mysql_ports(databases: Iterable[DatabaseConfig]) -> tuple[int, ...]:
    """TCP ports of the MariaDB/MySQL servers; one reached by unix_socket needs none."""
    return tuple(db.port for db in databases if db.port and "unix_socket" not in dict(db.options))


def _mysql_client_files(databases: Iterable[DatabaseConfig]) -> list[Path]:
    return [
        Path(value)
        for db in databases
        for key, value in db.options
        if key in ("ssl_ca", "ssl_cert", "ssl_key") and value.startswith("/")
    ]


def _pg_ports(databases: Iterable[DatabaseConfig]) -> tuple[int, ...]:
    """TCP ports of the configured servers; a socket-directory host needs none."""
    ports = set()
    for db in databases:
        options = dict(db.options)
        host = options.get("host", db.host or "")
        if host.startswith("/") and "hostaddr" not in options:
            continue
        port = options.get("port") or db.port or 5432
        for part in str(port).split(","):  # libpq allows one port per host in a list
            if part.strip().isdigit():
                ports.add(int(part))
    return tuple(sorted(ports))


def _pg_client_files(databases: Iterable[DatabaseConfig], facts: RuntimeFacts) -> list[Path]:
    files: list[Path] = []
    for db in databases:
        files.extend(Path(v) for k, v in db.options if k in PG_FILE_OPTIONS and v.startswith("/"))
    files.extend(Path(v) for k, v in facts.environ.items() if k in PG_FILE_ENV and v)
    if facts.home is not None:
        files += [facts.home / ".pgpass", facts.home / ".pg_service.conf"]
        files.append(facts.home / ".postgresql")  # default client certificate and root.crt
    return files


def _dedupe(rules: Iterable[PathRule]) -> tuple[PathRule, ...]:
    """One rule per path, rights merged, first reason kept, order preserved."""
    merged: dict[Path, PathRule] = {}
    for rule in rules:
        if rule.path in merged:
            first = merged[rule.path]
            merged[rule.path] = PathRule(
                rule.path,
                first.access | rule.access,
                first.reason,
                first.essential or rule.essential,
            )
        else:
            merged[rule.path] = rule
    return tuple(merged.values())


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


def _import_roots() -> tuple[Path, ...]:
    """Where modules may still be imported from: stdlib, site-packages, loaded packages.

    sys.path entries outside the interpreter's own folders (the current directory, an
    editable checkout) are not granted wholesale; only the packages already loaded from
    them are, so a project folder's other files stay out of reach.
    """
    roots = _wholesale_roots()
    real_parents: dict[str, str] = {}

    def resolve(path: str) -> str:
        """realpath, resolving each distinct parent folder once (hundreds of modules)."""
        parent, name = os.path.split(path)
        if parent not in real_parents:
            real_parents[parent] = os.path.realpath(parent)
        joined = os.path.join(real_parents[parent], name)
        return os.path.realpath(joined) if os.path.islink(joined) else joined

    for name, module in list(sys.modules.items()):
        if "." in name:
            continue
        location = _module_location(module)
        if location is None:
            continue
        # Resolved, since Landlock sees the real path (a symlinked package, say).
        location = resolve(location)
        if not _beneath(location, roots):
            roots.append(location)
    return tuple(Path(p) for p in dict.fromkeys(roots))


def _wholesale_roots() -> list[str]:
    """The import folders granted whole: the standard library and site-packages."""
    prefixes = {os.path.realpath(p) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}}
    roots: list[str] = []
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if value := sysconfig.get_paths().get(key):
            roots.append(os.path.realpath(value))
    for entry in sys.path:
        if not entry:
            continue
        real = os.path.realpath(entry)
        if _beneath(real, prefixes) or os.path.basename(real) in ("site-packages", "dist-packages"):
            roots.append(real)
    return roots


def importable_once_sandboxed(package: str) -> bool:
    """Whether the top-level `package` can still be imported after the sandbox is on,
    without importing it now: it is already loaded, or bundled in the frozen build, or
    found in a folder the ruleset grants whole (the standard library, site-packages),
    together with whatever sits beside it there (a compiled build's shared helper
    module, a wheel's bundled libraries). A package found only elsewhere (a PYTHONPATH
    folder) is not: only packages already loaded are granted from such folders."""
    if package in sys.modules:
        return True
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if getattr(sys, "frozen", False):
        return True  # the bundle and the executable are granted whole
    locations = list(spec.submodule_search_locations or ()) or [spec.origin or ""]
    roots = _wholesale_roots()
    return all(location and _beneath(os.path.realpath(location), roots) for location in locations)


def _beneath(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _module_location(module: object) -> str | None:
    paths = getattr(module, "__path__", None)
    if paths:
        try:
            first = next(iter(paths))
        except (StopIteration, TypeError):
            return None
        return first if isinstance(first, str) else None
    file = getattr(module, "__file__", None)
    return file if isinstance(file, str) else None


def _is_wal(path: Path) -> bool:
    """SQLite header bytes 18-19 are 2 in WAL mode."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[:16] == b"SQLite format 3\x00" and header[18] == 2
