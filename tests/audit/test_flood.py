"""Issue 14 §3: no client can flood the history away or hide in it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fastmcp import Client

from mcp_fileserver.audit.files import list_log_files, read_lines
from mcp_fileserver.audit.records import to_json
from mcp_fileserver.audit.verify import verify_folder
from mcp_fileserver.config import AuditSettings
from tests.audit.helpers import SECRET, audit_settings, call_unknown, events, tool_server

CAP = AuditSettings().max_record_bytes


def _big_arguments(seed: int) -> dict[str, object]:
    """About 1 MB that the per-value limits alone keep large: 50 x 50 strings of 255
    non-ASCII characters (each escapes to six bytes), a secret among them."""
    row = [("é" * 254) + str(n) for n in range(50)]
    return {"seed": seed, "rows": [row for _ in range(49)] + [[SECRET] * 50]}


async def test_every_record_is_capped_unknown_tools_included(tmp_path: Path) -> None:
    settings = audit_settings(tmp_path, rate_limit={"enabled": False})
    async with Client(tool_server(settings)) as client:
        await client.call_tool("echo", {"text": "the first record of the day"})
        for n in range(25):
            await call_unknown(client, f"invented_{n}", _big_arguments(n))
            await client.call_tool("echo", {"text": "é" * 10_000, "n": n})
    lines = [line for f in list_log_files(settings.log_dir) for line in read_lines(f.path)]
    assert max(len(line) for line in lines) <= CAP + 200  # the chain fields come on top
    assert sum(len(line) for line in lines) < 2 * 1024 * 1024  # nothing was evicted
    calls = events(settings.log_dir, "tool_call")
    assert calls[0]["args"] == {"text": "the first record of the day"}
    oversized = [c["args"] for c in calls if "omitted" in c["args"]]
    assert len(oversized) == 25
    first = oversized[0]
    assert first["bytes"] > 1_000_000 and len(first["sha256"]) == 64
    assert len(first["preview"]) <= 120
    # the hash is of the arguments as JSON with the secret masked, never of the secret
    masked = json.loads(to_json(_big_arguments(0)).replace(SECRET, "***"))
    assert first["sha256"] == hashlib.sha256(to_json(masked).encode()).hexdigest()
    assert SECRET not in "".join(lines)
    assert verify_folder(settings.log_dir).ok


async def test_an_unusual_audit_volume_raises_an_alert(tmp_path: Path) -> None:
    settings = audit_settings(
        tmp_path, monitor={"audit_bytes_alert": 16 * 1024}, rate_limit={"enabled": False}
    )
    async with Client(tool_server(settings)) as client:
        for n in range(40):
            await call_unknown(client, f"invented_{n}", _big_arguments(n))
    alerts = [
        a for a in events(settings.log_dir, "security_alert") if a["pattern"] == "audit_volume"
    ]
    assert len(alerts) == 1  # once per window
    assert alerts[0]["audit_bytes"] > 16 * 1024 and "unusual audit volume" in alerts[0]["reason"]
