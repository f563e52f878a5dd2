"""The Claude Desktop example with encrypted secrets works: run its own arguments and
environment (example paths moved under a temporary home) through the real parser and
settings loader."""

from __future__ import annotations

import json
from pathlib import Path

from pyrage import encrypt, x25519

from mcp_fileserver.cli import build_parser, cli_options
from mcp_fileserver.config import load_settings
from mcp_fileserver.secrets_age import ENV_IDENTITY_FILE, ENV_SECRETS_FILE
from tests.packaging import contract
from tests.secrets.helpers import DB_PASSWORD, make_identity

EXAMPLE = contract.REPO / "config" / "claude_desktop" / "encrypted-secrets" / "installed.json"
HOME = "/Users/you"


def test_encrypted_secrets_example(tmp_path: Path) -> None:
    entry = contract.single_entry(json.loads(EXAMPLE.read_text()))
    contract.check_installed_entry(entry)
    assert set(entry["env"]) == {ENV_SECRETS_FILE, ENV_IDENTITY_FILE}
    assert "PASSWORD" not in json.dumps(entry).replace("${WAREHOUSE_PASSWORD}", "")
    config_folder = f"{HOME}/Library/Application Support/mcp-fileserver/"
    assert all(v.startswith(config_folder) for v in entry["env"].values())
    assert entry["env"][ENV_IDENTITY_FILE].endswith("/age-identity.txt"), "keygen's default"

    home = str(tmp_path / "home")
    args = [a.replace(HOME, home) for a in entry["args"]]
    env = {k: v.replace(HOME, home) for k, v in entry["env"].items()}
    Path(home, "Documents", "notes").mkdir(parents=True)
    Path(env[ENV_IDENTITY_FILE]).parent.mkdir(parents=True)
    keys = make_identity(Path(env[ENV_IDENTITY_FILE]))
    recipient = x25519.Recipient.from_str(keys.recipient)
    Path(env[ENV_SECRETS_FILE]).write_bytes(
        encrypt(f"WAREHOUSE_PASSWORD={DB_PASSWORD}\n".encode(), [recipient])
    )
    settings = load_settings(cli_options(build_parser().parse_args(args)), environ=env)
    (database,) = settings.databases
    assert database.password == DB_PASSWORD
    assert settings.describe()["secrets"]["resolved"] == {
        "WAREHOUSE_PASSWORD": f"encrypted file {env[ENV_SECRETS_FILE]}"
    }
