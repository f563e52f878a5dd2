"""Identities, encrypted files and configurations for the secrets tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyrage import x25519

from tests.conftest import REPO

# Long, distinctive values: each must never appear anywhere but in memory.
DB_PASSWORD = "pw-7c1e5b9a-encrypted-only"
API_TOKEN = "tok-3f9d2a61-encrypted-only"
AGE = shutil.which("age")
AGE_KEYGEN = shutil.which("age-keygen")


def need_age() -> tuple[str, str]:
    """The real age tools: installed by .ci/run (Debian's `age`); a failure in CI."""
    if AGE is None or AGE_KEYGEN is None:
        if os.environ.get("CI"):
            pytest.fail("the age command-line tool is missing (apt-get install age)")
        pytest.skip("the age command-line tool is not installed (apt-get install age)")
    return AGE, AGE_KEYGEN


@dataclass
class Keys:
    identity_file: Path
    identity: str
    recipient: str


def make_identity(path: Path) -> Keys:
    identity = x25519.Identity.generate()
    text = f"# public key: {identity.to_public()}\n{identity}\n"
    path.write_text(text)
    path.chmod(0o600)
    return Keys(path, str(identity), str(identity.to_public()))


def age_encrypt(plaintext: str, recipient: str, out: Path, *, armor: bool = False) -> Path:
    """Encrypt with the real `age` tool."""
    age, _ = need_age()
    subprocess.run(
        [age, *(["-a"] if armor else []), "-r", recipient, "-o", str(out)],
        input=plaintext.encode(),
        check=True,
    )
    return out


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m mcp_fileserver ...` with a clean MCP_FILESERVER_* environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    base.pop("CREDENTIALS_DIRECTORY", None)
    base.update(MCP_FILESERVER_ALLOW_ROOT="1", PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "mcp_fileserver", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=str(cwd) if cwd else None,
        timeout=120,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The CLI refused: exit 2, exactly one stderr line, no traceback, nothing on stdout."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("mcp-fileserver: error: ")
    return lines[0]
