"""After startup the kernel sandbox denies reading the key files: the identity file, the
passphrase file and the encrypted file itself are read once, before it is applied, and
are granted by no rule afterwards (while the allowed directory stays readable)."""

from __future__ import annotations

import pytest

from tests.sandbox.child import ABI, run_sandboxed
from tests.secrets.conftest import SecretsWorkspace

pytestmark = pytest.mark.skipif(ABI < 1, reason="the kernel offers no Landlock")


def test_sandbox_denies_the_identity_file_after_startup(sws: SecretsWorkspace) -> None:
    passphrase = sws.base / "keys" / "passphrase"
    passphrase.write_text("unused but named\n")
    passphrase.chmod(0o600)
    body = f"""
out["settings_key"] = settings.describe()["secrets"]["encrypted_file"]["key"]
out["identity"] = attempt(lambda: read({str(sws.keys.identity_file)!r}))
out["keys_dir"] = attempt(lambda: os.listdir({str(sws.keys.identity_file.parent)!r}))
out["passphrase"] = attempt(lambda: read({str(passphrase)!r}))
out["encrypted"] = attempt(lambda: read({str(sws.encrypted)!r}))
out["allowed"] = attempt(lambda: read({str(sws.root / "notes.txt")!r}))
"""
    out = run_sandboxed(
        ["--config", str(sws.config), "--log-dir", str(sws.logs), "--sandbox", "require"],
        body,
        env=sws.env(MCP_FILESERVER_AGE_PASSPHRASE_FILE=str(passphrase)),
    )
    assert out["settings_key"] == f"identity file {sws.keys.identity_file}"
    assert out["allowed"] == "ok"
    assert out["identity"] == "denied"
    assert out["keys_dir"] == "denied"
    assert out["passphrase"] == "denied"
    assert out["encrypted"] == "denied"
