"""Issue 14 §5: no forged log line, no literal secret in a URL, no secret leaves the
server in any form a tool produces."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from fastmcp import Client
from loguru import logger

from mcp_fileserver.audit.files import list_log_files, read_lines
from mcp_fileserver.errors import ConfigError
from mcp_fileserver.files.secret_content import REASON
from mcp_fileserver.logging_setup import setup_logging
from mcp_fileserver.server import build_server
from tests.audit.helpers import audit_settings, call_unknown, events, tool_server
from tests.conftest import make_settings

KEY = "hmac-Key-0123456789abcdef"  # a loaded secret: [audit] hmac_key = "${KEY}"


def test_a_client_string_cannot_forge_a_log_line(capfd: pytest.CaptureFixture[str]) -> None:
    setup_logging()
    forged = "x\n2026-01-01 00:00:00.000 | INFO    | forged | all is well\x1b[2K\r"
    logger.warning("security incident: 10 violations of {}", forged)
    logger.remove()
    err = capfd.readouterr().err
    assert len(err.splitlines()) == 1
    assert "\x1b" not in err and "\r" not in err and "\\x0a2026" in err


@pytest.mark.parametrize(
    "query",
    ["password=hunter2-literal", "sslpassword=hunter2-literal", "sslmode=require&passWord=x1y2"],
)
def test_a_literal_secret_anywhere_in_a_url_is_refused(tmp_path: Path, query: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[databases.app]\nurl = "postgresql://app@db.invalid/app?{query}"\n')
    with pytest.raises(ConfigError, match="literal secret in its query") as caught:
        make_settings(config=config, log_dir=tmp_path / "l")
    assert "hunter2" not in str(caught.value) and "x1y2" not in str(caught.value)
    with pytest.raises(ConfigError, match="literal"):
        make_settings(db=[f"app=postgresql://app@db.invalid/app?{query}"], log_dir=tmp_path)


def test_a_referenced_secret_in_a_url_query_is_masked(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[databases.app]\nurl = "postgresql://app@db.invalid/app?sslpassword=${SSLPW}"\n'
    )
    settings = make_settings(config=config, log_dir=tmp_path / "l", env={"SSLPW": "tls-Secret-99"})
    described = json.dumps(settings.describe())
    assert "tls-Secret-99" not in described and "sslpassword=***" in described


def _secret_workspace(tmp_path: Path) -> tuple[Path, object]:
    root = tmp_path / "root"
    root.mkdir()
    (root / "logo.svg").write_text(f'<svg xmlns="http://www.w3.org/2000/svg"><!-- {KEY} --></svg>')
    (root / "long.txt").write_text("x" * 490 + KEY + "\nsecond line\n")
    (root / "plain.txt").write_text("nothing to hide; hmac-Key is just a word\n")
    config = tmp_path / "c.toml"
    config.write_text('[audit]\nhmac_key = "${KEY}"\n')
    settings = make_settings(allow=[root], config=config, log_dir=tmp_path / "l", env={"KEY": KEY})
    return root, settings


async def test_a_file_holding_a_loaded_secret_never_leaves(tmp_path: Path) -> None:
    root, settings = _secret_workspace(tmp_path)
    async with Client(build_server(settings)) as client:  # type: ignore[arg-type]
        media = await client.call_tool(
            "read_media_file", {"path": str(root / "logo.svg")}, raise_on_error=False
        )
        text = await client.call_tool(
            "read_text_file", {"path": str(root / "long.txt")}, raise_on_error=False
        )
        found = [
            await client.call_tool(
                "search_file_contents",
                {"path": str(root), "pattern": KEY[:n] + ".", "regex": True},
            )
            for n in (5, 10, 15)
        ]
        plain = await client.call_tool("read_text_file", {"path": str(root / "plain.txt")})
    assert media.is_error and media.content[0].text == "not found or not allowed"
    assert text.is_error and text.content[0].text == "not found or not allowed"
    for result in found:
        assert result.structured_content is not None
        paths = {m["path"] for m in result.structured_content["matches"]}
        assert paths <= {str(root / "plain.txt")}
    assert not plain.is_error
    everything = json.dumps(
        [[c.model_dump(mode="json") for c in r.content] for r in (media, text)]
        + [r.structured_content["matches"] for r in found if r.structured_content]
    )
    for form in (KEY, KEY[:10], base64.b64encode(KEY.encode()).decode()[:12]):
        assert form not in everything
    denied = [c for c in events(settings.log_dir, "tool_call") if c["outcome"] == "denied"]
    assert [c["detail"] for c in denied] == [REASON, REASON]


def test_only_credentials_become_secrets(tmp_path: Path) -> None:
    """A setting referenced for convenience (`sslmode=${MODE}`) is not a secret: were it
    one, every file containing `require` would be refused."""
    config = tmp_path / "c.toml"
    config.write_text(
        '[databases.app]\nurl = "postgresql://app@db.invalid/app'
        '?sslmode=${MODE}&sslpassword=${SSLPW}"\n'
    )
    env = {"MODE": "require", "SSLPW": "tls-Secret-99"}
    settings = make_settings(config=config, log_dir=tmp_path / "l", env=env)
    assert settings.secrets.values == {"tls-Secret-99"}


async def test_audit_fields_escape_every_control_character(tmp_path: Path) -> None:
    settings = audit_settings(tmp_path)
    name = 'x\n{"event":"forged"}\x1b[2K\r\x7f\u2028\x85'
    async with Client(tool_server(settings)) as client:
        await call_unknown(client, name, {name: name})
        await client.call_tool("echo", {"text": name})
    lines = [line for f in list_log_files(settings.log_dir) for line in read_lines(f.path)]
    for line in lines:
        body = line.rstrip("\n")
        assert all(" " <= ch <= "~" for ch in body), repr(body)
