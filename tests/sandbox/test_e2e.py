"""The real server over stdio with `--sandbox require`: every tool still works, the
canary never appears, log rotation and compression still work, and the process, the
start record and `check` all say what is enforced."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client

from mcp_fileserver.audit.files import list_log_files, read_lines
from mcp_fileserver.audit.verify import verify_folder
from tests.conftest import stdio_transport, wal_database
from tests.sandbox.child import ABI
from tests.sql.mariadb_server import ED25519, start_server, stop_server
from tests.sql.pg_cluster import start_cluster, stop_cluster

pytestmark = pytest.mark.skipif(ABI < 1, reason="the kernel offers no Landlock")

CANARY = "CANARY-" + uuid.uuid4().hex
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("sandbox-e2e")
    root = base / "root"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_text("hello world\n")
    (root / "sub" / "notes.md").write_text("# notes\nneedle here\n")
    (root / "image.png").write_bytes(PNG)
    outside = base / "outside"
    outside.mkdir()
    (outside / "canary.txt").write_text(CANARY)
    (root / "escape.txt").symlink_to(outside / "canary.txt")
    db = base / "data" / "shop.db"
    db.parent.mkdir()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT)")
    # Enough distinct text that DISTINCT spills past SQLite's default 2 MB page cache
    # into a temporary file: the private temp folder has to work under Landlock.
    conn.executemany(
        "INSERT INTO books (title) VALUES (?)", ((f"{i:08d}" + "x" * 300,) for i in range(20000))
    )
    conn.commit()
    conn.close()
    # PERSIST journal mode leaves a non-empty -journal beside the database for good;
    # readers must be able to open it to see that it is not hot.
    persist = base / "data" / "persist.db"
    conn = sqlite3.connect(persist)
    conn.execute("PRAGMA journal_mode=PERSIST")
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.execute("INSERT INTO t VALUES (42)")
    conn.commit()
    conn.close()
    assert (base / "data" / "persist.db-journal").stat().st_size > 0
    config = base / "server.toml"
    config.write_text(
        f"""
[files]
allowed_dirs = ["{root}"]

[databases.shop]
url = "sqlite:///{db}"
max_rows = 5

[databases.persist]
url = "sqlite:///{persist}"

[audit]
log_dir = "{base / "audit"}"
rotation_bytes = 2048
compression = "gz"
""",
        encoding="utf-8",
    )
    return {"base": base, "root": root, "outside": outside, "db": db, "config": config}


def tool_calls(root: Path) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("list_allowed_directories", {}),
        ("list_directory", {"path": str(root)}),
        ("directory_tree", {"path": str(root)}),
        ("read_text_file", {"path": str(root / "hello.txt")}),
        ("read_multiple_files", {"paths": [str(root / "hello.txt"), str(root / "sub/notes.md")]}),
        ("read_media_file", {"path": str(root / "image.png")}),
        ("get_file_info", {"path": str(root / "hello.txt")}),
        ("search_files", {"path": str(root), "pattern": "*.md"}),
        ("search_file_contents", {"path": str(root), "pattern": "needle"}),
        ("list_databases", {}),
        ("list_tables", {"database": "shop"}),
        ("describe_table", {"database": "shop", "table": "books"}),
        ("run_query", {"database": "shop", "sql": "SELECT title FROM books WHERE id = 1"}),
        (
            "run_query",
            {"database": "shop", "sql": "SELECT count(*) FROM (SELECT DISTINCT title FROM books)"},
        ),
        ("explain_query", {"database": "shop", "sql": "SELECT * FROM books ORDER BY title"}),
        ("run_query", {"database": "persist", "sql": "SELECT x FROM t"}),
    ]


def server_pid(marker: str) -> int:
    """The server's pid, found by a unique argument on its command line."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in cmdline and b"mcp_fileserver" in cmdline:
            return int(entry)
    raise AssertionError("server process not found")


def proc_field(pid: int, name: str, file: str = "status") -> str:
    for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
        if line.startswith(name):
            return line[len(name) :].strip(" :\t")
    raise AssertionError(f"{name} not in /proc/{pid}/{file}")


@pytest.fixture(scope="module")
def session(workspace: dict[str, Path]) -> dict[str, Any]:
    """Run every tool once under `--sandbox require`; collect results and process facts."""
    return asyncio.run(run_session(workspace))


async def run_session(workspace: dict[str, Path]) -> dict[str, Any]:
    root = workspace["root"]
    transport = stdio_transport(
        "--config", str(workspace["config"]), "--sandbox", "require", cwd=workspace["base"]
    )
    results: list[tuple[str, Any]] = []
    async with Client(transport) as client:
        for name, args in tool_calls(root):
            results.append((name, await client.call_tool(name, args, raise_on_error=False)))
        refusals = [
            await client.call_tool("read_text_file", {"path": str(path)}, raise_on_error=False)
            for path in (
                workspace["outside"] / "canary.txt",
                root / "escape.txt",
                root / ".." / "outside" / "canary.txt",
            )
        ]
        pid = server_pid(str(workspace["config"]))
        process = {
            "no_new_privs": proc_field(pid, "NoNewPrivs"),
            "core_limit": proc_field(pid, "Max core file size", "limits").split()[:2],
            "cap_bounding": int(proc_field(pid, "CapBnd"), 16),
            "cap_effective": int(proc_field(pid, "CapEff"), 16),
        }
    return {"results": results, "refusals": refusals, "process": process}


