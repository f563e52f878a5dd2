"""Every bad input stops startup with exit code 2 and one line saying what to do: never a
traceback, never a value, never the key. Run in-process through `main()` (the same path
as the installed command), plus one real subprocess for `serve`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pyrage import encrypt, x25519

from mcp_fileserver.cli import main
from tests.secrets.conftest import SecretsWorkspace
from tests.secrets.helpers import API_TOKEN, DB_PASSWORD, make_identity, one_error_line, run_cli


def seal(sws: SecretsWorkspace, plaintext: str) -> None:
    recipient = x25519.Recipient.from_str(sws.keys.recipient)
    sws.encrypted.write_bytes(encrypt(plaintext.encode(), [recipient]))


def wrong_key(sws: SecretsWorkspace) -> None:
    other = x25519.Identity.generate().to_public()
    sws.encrypted.write_bytes(encrypt(f"DB_PASSWORD={DB_PASSWORD}\n".encode(), [other]))


def tampered(sws: SecretsWorkspace) -> None:
    data = bytearray(sws.encrypted.read_bytes())
    data[-20] ^= 0x01  # a payload byte: the chunk's authentication tag no longer matches
    sws.encrypted.write_bytes(bytes(data))


def tampered_header(sws: SecretsWorkspace) -> None:
    data = bytearray(sws.encrypted.read_bytes())
    mac = data.index(b"\n---") + 6
    data[mac] = ord("A") if data[mac] != ord("A") else ord("B")
    sws.encrypted.write_bytes(bytes(data))


def truncated(sws: SecretsWorkspace) -> None:
    sws.encrypted.write_bytes(sws.encrypted.read_bytes()[:-10])


def cut_in_header(sws: SecretsWorkspace) -> None:
    sws.encrypted.write_bytes(sws.encrypted.read_bytes()[:60])


def identity_mode(mode: int) -> Callable[[SecretsWorkspace], None]:
    return lambda sws: sws.keys.identity_file.chmod(mode)


CASES: dict[str, tuple[Callable[[SecretsWorkspace], None], str]] = {
    "wrong key": (wrong_key, "no identity matches it"),
    "tampered payload": (tampered, "restore it from a backup"),
    "tampered header": (tampered_header, "restore it from a backup"),
    "truncated": (truncated, "restore it from a backup"),
    "cut in the header": (cut_in_header, "restore it from a backup"),
    "world-readable identity": (identity_mode(0o644), "run chmod 600"),
    "group-readable identity": (identity_mode(0o640), "run chmod 600"),
    "duplicate line": (
        lambda sws: seal(sws, f"API_TOKEN={API_TOKEN}\nAPI_TOKEN={DB_PASSWORD}\n"),
        "line 2: API_TOKEN is already defined on line 1",
    ),
    "malformed line": (
        lambda sws: seal(sws, f"API_TOKEN={API_TOKEN}\n{DB_PASSWORD}\n"),
        "line 2 is not NAME=value",
    ),
    "unclosed quote": (
        lambda sws: seal(sws, f"API_TOKEN='{API_TOKEN}\nB={DB_PASSWORD}\n"),
        "line 1: the quote opened here is never closed",
    ),
    "empty file": (lambda sws: sws.encrypted.write_bytes(b""), "not an age-encrypted file"),
    "not UTF-8 inside": (
        lambda sws: sws.encrypted.write_bytes(
            encrypt(b"A=\xff\n", [x25519.Recipient.from_str(sws.keys.recipient)])
        ),
        "decrypts to something that is not UTF-8 text",
    ),
    "missing file": (lambda sws: sws.encrypted.unlink(), "secrets encrypt"),
    "plaintext instead": (
        lambda sws: sws.encrypted.write_text(f"API_TOKEN={API_TOKEN}\n"),
        "is not an age-encrypted file",
    ),
    "missing identity file": (
        lambda sws: sws.keys.identity_file.unlink(),
        "identity file",
    ),
    "not an identity": (
        lambda sws: sws.keys.identity_file.write_text(f"{DB_PASSWORD}\n"),
        "line 1 is not an age identity",
    ),
    "damaged identity": (
        lambda sws: sws.keys.identity_file.write_text(sws.keys.identity[:-3] + "qqq\n"),
        "line 1 is not a valid age identity",
    ),
    "passphrase file missing": (
        lambda sws: sws.encrypted.write_bytes(
            b"age-encryption.org/v1\n-> scrypt c2FsdHNhbHRzYWx0c2FsdA 18\nAAAA\n--- AAAA\n"
        ),
        "encrypted with a passphrase: set MCP_FILESERVER_AGE_PASSPHRASE_FILE",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_2(
    case: str,
    sws: SecretsWorkspace,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spoil, expected = CASES[case]
    spoil(sws)
    clean_env.setenv("MCP_FILESERVER_AGE_IDENTITY_FILE", str(sws.keys.identity_file))
    for argv in (
        ["check", "--config", str(sws.config)],
        ["secrets", "check", "--config", str(sws.config)],
    ):
        code = main(argv)
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert code == 2, (argv, captured.err)
        assert len(lines) == 1 and lines[0].startswith("mcp-fileserver: error: "), captured.err
        assert expected in lines[0], lines[0]
        assert captured.out == ""
        for value in (DB_PASSWORD, API_TOKEN, sws.keys.identity, "Traceback"):
            assert value not in captured.err


def test_no_key_says_which_variable_to_set(
    sws: SecretsWorkspace, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--config", str(sws.config)]) == 2
    assert "set MCP_FILESERVER_AGE_IDENTITY_FILE" in capsys.readouterr().err


def test_an_identity_in_the_env_file_is_refused(
    sws: SecretsWorkspace, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (sws.base / ".env").write_text(f"MCP_FILESERVER_AGE_IDENTITY={sws.keys.identity}\n")
    assert main(["check", "--config", str(sws.config)]) == 2
    err = capsys.readouterr().err
    assert "keeps the key in clear" in err and sws.keys.identity not in err


@pytest.mark.parametrize("inside", ["root", "root/deeper"])
def test_a_key_file_inside_an_allowed_directory_is_refused(
    inside: str,
    sws: SecretsWorkspace,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = sws.base / inside
    folder.mkdir(exist_ok=True)
    served = make_identity(folder / "identity.txt")
    seal_for = x25519.Recipient.from_str(served.recipient)
    sws.encrypted.write_bytes(encrypt(f"API_TOKEN={API_TOKEN}\n".encode(), [seal_for]))
    clean_env.setenv("MCP_FILESERVER_AGE_IDENTITY_FILE", str(served.identity_file))
    assert main(["check", "--config", str(sws.config)]) == 2
    err = capsys.readouterr().err
    assert "inside the allowed directory" in err and "move it out" in err


def test_serve_refuses_a_tampered_file_before_serving(sws: SecretsWorkspace) -> None:
    tampered(sws)
    result = run_cli(
        "--config", str(sws.config), "--log-dir", str(sws.logs), env=sws.env(), stdin=""
    )
    assert "restore it from a backup" in one_error_line(result)
    records = "".join(p.read_text() for p in sws.logs.glob("audit*.jsonl"))
    assert "config_error" in records, "the refusal is audited when the log folder is known"
    assert DB_PASSWORD not in records and API_TOKEN not in records


def test_secrets_commands_refuse_missing_and_unconfigured_files(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv, expected in [
        (["secrets", "list"], "which file?"),
        (["secrets", "check", "-f", str(tmp_path / "nope.age")], "does not exist"),
        (["secrets", "encrypt", str(tmp_path / "nope.env")], "does not exist"),
        (["secrets", "encrypt", "-", "-r", "age1x"], "name the output with -o FILE"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], (argv, err)


def test_encrypt_validates_the_plaintext_and_the_recipients(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "s.env"
    recipient = str(x25519.Identity.generate().to_public())
    for text, extra, expected in [
        (f"A=1\nA={DB_PASSWORD}\n", ["-r", recipient], "A is already defined"),
        (f"{DB_PASSWORD}\n", ["-r", recipient], "line 1 is not NAME=value"),
        ("A=1\n", [], "give at least one recipient"),
        ("A=1\n", ["-r", "age1notakey"], "is not an age recipient"),
    ]:
        plain.write_text(text)
        assert main(["secrets", "encrypt", str(plain), *extra]) == 2
        err = capsys.readouterr().err
        assert expected in err and DB_PASSWORD not in err, err
        assert not (tmp_path / "s.env.age").exists()


def test_a_fifo_as_identity_is_refused_without_blocking(
    sws: SecretsWorkspace, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = sws.base / "keys" / "fifo"
    os.mkfifo(fifo, 0o600)
    clean_env.setenv("MCP_FILESERVER_AGE_IDENTITY_FILE", str(fifo))
    assert main(["check", "--config", str(sws.config)]) == 2
    assert "is not a regular file" in capsys.readouterr().err
