"""Helpers for the audit tests: settings with audit options, a server of test tools,
and reading records back."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from fastmcp import FastMCP
from pydantic import BaseModel

from mcp_fileserver.audit import install_audit
from mcp_fileserver.audit.files import list_log_files, read_lines
from mcp_fileserver.config import Settings
from mcp_fileserver.errors import LimitExceeded, NotAllowed, PolicyViolation
from mcp_fileserver.framework import map_refusals
from tests.conftest import make_settings

SECRET = "s3cr3t-Pa55w0rd-canary"


def audit_settings(
    tmp_path: Path,
    *,
    audit: dict[str, Any] | None = None,
    monitor: dict[str, Any] | None = None,
    rate_limit: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    hmac_key: str | None = None,
) -> Settings:
    """Settings for tmp_path/root with the given [audit]/[monitor]/[rate_limit] overrides.

    A `${AUDIT_SECRET}` database password makes SECRET a known secret value (the database
    is never contacted: these settings are used with `tool_server`)."""
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    (root / "hello.txt").write_text("hello\n")
    config = tmp_path / "server.toml"
    config.write_text(
        '[databases.app]\nurl = "postgresql://app:${AUDIT_SECRET}@db.invalid/app"\n'
        + ('[audit]\nhmac_key = "${AUDIT_HMAC}"\n' if hmac_key else "")
    )
    environ = {"AUDIT_SECRET": SECRET, **(env or {})}
    if hmac_key:
        environ["AUDIT_HMAC"] = hmac_key
    settings = make_settings(allow=[root], config=config, log_dir=tmp_path / "logs", env=environ)
    return dataclasses.replace(
        settings,
        audit=settings.audit.model_copy(update=audit or {}),
        monitor=settings.monitor.model_copy(update=monitor or {}),
        rate_limit=settings.rate_limit.model_copy(update=rate_limit or {}),
    )


class Echo(BaseModel):
    text: str


def tool_server(settings: Settings) -> FastMCP:
    """Small tools that exercise every outcome, audited like the real server."""
    mcp = FastMCP("audit-test", strict_input_validation=True, mask_error_details=True)

    @mcp.tool
    def echo(text: str, n: int = 0) -> Echo:
        return Echo(text=text)

    @mcp.tool
    def read(path: str) -> str:
        if path.startswith(("/", "..")):
            raise NotAllowed(detail="outside every root")
        return f"contents of {path}"

    @mcp.tool
    def query(sql: str) -> str:
        if sql.lstrip().lower().startswith(("drop", "delete", "insert", "update")):
            raise PolicyViolation("only read-only statements are allowed", detail="write")
        return "1 row"

    @mcp.tool
    def big(size: int) -> str:
        raise LimitExceeded(f"too large: {size} bytes")

    @mcp.tool
    def crash() -> str:
        raise RuntimeError(f"boom with {SECRET}")

    @mcp.tool
    def leak(prefix: str = "") -> dict[str, str]:
        return {"value": f"{prefix}password is {SECRET}!"}

    install_audit(mcp, settings)
    map_refusals(mcp)  # as build_server does
    return mcp


def records(folder: Path) -> list[dict[str, Any]]:
    """Every record in chain order, across rotated and compressed files."""
    out = []
    for item in list_log_files(folder):
        out.extend(json.loads(line) for line in read_lines(item.path))
    return out


def all_log_text(folder: Path) -> str:
    return "".join(line for item in list_log_files(folder) for line in read_lines(item.path))


def events(folder: Path, event: str) -> list[dict[str, Any]]:
    return [r for r in records(folder) if r["event"] == event]


async def call_unknown(client: Any, name: str, arguments: dict[str, Any]) -> str:
    """Call a tool name the server does not have. The answer is the JSON-RPC error -32602
    (the specification's), or a rate-limit refusal once the unknown names' bucket is empty;
    returns the message either way."""
    from mcp.shared.exceptions import MCPError

    try:
        result = await client.call_tool(name, arguments, raise_on_error=False)
    except MCPError as exc:
        assert exc.error.code == -32602
        return exc.error.message
    assert result.is_error and "rate limit" in result.content[0].text.lower()
    return result.content[0].text
