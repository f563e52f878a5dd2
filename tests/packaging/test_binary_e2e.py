"""The frozen executable (`make binary`) behaves exactly like the installed command:
same options and subcommands, same tools, and a real stdio session works end to end:
files, SQL, PostgreSQL driver, the audit log, refused attacks, the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from mcp_fileserver import cli
from tests.conftest import in_memory_client, make_settings
from tests.packaging import contract, session
from tests.packaging.artifacts import frozen_binary, onefile_binary

pytestmark = [pytest.mark.binary, pytest.mark.slow]

# The e2e suite runs as root here; the server refuses root unless told (issue 6).
ROOT_ENV = {"MCP_FILESERVER_ALLOW_ROOT": "1"} if os.geteuid() == 0 else {}
INSTALLED = [sys.executable, "-m", "mcp_fileserver"]


@pytest.fixture(scope="module")
def binary() -> Path:
    return frozen_binary()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    return {**env, **ROOT_ENV, **extra}


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env=clean_env(), check=False, **kwargs
    )


def subcommands() -> list[str]:
    parser = cli.build_parser()
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return sorted(action.choices)


@pytest.mark.parametrize(
    "argv", [["--version"], ["--help"]] + [[c, "--help"] for c in subcommands()]
)
def test_same_command_line_as_installed(binary: Path, argv: list[str]) -> None:
    frozen, installed = run([str(binary), *argv]), run([*INSTALLED, *argv])
    assert (frozen.returncode, frozen.stdout) == (installed.returncode, installed.stdout)
    assert frozen.returncode == 0, frozen.stderr


def test_check_reports_the_same_settings(binary: Path, tmp_path: Path) -> None:
    ws = session.Workspace(tmp_path)
    args = ["check", "--allow", str(ws.root), "--db", f"app=sqlite:///{ws.db}"]
    args += ["--log-dir", str(ws.logs)]
    frozen, installed = run([str(binary), *args]), run([*INSTALLED, *args])
    assert frozen.returncode == installed.returncode == 0, frozen.stderr
    frozen_settings, installed_settings = json.loads(frozen.stdout), json.loads(installed.stdout)
    # The sandbox plan names the runtime's own files, which differ by design.
    frozen_settings.pop("sandbox_plan", None)
    installed_settings.pop("sandbox_plan", None)
    assert frozen_settings == installed_settings


def test_config_error_is_one_line_and_exit_2(binary: Path, tmp_path: Path) -> None:
    result = run([str(binary), "--allow", str(tmp_path / "missing")])
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


async def test_stdio_session_every_tool_audit_and_attacks(binary: Path, tmp_path: Path) -> None:
    ws = session.Workspace(tmp_path)
    args = ["--allow", str(ws.root), "--db", f"app=sqlite:///{ws.db}"]
    args += ["--db", "pg=postgresql://nobody@127.0.0.1:1/none", "--log-dir", str(ws.logs)]
    args += ["--db", "maria=mariadb://nobody@127.0.0.1:1/none"]
    transport = StdioTransport(
        command=str(binary), args=args, env=clean_env(), cwd=str(tmp_path), keep_alive=False
    )
    async with Client(transport) as client:
        called = await session.exercise(client, str(ws.root))
        # Same tools, same schemas as the installed package builds.
        settings = make_settings(allow=[ws.root], db=[f"app=sqlite:///{ws.db}"], log_dir=ws.logs)
        async with in_memory_client(settings) as reference:
            expected = {t.name: t.input_schema for t in await reference.list_tools()}
        assert {t.name: t.input_schema for t in await client.list_tools()} == expected
        # PostgreSQL: pglast parses (a write is refused by policy) and psycopg's libpq
        # is loaded and tries to connect (an unreachable server is a clear error).
        refused = await client.call_tool(
            "run_query", {"database": "pg", "sql": "DELETE FROM t"}, raise_on_error=False
        )
        unreachable = await client.call_tool(
            "run_query", {"database": "pg", "sql": "SELECT 1"}, raise_on_error=False
        )
        for result in (refused, unreachable):
            text = session.result_text(result)
            assert result.is_error and session.MASKED_ERROR not in text, text
        assert session.result_text(refused) != session.result_text(unreachable)
        # MariaDB: the MySQL guard refuses a write; PyMySQL (imported lazily) is in the
        # bundle and tries to connect.
        for sql, expected in (("DELETE FROM t", "query refused"), ("SELECT 1", "unavailable")):
            result = await client.call_tool(
                "run_query", {"database": "maria", "sql": sql}, raise_on_error=False
            )
            assert result.is_error and expected in session.result_text(result), result
    records = session.check_audit(ws, called)
    session.check_sandbox_enforced(records)
    assert records[-1].get("event") == "server_stop", "EOF must stop the server cleanly"
    verified = run([str(binary), "verify-log", str(ws.logs)])
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_sandbox_is_enforced_in_the_frozen_build(binary: Path, tmp_path: Path) -> None:
    ws = session.Workspace(tmp_path)
    args = ["check", "--allow", str(ws.root), "--log-dir", str(ws.logs), "--sandbox", "require"]
    result = run([str(binary), *args])
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)["sandbox_plan"]
    assert str(binary.parent) in json.dumps(plan), "the bundle folder must stay readable"


async def test_printed_binary_config_starts_the_server(binary: Path, tmp_path: Path) -> None:
    ws = session.Workspace(tmp_path)
    printed = run(
        [str(binary), "print-config", "claude", "--allow", str(ws.root), "--log-dir", str(ws.logs)]
    )
    assert printed.returncode == 0, printed.stderr
    entry = contract.single_entry(json.loads(printed.stdout))
    assert entry["command"] == str(binary.absolute()), "frozen: binary mode by default"
    contract.check_binary_entry(entry)
    transport = StdioTransport(
        command=entry["command"], args=entry["args"], env=clean_env(), keep_alive=False
    )
    async with Client(transport) as client:
        result = await client.call_tool("read_text_file", {"path": str(ws.root / "notes.txt")})
    assert "hello from the allowed root" in session.result_text(result)


async def test_onefile_build_serves(tmp_path: Path) -> None:
    binary = onefile_binary()
    ws = session.Workspace(tmp_path)
    transport = StdioTransport(
        command=str(binary),
        args=["--allow", str(ws.root), "--db", f"app=sqlite:///{ws.db}", "--log-dir", str(ws.logs)],
        env=clean_env(),
        keep_alive=False,
    )
    async with Client(transport) as client:
        called = await session.exercise(client, str(ws.root))
    session.check_audit(ws, called)


async def test_frozen_build_decrypts_the_same_encrypted_secrets(
    binary: Path, tmp_path: Path
) -> None:
    """pyrage is bundled: the frozen executable writes a file the installed command and
    `age` read, reads theirs, and serves with its values masked."""
    from tests.secrets.helpers import age_encrypt, make_identity

    ws = session.Workspace(tmp_path)
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir(mode=0o700)
    token = "frozen-token-2b7e4c19d0"
    (ws.root / "notes.txt").write_text(f"the token is {token}\n")
    keygen = run([str(binary), "secrets", "keygen", "-o", str(keys_dir / "id.txt")])
    assert keygen.returncode == 0, keygen.stderr
    keys = make_identity(keys_dir / "installed.txt")
    plain = tmp_path / "plain.env"
    plain.write_text(f"AUDIT_TOKEN={token}\n")
    encrypted = tmp_path / "secrets.age"
    encrypt = [str(binary), "secrets", "encrypt", str(plain), "-o", str(encrypted)]
    made = run([*encrypt, "-i", str(keys_dir / "id.txt"), "-r", keys.recipient])
    assert made.returncode == 0, made.stderr
    config = tmp_path / "server.toml"
    config.write_text(
        '[secrets]\nencrypted_file = "secrets.age"\n[audit]\nhmac_key = "${AUDIT_TOKEN}"\n'
    )
    args = ["check", "--config", str(config), "--allow", str(ws.root), "--log-dir", str(ws.logs)]
    env = clean_env(MCP_FILESERVER_AGE_IDENTITY_FILE=str(keys.identity_file))
    frozen_env = clean_env(MCP_FILESERVER_AGE_IDENTITY_FILE=str(keys_dir / "id.txt"))
    installed = subprocess.run([*INSTALLED, *args], capture_output=True, text=True, env=env)
    frozen = subprocess.run([str(binary), *args], capture_output=True, text=True, env=frozen_env)
    assert installed.returncode == frozen.returncode == 0, installed.stderr + frozen.stderr
    installed_secrets = json.loads(installed.stdout)["secrets"]
    frozen_secrets = json.loads(frozen.stdout)["secrets"]
    assert installed_secrets["resolved"] == frozen_secrets["resolved"]
    assert frozen_secrets["resolved"] == {"AUDIT_TOKEN": f"encrypted file {encrypted}"}
    # A file the age tool wrote.
    age_encrypt(f"AUDIT_TOKEN={token}\n", keys.recipient, encrypted, armor=True)
    again = subprocess.run([str(binary), *args], capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr
    for output in (installed, frozen, again, made, keygen):
        assert token not in output.stdout + output.stderr
    transport = StdioTransport(
        command=str(binary), args=args[1:], env=env, cwd=str(tmp_path), keep_alive=False
    )
    async with Client(transport) as client:
        result = await client.call_tool(
            "read_text_file", {"path": str(ws.root / "notes.txt")}, raise_on_error=False
        )
    # Refused whole because it holds a decrypted value: proof the value was loaded.
    assert result.is_error and "not found or not allowed" in session.result_text(result)
    assert token not in session.result_text(result)
    assert token not in ws.audit_text()


def test_mariadb_auth_plugins_load_from_the_bundle_under_the_sandbox(
    binary: Path, tmp_path: Path
) -> None:
    """The C driver in the bundle connects with an ed25519 account: libmariadb dlopens
    client_ed25519.so from the bundled plugin folder, confined by the sandbox."""
    from tests.sql.mariadb_server import ED25519, start_server, stop_server

    server = start_server()
    try:
        url = server.url(ED25519, "MARIADB_TEST_PASSWORD")
        transport = StdioTransport(
            command=str(binary),
            args=[
                *("--db", f"maria={url}", "--log-dir", str(tmp_path / "logs")),
                *("--sandbox", "require"),
            ],
            env=clean_env(MARIADB_TEST_PASSWORD=server.passwords[ED25519]),
            cwd=str(tmp_path),
            keep_alive=False,
        )

        async def query() -> object:
            async with Client(transport) as client:
                return await client.call_tool(
                    "run_query",
                    {"database": "maria", "sql": "SELECT COUNT(*) FROM big"},
                    raise_on_error=False,
                )

        import asyncio

        result = asyncio.run(query())
    finally:
        stop_server(server)
    assert not result.is_error, session.result_text(result)  # type: ignore[attr-defined]
    assert result.structured_content["rows"] == [[50000]]  # type: ignore[attr-defined]
