"""A short, real MCP session against the bundled demo workspace (`make demo`).

This is a client: it starts `mcp-fileserver` as a stdio subprocess, exactly as Claude
Desktop would, and prints what an assistant would see. It is never imported by the server.

    python -m mcp_fileserver.demo --config config/demo/demo.toml
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from fastmcp import Client
from fastmcp.client.transports import StdioTransport


def build_database(sql_script: Path, database: Path) -> None:
    """(Re)build the demo SQLite file from its SQL script; the binary is never committed."""
    if database.exists() and database.stat().st_mtime >= sql_script.stat().st_mtime:
        return
    tmp = database.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(tmp) as conn:
        conn.executescript(sql_script.read_text(encoding="utf-8"))
    conn.close()
    tmp.replace(database)


def show(title: str, body: str) -> None:
    print(f"\n\033[1m== {title}\033[0m" if sys.stdout.isatty() else f"\n== {title}")
    print(textwrap.indent(body.rstrip(), "   "))


def summarize(result: Any) -> str:
    """What an assistant would take from the result, in a few readable lines."""
    if result.is_error:
        text = " ".join(getattr(block, "text", "") for block in result.content)
        return f"REFUSED (isError): {text}"
    data = result.structured_content or {}
    if "rows" in data:
        header = " | ".join(column["name"] for column in data["columns"])
        rows = [" | ".join(str(value) for value in row) for row in data["rows"]]
        return "\n".join([header, "-" * len(header), *rows, f"({data['row_count']} rows)"])
    if "text" in data:
        return data["text"]
    if "matches" in data:
        return "\n".join(
            f"{m['path']}:{m['line']}: {m['text']}" if "line" in m else m["path"]
            for m in data["matches"]
        )
    if "databases" in data:
        return "\n".join(
            f"{d['name']} ({d['engine']}): {d['description']}" for d in data["databases"]
        )
    if "directories" in data:
        return "\n".join(data["directories"])
    return json.dumps(data, ensure_ascii=False)[:1500]


async def run(config: Path, log_dir: Path) -> int:
    workspace = config.parent / "workspace"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    if os.geteuid() == 0:
        # The server refuses root by default (least privilege); the demo says so and opts in.
        env["MCP_FILESERVER_ALLOW_ROOT"] = "1"
    env.setdefault("MCP_FILESERVER_LOG_LEVEL", "WARNING")
    transport = StdioTransport(
        command=sys.executable,
        args=["-m", "mcp_fileserver", "--config", str(config), "--log-dir", str(log_dir)],
        env=env,
        keep_alive=False,
    )
    async with Client(transport) as client:
        tools = await client.list_tools()
        names = {tool.name for tool in tools}
        show("tools/list", "\n".join(sorted(names)))

        async def call(title: str, tool: str, args: dict[str, Any]) -> None:
            if tool not in names:
                show(title, f"(tool {tool} is not available in this build)")
                return
            result = await client.call_tool(tool, args, raise_on_error=False)
            show(f"{title}\n   {tool}({json.dumps(args)})", summarize(result))

        await call("Which folders may I read?", "list_allowed_directories", {})
        await call("Read a note", "read_text_file", {"path": "notes/2026-11-meeting.md"})
        await call("Find CSV files", "search_files", {"path": ".", "pattern": "*.csv"})
        await call(
            "Search file contents", "search_file_contents", {"path": ".", "pattern": "audit"}
        )
        await call(
            "A path-traversal attempt (must be refused)",
            "read_text_file",
            {"path": "../outside-canary.txt"},
        )
        await call(
            "An absolute path outside the root (must be refused)",
            "read_text_file",
            {"path": str(workspace.parent.resolve() / "outside-canary.txt")},
        )
        await call("Databases", "list_databases", {})
        await call(
            "A query",
            "run_query",
            {
                "database": "bookshop",
                "sql": "SELECT title, published_year FROM books ORDER BY published_year LIMIT 5",
            },
        )
        await call(
            "A parameterised query",
            "run_query",
            {
                "database": "bookshop",
                "sql": "SELECT name, country FROM authors WHERE country = ?",
                "params": ["Nigeria"],
            },
        )
        await call(
            "A write (must be refused)",
            "run_query",
            {"database": "bookshop", "sql": "DELETE FROM orders"},
        )
    show("Audit log", f"every call above was recorded in {log_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config/demo/demo.toml"))
    parser.add_argument("--log-dir", type=Path, default=None)
    parser.add_argument(
        "--prepare-only", action="store_true", help="only build the demo database, then exit"
    )
    args = parser.parse_args(argv)
    config = args.config.resolve()
    sql_script = config.parent / "demo.sql"
    if sql_script.exists():
        build_database(sql_script, config.parent / "bookshop.db")
    if args.prepare_only:
        return 0
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="mcp-fileserver-demo-logs-"))
    return asyncio.run(run(config, log_dir.resolve()))


if __name__ == "__main__":
    raise SystemExit(main())
