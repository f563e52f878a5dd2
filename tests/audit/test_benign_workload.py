"""Issue 14 §1: the shipped defaults serve what a real agent does, with zero refusals.

The real server (file tools and a SQLite database), the shipped [monitor] and
[rate_limit] defaults, through the MCP protocol: parallel fan-outs and the searches and
queries that look like attacks to a naive scanner but are ordinary work. Each kind is
repeated past the lockout threshold, so a finding that counted towards a lockout would
show up as a refusal here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

from fastmcp import Client

from mcp_fileserver.audit.files import list_log_files, read_lines
from mcp_fileserver.config import MonitorSettings, RateLimitSettings
from mcp_fileserver.server import build_server
from tests.conftest import make_settings

FAN_OUT = 64
REPEAT = MonitorSettings().violation_threshold + 2

SEARCHES = ["```", "'${HOME}'", "../", "/etc/hosts", "$(", "; rm -rf", "~/.ssh", "%2e%2e"]
NAME_SEARCHES = ["*.pem", ".env", "id_rsa*", "*.key"]
QUERIES = [
    "SELECT title FROM notes WHERE tag = '#python'",
    "SELECT count(*) FROM notes WHERE body = '; DROP TABLE x; --'",
    "SELECT title FROM notes WHERE body LIKE '%'' OR ''1''=''1%'",
    "SELECT title FROM notes WHERE tag = '#sql' -- the tag column\nORDER BY title",
    "SELECT \"title\" FROM notes WHERE body = '/etc/passwd and ../../x'",
]


def _workspace(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "guide.md").write_text(
        "# Guide\n```python\nprint('hi')\n```\nSee ../other and /etc/hosts; export '${HOME}'\n"
    )
    for n in range(FAN_OUT):
        (root / f"module_{n}.py").write_text(f"# module {n}\nVALUE = {n}\n")
    db = tmp_path / "notes.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (title TEXT, tag TEXT, body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('a', '#python', '; DROP TABLE x; --')")
    return root, db


def _records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in list_log_files(folder) for line in read_lines(f.path)]


async def test_shipped_defaults_never_refuse_ordinary_work(tmp_path: Path) -> None:
    root, db = _workspace(tmp_path)
    settings = make_settings(allow=[root], db=[f"notes=sqlite:///{db}"], log_dir=tmp_path / "logs")
    assert settings.rate_limit == RateLimitSettings() and settings.monitor == MonitorSettings()
    calls: list[tuple[str, dict[str, Any]]] = []
    # a fan-out of parallel reads, as an agent opening every module at once
    calls += [("read_text_file", {"path": str(root / f"module_{n}.py")}) for n in range(FAN_OUT)]
    for _ in range(REPEAT):
        calls += [("search_file_contents", {"path": str(root), "pattern": p}) for p in SEARCHES]
        calls += [("search_files", {"path": str(root), "pattern": p}) for p in NAME_SEARCHES]
        calls += [("run_query", {"database": "notes", "sql": q}) for q in QUERIES]
    async with Client(build_server(settings)) as client:
        # the fan-out first, all at once; then everything else, 64 calls in flight
        for start in range(0, len(calls), FAN_OUT):
            batch = calls[start : start + FAN_OUT]
            results = await asyncio.gather(
                *(client.call_tool(name, args, raise_on_error=False) for name, args in batch)
            )
            refused = [
                (name, args, r.content[0].text)
                for (name, args), r in zip(batch, results, strict=True)
                if r.is_error
            ]
            assert refused == []
    records = _records(settings.log_dir)
    outcomes = [r["outcome"] for r in records if r["event"] == "tool_call"]
    assert len(outcomes) == len(calls) and set(outcomes) == {"ok"}
    assert not [r for r in records if r["event"] == "security_incident"]
    # data is judged as data: searches, globs and SQL literals raise no alert at all
    assert not [r for r in records if r["event"] == "security_alert"]


async def test_a_short_excess_waits_and_a_flood_is_refused_retryably(tmp_path: Path) -> None:
    root, _ = _workspace(tmp_path)
    settings = make_settings(allow=[root], log_dir=tmp_path / "logs")
    limits = settings.rate_limit
    excess = int(limits.per_tool_per_s * limits.max_wait_s) // 2
    read = ("read_text_file", {"path": str(root / "module_0.py")})
    async with Client(build_server(settings)) as client:
        burst = await asyncio.gather(
            *(
                client.call_tool(*read, raise_on_error=False)
                for _ in range(limits.per_tool_burst + excess)
            )
        )
        assert not [r for r in burst if r.is_error]  # the excess waited, briefly
    # a flood: far more than a slow bucket can serve within its bounded wait
    slow = limits.model_copy(update={"per_tool_per_s": 1.0, "per_tool_burst": 10})
    async with Client(build_server(dataclasses.replace(settings, rate_limit=slow))) as client:
        flood = await asyncio.gather(
            *(client.call_tool(*read, raise_on_error=False) for _ in range(60))
        )
    refused = [r.content[0].text for r in flood if r.is_error]
    assert len(refused) >= 30, "a sustained flood must be refused"
    assert all(t.startswith("rate limit: too many calls to read_text_file") for t in refused)
    assert all("retry in" in t for t in refused)
