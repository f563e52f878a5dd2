"""A workspace whose secrets live only in an age-encrypted file."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.secrets.helpers import API_TOKEN, DB_PASSWORD, Keys, make_identity

PLAINTEXT = f"# secrets for the tests\nDB_PASSWORD={DB_PASSWORD}\nAPI_TOKEN='{API_TOKEN}'\n"


@dataclass
class SecretsWorkspace:
    base: Path
    root: Path
    keys: Keys
    encrypted: Path
    config: Path
    logs: Path
    db: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {"MCP_FILESERVER_AGE_IDENTITY_FILE": str(self.keys.identity_file), **extra}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """os.environ without any MCP_FILESERVER_* or systemd credentials variable."""
    for name in list(os.environ):
        if name.startswith("MCP_FILESERVER_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    monkeypatch.setenv("MCP_FILESERVER_ALLOW_ROOT", "1")
    return monkeypatch


@pytest.fixture
def sws(tmp_path: Path) -> SecretsWorkspace:
    from pyrage import encrypt, x25519

    root = tmp_path / "root"
    root.mkdir()
    (root / "notes.txt").write_text(f"notes; the password is {DB_PASSWORD}\n")
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir(mode=0o700)
    keys = make_identity(keys_dir / "identity.txt")
    encrypted = tmp_path / "secrets.age"
    recipient = x25519.Recipient.from_str(keys.recipient)
    encrypted.write_bytes(encrypt(PLAINTEXT.encode(), [recipient]))
    db = root / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (name TEXT)")
        conn.execute("INSERT INTO items VALUES ('apple')")
    conn.close()
    config = tmp_path / "server.toml"
    config.write_text(
        '[files]\nallowed_dirs = ["root"]\n\n'
        '[databases.app]\nurl = "sqlite:///root/app.db"\n\n'
        '[secrets]\nencrypted_file = "secrets.age"\n\n'
        '[audit]\nhmac_key = "${API_TOKEN}"\n'
    )
    return SecretsWorkspace(tmp_path, root, keys, encrypted, config, tmp_path / "logs", db)
