"""The ruleset is a pure function of the settings and the runtime facts."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from mcp_fileserver.sandbox import RuntimeFacts, compute_ruleset
from mcp_fileserver.sandbox import landlock as ll
from mcp_fileserver.sandbox.ruleset import LOG_WRITE, READ, SYSTEM_READ, TEMP_WRITE
from tests.conftest import make_settings

WRITE_RIGHTS = (
    ll.FS_WRITE_FILE
    | ll.FS_MAKE_REG
    | ll.FS_MAKE_DIR
    | ll.FS_MAKE_SYM
    | ll.FS_MAKE_SOCK
    | ll.FS_MAKE_FIFO
    | ll.FS_MAKE_CHAR
    | ll.FS_MAKE_BLOCK
    | ll.FS_REMOVE_FILE
    | ll.FS_REMOVE_DIR
    | ll.FS_TRUNCATE
    | ll.FS_REFER
)


def facts(**overrides: object) -> RuntimeFacts:
    base: dict[str, object] = {
        "executable": Path("/opt/py/bin/python3.11"),
        "import_roots": (Path("/opt/py/lib/python3.11"), Path("/venv/lib/site-packages")),
    }
    base.update(overrides)
    return RuntimeFacts(**base)  # type: ignore[arg-type]


def rules_by_path(ruleset) -> dict[str, int]:
    return {str(r.path): r.access for r in ruleset.paths}


def make_db(path: Path, *, wal: bool = False) -> Path:
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t(x)")
    conn.commit()
    conn.close()
    return path


def test_files_only_configuration(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    settings = make_settings(allow=[a, b], log_dir=tmp_path / "logs")
    ruleset = compute_ruleset(settings, facts())
    rules = rules_by_path(ruleset)

    assert rules[str(a)] == READ and rules[str(b)] == READ
    assert rules[str(tmp_path / "logs")] == LOG_WRITE
    assert rules["/opt/py/bin/python3.11"] == ll.FS_READ_FILE
    assert rules["/opt/py/lib/python3.11"] == READ
    assert rules["/dev/null"] == ll.FS_READ_FILE | ll.FS_WRITE_FILE
    for path in SYSTEM_READ:
        assert rules[path] == READ
    # Nothing else, no network, and everything Landlock knows is handled (= denied).
    assert str(tmp_path) not in rules
    assert ruleset.connect_ports == ()
    assert ruleset.handled_fs == ll.fs_rights(7)
    assert ruleset.handled_net == ll.NET_BIND_TCP | ll.NET_CONNECT_TCP
    assert ruleset.scoped == ll.SCOPE_ABSTRACT_UNIX_SOCKET | ll.SCOPE_SIGNAL


def test_write_only_in_the_log_folder_and_private_temp(tmp_path: Path) -> None:
    db = make_db(tmp_path / "data.db")
    settings = make_settings(allow=[tmp_path], db=[f"d=sqlite:///{db}"], log_dir=tmp_path / "logs")
    ruleset = compute_ruleset(settings, facts(temp_dir=Path("/tmp/mcp-fileserver-1000")))
    writable = {str(r.path) for r in ruleset.paths if r.access & WRITE_RIGHTS}
    assert writable == {str(tmp_path / "logs"), "/tmp/mcp-fileserver-1000", "/dev/null"}
    assert rules_by_path(ruleset)["/tmp/mcp-fileserver-1000"] == TEMP_WRITE
    assert not any(r.access & ll.FS_MAKE_SYM for r in ruleset.paths)


def test_nothing_is_executable(tmp_path: Path) -> None:
    settings = make_settings(allow=[tmp_path], log_dir=tmp_path / "logs")
    ruleset = compute_ruleset(settings, facts())
    assert not any(r.access & (ll.FS_EXECUTE | ll.FS_IOCTL_DEV) for r in ruleset.paths)


def test_no_log_folder_when_audit_is_disabled(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[files]\nallowed_dirs = ["{tmp_path}"]\n[audit]\nenabled = false\n')
    settings = make_settings(config=config, log_dir=tmp_path / "logs")
    rules = rules_by_path(compute_ruleset(settings, facts()))
    assert str(tmp_path / "logs") not in rules
    assert not any(access & ll.FS_MAKE_REG for access in rules.values())


def test_sqlite_file_only_and_its_folder_only_for_wal(tmp_path: Path) -> None:
    plain = make_db(tmp_path / "plain.db")
    (tmp_path / "waldir").mkdir()
    wal = make_db(tmp_path / "waldir" / "wal.db", wal=True)
    settings = make_settings(db=[f"p=sqlite:///{plain}", f"w=sqlite:///{wal}"])
    gathered = RuntimeFacts.gather(settings)
    assert gathered.wal_databases == {wal}
    rules = rules_by_path(compute_ruleset(settings, facts(wal_databases=frozenset({wal}))))
    assert rules[str(plain)] == ll.FS_READ_FILE
    assert rules[str(plain) + "-journal"] == ll.FS_READ_FILE  # skipped when absent
    assert rules[str(wal)] == ll.FS_READ_FILE
    assert rules[str(wal.parent)] == ll.FS_READ_FILE  # -wal/-shm: read, never list or write
    assert str(tmp_path) not in rules


def test_postgres_ports_and_client_files(tmp_path: Path) -> None:
    settings = make_settings(
        db=[
            "a=postgresql://u@db.example:6543/x?sslrootcert=/etc/pg/ca.pem",
            "b=postgresql://u@127.0.0.1/y",
            "c=postgresql://u@localhost/z?host=/var/run/postgresql",
        ],
    )
    home = tmp_path / "home"
    ruleset = compute_ruleset(settings, facts(home=home, environ={"PGPASSFILE": "/srv/pgpass"}))
    assert ruleset.connect_ports == (5432, 6543)  # c uses a socket directory
    rules = rules_by_path(ruleset)
    for path in ("/etc/pg/ca.pem", "/srv/pgpass", str(home / ".pgpass"), "/etc/hosts"):
        assert rules[path] & ll.FS_READ_FILE, path
    assert rules["/etc/ssl/certs"] == READ
    assert "/etc/ssl" not in rules  # /etc/ssl/private stays out of reach
    assert str(home) not in rules


def test_no_network_or_resolver_files_without_postgres(tmp_path: Path) -> None:
    ruleset = compute_ruleset(make_settings(allow=[tmp_path]), facts(home=tmp_path))
    rules = rules_by_path(ruleset)
    assert ruleset.connect_ports == ()
    assert "/etc/hosts" not in rules and "/etc/passwd" not in rules
    assert str(tmp_path / ".pgpass") not in rules


def test_bundle_and_duplicates(tmp_path: Path) -> None:
    settings = make_settings(allow=[tmp_path])
    ruleset = compute_ruleset(
        settings,
        facts(
            bundle_dir=Path("/tmp/_MEI1234"),
            import_roots=(Path("/tmp/_MEI1234"), Path("/tmp/_MEI1234")),
        ),
    )
    paths = [str(r.path) for r in ruleset.paths]
    assert len(paths) == len(set(paths))
    assert rules_by_path(ruleset)["/tmp/_MEI1234"] == READ


def test_gathered_runtime_never_grants_the_working_directory_or_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sys.path may hold the current directory or a checkout; only loaded packages count."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = make_settings(allow=[tmp_path / ".."])
    gathered = RuntimeFacts.gather(settings)
    assert tmp_path not in gathered.import_roots
    assert Path.home() not in gathered.import_roots
    assert Path("/") not in gathered.import_roots
    repo = Path(__file__).resolve().parents[2]
    assert repo not in gathered.import_roots  # the editable checkout: only its package
    assert repo / "mcp_fileserver" in gathered.import_roots


def test_same_inputs_same_ruleset(tmp_path: Path) -> None:
    settings = make_settings(allow=[tmp_path], log_dir=tmp_path / "logs")
    assert compute_ruleset(settings, facts()) == compute_ruleset(settings, facts())


def test_a_symlinked_package_is_granted_where_it_really_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Landlock sees resolved paths: a package reached through a symlink is granted at
    its target, or its lazily imported submodules would be refused."""
    real = tmp_path / "src" / "sbx_linked_pkg"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sbx_linked_pkg").symlink_to(real)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "sbx_linked_pkg", raising=False)
    __import__("sbx_linked_pkg")
    try:
        roots = RuntimeFacts.gather(make_settings(allow=[tmp_path])).import_roots
    finally:
        del sys.modules["sbx_linked_pkg"]
    assert real in roots
    assert site / "sbx_linked_pkg" not in roots
