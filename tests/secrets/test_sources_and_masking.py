"""The one precedence order (names and sources shown, never values), systemd credentials,
the identity leaving the environment, and decrypted values masked everywhere they could
surface: results, errors, audit records, stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pyrage import encrypt, x25519

from mcp_fileserver.config import CliOptions, load_settings
from mcp_fileserver.errors import ConfigError
from mcp_fileserver.secrets_age import ENV_IDENTITY
from tests.conftest import REPO, in_memory_client
from tests.secrets.conftest import SecretsWorkspace
from tests.secrets.helpers import API_TOKEN, DB_PASSWORD


def seal(sws: SecretsWorkspace, plaintext: str) -> None:
    recipient = x25519.Recipient.from_str(sws.keys.recipient)
    sws.encrypted.write_bytes(encrypt(plaintext.encode(), [recipient]))


def test_one_precedence_order(sws: SecretsWorkspace) -> None:
    """environment > env file > systemd credentials > secrets directory > encrypted file."""
    names = ["IN_ENV", "IN_DOTENV", "IN_CREDS", "IN_DIR", "IN_AGE"]
    seal(sws, "".join(f"{n}=age-{n}\n" for n in names) + f"API_TOKEN={API_TOKEN}\n")
    credentials = sws.base / "credentials"
    secrets_dir = sws.base / "run-secrets"
    for folder, present in ((credentials, names[:3]), (secrets_dir, names[:4])):
        folder.mkdir()
        for name in present:
            (folder / name).write_text(f"{folder.name}-{name}\n")
    (sws.base / ".env").write_text("".join(f"{n}=dotenv-{n}\n" for n in names[:2]))
    # Credential-named keys: only those become secrets (a plain option is shown as is).
    query = "&".join(f"{n}_token=${{{n}}}" for n in names)
    sws.config.write_text(
        sws.config.read_text() + f'\n[databases.pg]\nurl = "postgresql://u@db/x?{query}"\n'
    )
    env = sws.env(
        IN_ENV="env-IN_ENV",
        CREDENTIALS_DIRECTORY=str(credentials),
        MCP_FILESERVER_SECRETS_DIR=str(secrets_dir),
    )
    settings = load_settings(CliOptions(config=str(sws.config)), environ=env)
    options = dict(settings.database("pg").options)  # type: ignore[union-attr]
    assert options == {
        "IN_ENV_token": "env-IN_ENV",
        "IN_DOTENV_token": "dotenv-IN_DOTENV",
        "IN_CREDS_token": "credentials-IN_CREDS",
        "IN_DIR_token": "run-secrets-IN_DIR",
        "IN_AGE_token": "age-IN_AGE",
    }
    described = settings.describe()["secrets"]
    assert described["precedence"] == [
        "environment",
        "env file",
        f"systemd credentials directory {credentials}",
        f"secrets directory {secrets_dir}",
        f"encrypted file {sws.encrypted}",
    ]
    assert described["resolved"] == {
        "API_TOKEN": f"encrypted file {sws.encrypted}",
        "IN_AGE": f"encrypted file {sws.encrypted}",
        "IN_CREDS": f"systemd credentials directory {credentials}",
        "IN_DIR": f"secrets directory {secrets_dir}",
        "IN_DOTENV": "env file",
        "IN_ENV": "environment",
    }
    shown = json.dumps(settings.describe())
    for value in [*options.values(), API_TOKEN]:
        assert value not in shown


def test_systemd_credentials_directory_alone(sws: SecretsWorkspace) -> None:
    """LoadCredential=API_TOKEN:... and nothing else: no encrypted file needed."""
    credentials = sws.base / "creds"
    credentials.mkdir()
    (credentials / "API_TOKEN").write_text("from-systemd-credential-1234")
    sws.config.write_text(sws.config.read_text().replace('encrypted_file = "secrets.age"', ""))
    settings = load_settings(
        CliOptions(config=str(sws.config)), environ={"CREDENTIALS_DIRECTORY": str(credentials)}
    )
    assert settings.hmac_key == "from-systemd-credential-1234"
    assert settings.secrets.mask("x from-systemd-credential-1234 y") == "x *** y"


def test_every_decrypted_value_is_masked_even_unreferenced(sws: SecretsWorkspace) -> None:
    settings = load_settings(CliOptions(config=str(sws.config)), environ=sws.env())
    assert "DB_PASSWORD" not in settings.describe()["secrets"]["resolved"]
    assert settings.secrets.mask(f"a {DB_PASSWORD} b {API_TOKEN}") == "a *** b ***"
    assert settings.secrets.mask(sws.keys.identity) == "***", "the key is masked too"


def test_the_identity_leaves_the_process_environment(
    sws: SecretsWorkspace, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv(ENV_IDENTITY, sws.keys.identity)
    settings = load_settings(CliOptions(config=str(sws.config)))
    assert ENV_IDENTITY not in os.environ
    assert settings.hmac_key == API_TOKEN
    assert settings.describe()["secrets"]["encrypted_file"]["key"].startswith(ENV_IDENTITY)
    assert settings.secrets.lookup(ENV_IDENTITY) is None, "no ${VAR} can reach it"
    assert settings.secrets.mask(sws.keys.identity) == "***"
    # A child process started afterwards does not inherit it.
    child = subprocess.run(
        [sys.executable, "-c", f"import os; print(os.environ.get({ENV_IDENTITY!r}))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == "None"
    # And a reference to it is an unresolved name, not the key.
    sws.config.write_text(
        sws.config.read_text().replace("${API_TOKEN}", "${MCP_FILESERVER_AGE_IDENTITY}")
    )
    clean_env.setenv(ENV_IDENTITY, sws.keys.identity)
    with pytest.raises(ConfigError, match="is not set") as refused:
        load_settings(CliOptions(config=str(sws.config)))
    assert sws.keys.identity not in str(refused.value)
    assert ENV_IDENTITY not in os.environ


async def test_decrypted_values_are_masked_in_results_errors_and_audit(
    sws: SecretsWorkspace,
) -> None:
    settings = load_settings(
        CliOptions(config=str(sws.config), log_dir=str(sws.logs), sandbox="off"),
        environ=sws.env(),
    )
    async with in_memory_client(settings) as client:
        # A file holding a loaded secret is refused whole (issue 14: no masked copy of it
        # leaves, so no cut line, base64 or regex can reveal it piecewise).
        read = await client.call_tool(
            "read_text_file", {"path": str(sws.root / "notes.txt")}, raise_on_error=False
        )
        query = await client.call_tool(
            "run_query",
            {"database": "app", "sql": f"SELECT 'the password is {DB_PASSWORD}' AS leaked"},
        )
        error = await client.call_tool(
            "run_query",
            {"database": "app", "sql": f'SELECT * FROM "{API_TOKEN}"'},
            raise_on_error=False,
        )
    texts = []
    for result in (read, query, error):
        texts.append(json.dumps(result.structured_content))
        texts.extend(getattr(block, "text", "") for block in result.content)
    blob = "\n".join(texts)
    assert read.is_error and read.content[0].text == "not found or not allowed"
    assert "the password is ***" in blob, "the value was there, and it was masked"
    assert error.is_error and "***" in blob
    assert DB_PASSWORD not in blob and API_TOKEN not in blob
    audit = "".join(p.read_text() for p in sws.logs.glob("audit*.jsonl"))
    assert "run_query" in audit and "***" in audit
    assert DB_PASSWORD not in audit and API_TOKEN not in audit


def test_stdio_server_masks_decrypted_values_on_the_wire_and_in_the_audit(
    sws: SecretsWorkspace,
) -> None:
    """A real stdio server: a result holding a decrypted value crosses the wire masked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    env.update(sws.env(), MCP_FILESERVER_ALLOW_ROOT="1", PYTHONPATH=str(REPO))
    calls = [
        ("read_text_file", {"path": str(sws.root / "notes.txt")}),
        ("run_query", {"database": "app", "sql": f"SELECT 'the password is {API_TOKEN}' AS t"}),
        ("read_text_file", {"path": str(sws.encrypted)}),  # outside the root: refused
    ]
    messages: list[dict[str, Any]] = [
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "secrets-e2e", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ]
    messages += [
        {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": t, "arguments": a}}
        for n, (t, a) in enumerate(calls, 1)
    ]
    argv = [sys.executable, "-m", "mcp_fileserver", "--config", str(sws.config)]
    argv += ["--log-dir", str(sws.logs), "--sandbox", "off"]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
    proc.stdin.flush()
    lines = [proc.stdout.readline() for _ in range(len(calls) + 1)]  # then close stdin
    rest, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    stdout = "".join(lines) + rest
    answers = {m["id"]: m for m in map(json.loads, stdout.splitlines())}
    # the file holding a secret is refused whole; a result holding one is masked
    assert answers[1]["result"]["isError"]
    assert "not found or not allowed" in json.dumps(answers[1])
    assert "the password is ***" in json.dumps(answers[2])
    assert answers[3]["result"]["isError"]
    audit = "".join(p.read_text() for p in Path(sws.logs).glob("audit*.jsonl"))
    start = json.loads(audit.splitlines()[0])
    assert start["config"]["secrets"]["encrypted_file"]["names"] == ["API_TOKEN", "DB_PASSWORD"]
    assert start["config"]["secrets"]["resolved"] == {
        "API_TOKEN": f"encrypted file {sws.encrypted}"
    }
    for blob in (stdout, stderr, audit):
        assert DB_PASSWORD not in blob and API_TOKEN not in blob
        assert sws.keys.identity not in blob


def test_stderr_masks_decrypted_values(sws: SecretsWorkspace) -> None:
    """Human logs (loguru and the stdlib loggers fastmcp uses) as the server sets them up."""
    code = f"""
import logging, sys
from loguru import logger
from mcp_fileserver.config import CliOptions, load_settings
from mcp_fileserver.logging_setup import setup_logging
settings = load_settings(CliOptions(config=sys.argv[1]))
setup_logging(settings.secrets)
logger.warning("connection failed: password {{}} rejected", {DB_PASSWORD!r})
logging.getLogger("fastmcp.server").warning("token %s in a framework message", {API_TOKEN!r})
logger.warning("control line {{}}", "visible-control-1234")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    env.update(sws.env(), PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", code, str(sws.config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "visible-control-1234" in proc.stderr
    assert "password *** rejected" in proc.stderr
    assert "token *** in a framework message" in proc.stderr
    assert DB_PASSWORD not in proc.stderr and API_TOKEN not in proc.stderr


def test_the_identity_leaves_the_environment_even_when_startup_fails(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv(ENV_IDENTITY, "AGE-SECRET-KEY-1NOTREALLYAKEY")
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(CliOptions(config=str(tmp_path / "missing.toml")))
    assert ENV_IDENTITY not in os.environ
