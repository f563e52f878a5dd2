"""Reference point, not a product: the least a FastMCP stdio server can do per SQL call.

One `run_query(sql)` tool that runs the text on one held PyMySQL connection, with no
guard, no transaction, no time limit, no session reset, no audit, no middleware and no
limits, and returns the rows. Measured beside our server and DBHub (bench_mysql.py), it
separates what the framework (FastMCP + the MCP Python SDK over stdio) and the driver cost
per call from what this project adds. Never point it at anything but benchmark data.

Usage: python bench/floor_mysql_server.py  (MYSQL_FLOOR_PORT, MYSQL_FLOOR_USER,
MYSQL_FLOOR_PASSWORD, MYSQL_FLOOR_DATABASE in the environment; host 127.0.0.1)
"""

from __future__ import annotations

import os
import threading
from typing import Any

import pymysql
from fastmcp import FastMCP


def build() -> FastMCP:
    mcp = FastMCP("bench-mysql-floor")
    conn = pymysql.connect(
        host="127.0.0.1",
        port=int(os.environ["MYSQL_FLOOR_PORT"]),
        user=os.environ["MYSQL_FLOOR_USER"],
        password=os.environ["MYSQL_FLOOR_PASSWORD"],
        database=os.environ["MYSQL_FLOOR_DATABASE"],
        autocommit=True,
    )
    lock = threading.Lock()  # sync tools run in worker threads; one connection

    @mcp.tool
    def run_query(sql: str) -> dict[str, Any]:
        """Run SQL (benchmark reference: no checks at all)."""
        with lock, conn.cursor() as cursor:
            cursor.execute(sql)
            return {"rows": [list(row) for row in cursor.fetchall()]}

    return mcp


if __name__ == "__main__":
    build().run(transport="stdio", show_banner=False)