def text_of(result: Any) -> str:
    parts = [json.dumps(result.structured_content)] if result.structured_content else []
    parts += [getattr(block, "text", "") for block in result.content]
    return " ".join(parts)


def test_every_tool_works_under_the_sandbox(session: dict[str, Any]) -> None:
    failed = {name: text_of(r)[:200] for name, r in session["results"] if r.is_error}
    assert failed == {}
    by_name = dict(session["results"])
    assert "hello world" in text_of(by_name["read_text_file"])
    assert "needle here" in text_of(by_name["search_file_contents"])
    counts = [r for name, r in session["results"] if name == "run_query"]
    assert counts[1].structured_content["rows"] == [[20000]]  # DISTINCT spilled to temp
    assert counts[2].structured_content["rows"] == [[42]]  # beside a persistent journal


def test_outside_paths_are_refused_and_the_canary_never_appears(
    session: dict[str, Any],
) -> None:
    assert all(r.is_error for r in session["refusals"])
    everything = " ".join(text_of(r) for _, r in session["results"])
    everything += " ".join(text_of(r) for r in session["refusals"])
    assert CANARY not in everything


def test_process_is_hardened(session: dict[str, Any]) -> None:
    assert session["process"]["no_new_privs"] == "1"
    assert session["process"]["core_limit"] == ["0", "0"]
    if os.geteuid() == 0:  # tests run as root in CI, with MCP_FILESERVER_ALLOW_ROOT=1
        assert session["process"]["cap_bounding"] == 0b1110
        assert session["process"]["cap_effective"] == 0b1110


def audit_records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in list_log_files(folder) for line in read_lines(f.path)]


def test_log_rotation_and_compression_work_confined(
    session: dict[str, Any], workspace: dict[str, Path]
) -> None:
    folder = workspace["base"] / "audit"
    files = list_log_files(folder)
    assert any(f.compressed for f in files), [f.path.name for f in files]
    records = audit_records(folder)
    calls = [r for r in records if r["event"] == "tool_call"]
    assert len(calls) == len(session["results"]) + len(session["refusals"])
    verdict = verify_folder(folder, None)
    assert verdict.ok, verdict.summary()


def test_start_record_says_what_was_enforced(
    session: dict[str, Any], workspace: dict[str, Path]
) -> None:
    records = audit_records(workspace["base"] / "audit")
    start = next(r for r in records if r["event"] == "server_start")
    sandbox = start["sandbox"]
    assert sandbox["mode"] == "require"
    assert sandbox["status"] == "enforced"
    assert sandbox["landlock_abi"] == ABI
    assert "no_new_privs" in sandbox["enforced"]
    rules = {rule["path"]: rule for rule in sandbox["ruleset"]["paths"]}
    assert rules[str(workspace["root"])]["access"] == ["read_file", "read_dir"]
    assert rules[str(workspace["db"])]["access"] == ["read_file"]
    assert str(workspace["outside"]) not in rules


def test_check_prints_what_would_be_enforced(workspace: dict[str, Path]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mcp_fileserver",
            "check",
            "--config",
            str(workspace["config"]),
            "--db",
            "pg=postgresql://reader@127.0.0.1:6543/app",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)["sandbox_plan"]
    assert plan["mode"] == "on"  # the default
    assert plan["landlock_abi"] == ABI
    assert plan["ruleset"]["tcp_connect_ports"] == [6543]
    rules = {rule["path"]: rule["reason"] for rule in plan["ruleset"]["paths"]}
    assert rules[str(workspace["root"])] == "allowed directory"
    assert rules[str(workspace["base"] / "audit")] == "audit log folder"
    if os.geteuid() == 0:
        assert any("refusing to run as root" in note for note in plan["notes"])


