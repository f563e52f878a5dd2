"""One real MCP session against a built artifact (frozen executable or Docker image):
every tool is called once with valid arguments, plus refused attacks, and the audit log
is checked afterwards. Calling *every* tool is the point: a module PyInstaller missed
only shows up when the code that imports it runs."""

from __future__ import annotations

import json
import sqlite3
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastmcp import Client

CANARY = "CANARY-4c1d9e7f-outside-the-root"
NOTE = "hello from the allowed root\nsecond line\n"
MASKED_ERROR = "Error calling tool"  # fastmcp's text for an unexpected exception (a bug)


@dataclass
class Workspace:
    """Host side: `root` is served, `outside` holds the canary, `logs` gets the audit log."""

    base: Path
    root: Path = field(init=False)
    outside: Path = field(init=False)
    logs: Path = field(init=False)
    db: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.base / "root"
        self.outside = self.base / "outside"
        self.logs = self.base / "logs"
        self.db = self.root / "app.db"
        (self.root / "sub").mkdir(parents=True)
        self.outside.mkdir()
        self.logs.mkdir()
        (self.root / "notes.txt").write_text(NOTE)
        (self.root / "sub" / "inner.txt").write_text("inner file\n")
        (self.root / "pixel.png").write_bytes(tiny_png())
        (self.outside / "secret.txt").write_text(CANARY + "\n")
        with sqlite3.connect(self.db) as conn:
            conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            conn.executemany(
                "INSERT INTO items (id, name) VALUES (?, ?)",
                [(1, "apple"), (2, "banana"), (3, "cherry")],
            )
        conn.close()
        for path in (self.base, self.root, self.root / "sub", self.outside):
            path.chmod(0o755)
        for path in (self.db, self.root / "notes.txt", self.root / "sub" / "inner.txt"):
            path.chmod(0o644)

    def audit_records(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for path in sorted(self.logs.glob("audit*.jsonl")):
            records += [json.loads(line) for line in path.read_text().splitlines() if line]
        return records

    def audit_text(self) -> str:
        return "".join(p.read_text() for p in sorted(self.logs.glob("audit*.jsonl")))


def tiny_png() -> bytes:
    """A valid 1x1 PNG, built here so no binary file is committed."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def valid_calls(root: str, database: str = "app") -> dict[str, dict[str, Any]]:
    """One valid call per tool, with `root` as the server sees the allowed directory."""
    return {
        "list_allowed_directories": {},
        "list_directory": {"path": root},
        "directory_tree": {"path": root},
        "read_text_file": {"path": f"{root}/notes.txt"},
        "read_multiple_files": {"paths": [f"{root}/notes.txt", f"{root}/sub/inner.txt"]},
        "read_media_file": {"path": f"{root}/pixel.png"},
        "get_file_info": {"path": f"{root}/notes.txt"},
        "search_files": {"path": root, "pattern": "*.txt"},
        "search_file_contents": {"path": root, "pattern": "hel+o", "regex": True},
        "list_databases": {},
        "list_tables": {"database": database},
        "describe_table": {"database": database, "table": "items"},
        "run_query": {
            "database": database,
            "sql": "SELECT name FROM items WHERE id = ?",
            "params": [2],
        },
        "explain_query": {"database": database, "sql": "SELECT * FROM items WHERE id = 1"},
    }


# What each valid call must show (substring of its JSON result).
EXPECTED = {
    "list_allowed_directories": "{root}",
    "list_directory": "notes.txt",
    "directory_tree": "inner.txt",
    "read_text_file": "hello from the allowed root",
    "read_multiple_files": "inner file",
    "read_media_file": "image/png",
    "get_file_info": str(len(NOTE)),
    "search_files": "inner.txt",
    "search_file_contents": "hello from the allowed root",
    "list_databases": "sqlite",
    "list_tables": "items",
    "describe_table": "name",
    "run_query": "banana",
    "explain_query": "items",
}


def attacks(root: str, database: str = "app") -> list[tuple[str, dict[str, Any]]]:
    return [
        ("read_text_file", {"path": f"{root}/../outside/secret.txt"}),
        ("read_text_file", {"path": "../outside/secret.txt"}),
        ("list_directory", {"path": f"{root}/.."}),
        ("run_query", {"database": database, "sql": "DELETE FROM items"}),
        ("run_query", {"database": database, "sql": "ATTACH DATABASE '/tmp/x.db' AS x"}),
    ]


def result_text(result: Any) -> str:
    parts = [getattr(block, "text", "") or "" for block in result.content]
    if result.structured_content is not None:
        parts.append(json.dumps(result.structured_content))
    return "\n".join(parts)


async def exercise(client: Client, root: str, database: str = "app") -> set[str]:
    """Call every tool the server lists and the attacks; returns the tool names called."""
    calls = valid_calls(root, database)
    listed = {tool.name for tool in await client.list_tools()}
    assert listed == set(calls), (
        f"the session must call every tool: missing calls for {sorted(listed - set(calls))}, "
        f"tools not served: {sorted(set(calls) - listed)}"
    )
    seen = []
    for name, arguments in calls.items():
        result = await client.call_tool(name, arguments, raise_on_error=False)
        text = result_text(result)
        assert not result.is_error, f"{name}({arguments}) failed: {text}"
        assert EXPECTED[name].format(root=root) in text, f"{name}: {text[:500]}"
        seen.append(text)
    for name, arguments in attacks(root, database):
        result = await client.call_tool(name, arguments, raise_on_error=False)
        text = result_text(result)
        assert result.is_error, f"{name}({arguments}) was not refused: {text[:500]}"
        assert MASKED_ERROR not in text, f"{name}({arguments}) crashed instead of refusing"
        seen.append(text)
    rows = await client.call_tool(
        "run_query", {"database": database, "sql": "SELECT count(*) AS n FROM items"}
    )
    assert '"n"' in result_text(rows) and "3" in result_text(rows), "the table was modified"
    assert not any(CANARY in text for text in seen), "the canary leaked into a result"
    return set(calls)


def check_audit(workspace: Workspace, called: set[str]) -> list[dict[str, Any]]:
    """Every call has its record, the attacks are recorded as refused, the canary is absent."""
    records = workspace.audit_records()
    assert records, f"no audit records in {workspace.logs}"
    calls = [r for r in records if r.get("event") == "tool_call"]
    assert called <= {r.get("tool") for r in calls}, "a tool call has no audit record"
    refused = [r for r in calls if r.get("outcome") in ("denied", "invalid")]
    assert len(refused) >= len(attacks("/")), f"attacks not recorded as refused: {refused}"
    assert CANARY not in workspace.audit_text()
    return records


def check_sandbox_enforced(records: list[dict[str, Any]]) -> None:
    """The start record says the kernel sandbox (Landlock & co.) is on in this build."""
    starts = [r for r in records if r.get("event") == "server_start"]
    assert starts, "no server_start record"
    sandbox = starts[-1].get("sandbox") or {}
    assert sandbox.get("status") == "enforced", f"sandbox not enforced: {sandbox}"
