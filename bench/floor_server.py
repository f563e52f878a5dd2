"""Reference point, not a product: the least a FastMCP stdio server can do per call.

One `read_text_file(path)` tool that opens and reads the file with no confinement, no
audit, no middleware, no limits. Measured beside our server and the Node server, it
separates the cost of the framework (FastMCP + the MCP Python SDK over stdio) from the
cost of what this project adds on top. Never point it at anything but benchmark data.

Usage: python bench/floor_server.py ROOT
"""

from __future__ import annotations

import sys
from pathlib import Path

from fastmcp import FastMCP
from pydantic import BaseModel


class TextFile(BaseModel):
    path: str
    text: str


def build(root: Path) -> FastMCP:
    mcp = FastMCP("bench-floor")

    @mcp.tool
    def read_text_file(path: str) -> TextFile:
        """Read a text file (benchmark reference: no checks at all)."""
        return TextFile(path=path, text=Path(path).read_text(encoding="utf-8"))

    @mcp.tool
    def list_allowed_directories() -> list[str]:
        """The benchmark root."""
        return [str(root)]

    return mcp


if __name__ == "__main__":
    build(Path(sys.argv[1])).run(transport="stdio", show_banner=False)