@pytest.mark.skipif(os.geteuid() != 0, reason="only root is refused")
def test_root_is_refused_without_allow_root(workspace: dict[str, Path]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    proc = subprocess.run(
        [sys.executable, "-m", "mcp_fileserver", "--config", str(workspace["config"])],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("mcp-fileserver: error: refusing to run as root")
    )


def test_postgresql_under_the_sandbox(tmp_path: Path) -> None:
    """TCP to the configured PostgreSQL port (name resolution, SCRAM auth, queries) works
    confined, and the start record names that port and no other."""
    cluster = start_cluster()
    try:
        transport = stdio_transport(
            "--db",
            f"pg={cluster.url().replace('127.0.0.1', 'localhost')}",
            "--log-dir",
            str(tmp_path / "audit"),
            "--sandbox",
            "require",
            env={"PG_READER_PASSWORD": cluster.reader_password},
        )

        async def run() -> list[Any]:
            async with Client(transport) as client:
                return [
                    await client.call_tool(name, args, raise_on_error=False)
                    for name, args in (
                        ("list_tables", {"database": "pg"}),
                        ("describe_table", {"database": "pg", "table": "books"}),
                        ("run_query", {"database": "pg", "sql": "SELECT count(*) FROM big"}),
                        ("explain_query", {"database": "pg", "sql": "SELECT * FROM books"}),
                    )
                ]

        results = asyncio.run(run())
    finally:
        stop_cluster(cluster)
    assert [text_of(r)[:200] for r in results if r.is_error] == []
    assert results[2].structured_content["rows"] == [[50000]]
    start = next(r for r in audit_records(tmp_path / "audit") if r["event"] == "server_start")
    assert start["sandbox"]["status"] == "enforced"
    assert start["sandbox"]["ruleset"]["tcp_connect_ports"] == [cluster.port]
    assert cluster.reader_password not in json.dumps(start)


def test_mariadb_under_the_sandbox(tmp_path: Path) -> None:
    """TCP to the configured MariaDB port, and a server reached by its UNIX socket, work
    confined (side connections for KILL QUERY included); the start record names the TCP
    port and no other."""
    server = start_server()
    try:
        socket_url = (
            f"mariadb://reader:${{MARIADB_TEST_PASSWORD}}@localhost/shop"
            f"?unix_socket={server.socket_path}"
        )
        transport = stdio_transport(
            "--db",
            f"maria={server.url().replace('127.0.0.1', 'localhost')}",
            "--db",
            f"local={socket_url}",
            "--db",  # ed25519: libmariadb dlopens client_ed25519.so from its plugin folder
            f"ed={server.url(ED25519, 'MARIADB_ED_PASSWORD').replace('127.0.0.1', 'localhost')}",
            "--log-dir",
            str(tmp_path / "audit"),
            "--sandbox",
            "require",
            env={
                "MARIADB_TEST_PASSWORD": server.passwords["reader"],
                "MARIADB_ED_PASSWORD": server.passwords[ED25519],
            },
        )

        async def run() -> list[Any]:
            async with Client(transport) as client:
                return [
                    await client.call_tool(name, args, raise_on_error=False)
                    for name, args in (
                        ("list_tables", {"database": "maria"}),
                        ("describe_table", {"database": "maria", "table": "orders"}),
                        ("run_query", {"database": "maria", "sql": "SELECT COUNT(*) FROM big"}),
                        ("run_query", {"database": "maria", "sql": "SELECT n FROM big"}),
                        ("explain_query", {"database": "maria", "sql": "SELECT * FROM orders"}),
                        ("run_query", {"database": "local", "sql": "SELECT COUNT(*) FROM big"}),
                        ("run_query", {"database": "ed", "sql": "SELECT COUNT(*) FROM big"}),
                    )
                ]

        results = asyncio.run(run())
    finally:
        stop_server(server)
    assert [text_of(r)[:200] for r in results if r.is_error] == []
    assert results[2].structured_content["rows"] == [[50000]]
    assert results[3].structured_content["truncated_reason"] == "max_rows"  # KILL QUERY ran
    assert results[5].structured_content["rows"] == [[50000]]
    assert results[6].structured_content["rows"] == [[50000]]
    start = next(r for r in audit_records(tmp_path / "audit") if r["event"] == "server_start")
    assert start["sandbox"]["status"] == "enforced"
    assert start["sandbox"]["ruleset"]["tcp_connect_ports"] == [server.port]
    assert server.passwords["reader"] not in json.dumps(start)


def test_wal_database_read_before_during_and_after_a_writer(tmp_path: Path) -> None:
    """A WAL database's -wal/-shm files appear and vanish with writers; the read-only
    grant on its folder lets the confined server follow them."""
    folder = tmp_path / "wal"
    folder.mkdir()
    db = wal_database(folder / "live.db")
    assert sorted(p.name for p in folder.iterdir()) == ["live.db"]
    transport = stdio_transport(
        "--db", f"live=sqlite:///{db}", "--log-dir", str(tmp_path / "audit"), "--sandbox", "require"
    )

    async def run() -> list[Any]:
        counts = []
        async with Client(transport) as client:

            async def count() -> Any:
                result = await client.call_tool(
                    "run_query", {"database": "live", "sql": "SELECT count(*) FROM t"}
                )
                return result.structured_content["rows"][0][0]

            counts.append(await count())  # no writer: read immutable
            writer = sqlite3.connect(db)
            writer.execute("INSERT INTO t VALUES (2)")
            writer.commit()
            counts.append(await count())  # through the writer's -wal and -shm
            writer.execute("INSERT INTO t VALUES (3)")
            writer.commit()
            counts.append(await count())
            writer.close()
            counts.append(await count())  # after the writer is gone
        return counts

    assert asyncio.run(run()) == [1, 2, 3, 3]
    assert {p.name for p in folder.iterdir()} <= {"live.db", "live.db-wal", "live.db-shm"}
