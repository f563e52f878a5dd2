"""Interoperability both ways with the real `age` tool, and the `secrets` subcommands."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from pyrage import passphrase as age_passphrase

from mcp_fileserver.config import CliOptions, load_settings
from tests.secrets.conftest import PLAINTEXT, SecretsWorkspace
from tests.secrets.helpers import (
    API_TOKEN,
    DB_PASSWORD,
    age_encrypt,
    make_identity,
    need_age,
    one_error_line,
    run_cli,
)


def age_decrypt(path: Path, identity: Path) -> str:
    age, _ = need_age()
    return subprocess.run(
        [age, "-d", "-i", str(identity), str(path)], capture_output=True, text=True, check=True
    ).stdout


def entries(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
def test_files_age_encrypts_are_read(sws: SecretsWorkspace, armor: bool) -> None:
    age_encrypt(PLAINTEXT, sws.keys.recipient, sws.encrypted, armor=armor)
    settings = load_settings(CliOptions(config=str(sws.config)), environ=sws.env())
    assert settings.hmac_key == API_TOKEN
    assert settings.secrets.lookup("DB_PASSWORD") == DB_PASSWORD
    described = settings.describe()["secrets"]
    assert described["resolved"] == {"API_TOKEN": f"encrypted file {sws.encrypted}"}
    assert described["encrypted_file"]["names"] == ["API_TOKEN", "DB_PASSWORD"]
    assert DB_PASSWORD not in str(settings.describe()) and API_TOKEN not in str(described)


def test_an_identity_from_age_keygen_is_accepted(sws: SecretsWorkspace) -> None:
    _, keygen = need_age()
    identity = sws.base / "keys" / "age-keygen.txt"
    subprocess.run([keygen, "-o", str(identity)], capture_output=True, check=True)
    identity.chmod(0o600)
    recipient = subprocess.run(
        [keygen, "-y", str(identity)], capture_output=True, text=True, check=True
    ).stdout.strip()
    age_encrypt(PLAINTEXT, recipient, sws.encrypted)
    env = {"MCP_FILESERVER_AGE_IDENTITY_FILE": str(identity)}
    assert load_settings(CliOptions(config=str(sws.config)), environ=env).hmac_key == API_TOKEN


def test_files_we_encrypt_age_decrypts(tmp_path: Path) -> None:
    need_age()
    keygen = run_cli("secrets", "keygen", "-o", str(tmp_path / "me.txt"))
    assert keygen.returncode == 0, keygen.stderr
    mine = tmp_path / "me.txt"
    assert mine.stat().st_mode & 0o777 == 0o600
    assert keygen.stdout.strip().startswith("age1") and "AGE-SECRET-KEY" not in keygen.stdout
    teammate = make_identity(tmp_path / "teammate.txt")
    plain = tmp_path / "secrets.env"
    plain.write_text(PLAINTEXT)
    result = run_cli(
        *("secrets", "encrypt", str(plain), "-o", str(tmp_path / "s.age")),
        *("-i", str(mine), "-r", teammate.recipient),
    )
    assert result.returncode == 0, result.stderr
    for identity in (mine, teammate.identity_file):
        assert entries(age_decrypt(tmp_path / "s.age", identity)) == entries(PLAINTEXT)
    assert DB_PASSWORD not in result.stdout + result.stderr


def test_set_reencrypts_in_place_for_every_recipient(sws: SecretsWorkspace) -> None:
    need_age()
    teammate = make_identity(sws.base / "keys" / "teammate.txt")
    plain = sws.base / "plain.env"
    plain.write_text(PLAINTEXT)
    encrypted = run_cli(
        *("secrets", "encrypt", str(plain), "-o", str(sws.encrypted)),
        *("-r", sws.keys.recipient, "-r", teammate.recipient),
    )
    assert encrypted.returncode == 0, encrypted.stderr
    sws.encrypted.chmod(0o640)
    new_value = "rotated-value-5e2b8c71\nwith a second 'line'"
    result = run_cli(
        *("secrets", "set", "DB_PASSWORD", "-f", str(sws.encrypted)),
        env=sws.env(),
        stdin=new_value + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert "replaced DB_PASSWORD" in result.stderr
    assert new_value not in result.stdout + result.stderr
    added = run_cli(
        *("secrets", "set", "EXTRA", "-f", str(sws.encrypted)), env=sws.env(), stdin="x-1234"
    )
    assert added.returncode == 0, added.stderr
    assert sws.encrypted.stat().st_mode & 0o777 == 0o640, "the file keeps its mode"
    assert sorted(p.name for p in sws.base.iterdir() if p.name.startswith(".")) == []
    for identity in (sws.keys.identity_file, teammate.identity_file):
        text = age_decrypt(sws.encrypted, identity)
        assert entries(text)[1] == f"API_TOKEN='{API_TOKEN}'", "other entries untouched"
    settings = load_settings(CliOptions(config=str(sws.config)), environ=sws.env())
    assert settings.secrets.lookup("DB_PASSWORD") == new_value
    assert settings.secrets.lookup("EXTRA") == "x-1234"
    listed = run_cli("secrets", "list", "--config", str(sws.config), env=sws.env())
    assert listed.stdout.split() == ["DB_PASSWORD", "API_TOKEN", "EXTRA"]
    checked = run_cli("secrets", "check", "-f", str(sws.encrypted), env=sws.env())
    assert checked.returncode == 0 and "OK, 3 names" in checked.stderr
    for output in (listed, checked):
        assert new_value not in output.stdout + output.stderr
        assert API_TOKEN not in output.stdout + output.stderr


def test_set_refuses_bad_input_and_changes_nothing(sws: SecretsWorkspace) -> None:
    before = sws.encrypted.read_bytes()
    for args, stdin, expected in [
        (("set", "1BAD"), "v", "is not a NAME"),
        (("set", "EMPTY"), "", "no value for EMPTY"),
    ]:
        result = run_cli("secrets", *args, "-f", str(sws.encrypted), env=sws.env(), stdin=stdin)
        assert expected in one_error_line(result)
    stranger = make_identity(sws.base / "keys" / "stranger.txt")
    wrong = run_cli(
        *("secrets", "set", "X", "-f", str(sws.encrypted), "-i", str(stranger.identity_file)),
        stdin="value",
    )
    assert "no identity matches" in one_error_line(wrong)
    assert sws.encrypted.read_bytes() == before


def test_passphrase_encrypted_file(sws: SecretsWorkspace) -> None:
    """age's scrypt recipient; the passphrase comes from a file (a Docker secret, a
    systemd credential). Slow by design: scrypt costs about a second per use."""
    passphrase_file = sws.base / "keys" / "passphrase"
    passphrase_file.write_text("correct horse battery staple\n")
    passphrase_file.chmod(0o400)
    sws.encrypted.write_bytes(
        age_passphrase.encrypt(PLAINTEXT.encode(), "correct horse battery staple")
    )
    env = {"MCP_FILESERVER_AGE_PASSPHRASE_FILE": str(passphrase_file)}
    settings = load_settings(CliOptions(config=str(sws.config)), environ=env)
    assert settings.hmac_key == API_TOKEN
    assert settings.describe()["secrets"]["encrypted_file"]["key"] == (
        f"passphrase file {passphrase_file}"
    )
    assert settings.secrets.mask("correct horse battery staple") == "***"
    no_passphrase = run_cli("check", "--config", str(sws.config), env=sws.env())
    assert "MCP_FILESERVER_AGE_PASSPHRASE_FILE" in one_error_line(no_passphrase)


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    existing = tmp_path / "id.txt"
    existing.write_text("keep me")
    result = run_cli("secrets", "keygen", "-o", str(existing))
    assert "already exists" in one_error_line(result)
    assert existing.read_text() == "keep me"


def test_keygen_default_is_the_user_config_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_cli(
        "secrets", "keygen", env={"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    )
    assert result.returncode == 0, result.stderr
    written = home / ".config" / "mcp-fileserver" / "age-identity.txt"
    assert written.stat().st_mode & 0o777 == 0o600
    assert os.stat(written.parent).st_mode & 0o777 == 0o700
    assert f"MCP_FILESERVER_AGE_IDENTITY_FILE={written}" in result.stderr
