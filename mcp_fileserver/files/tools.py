"""The file tools: thin adapters from MCP calls to the confinement module."""

from __future__ import annotations

from fastmcp import FastMCP
from mcp.types import ToolAnnotations
from pydantic import BaseModel

from mcp_fileserver.config import Settings

READ_ONLY = ToolAnnotations(readOnlyHint=True, openWorldHint=False, idempotentHint=True)


class AllowedDirectories(BaseModel):
    directories: list[str]


def register_file_tools(mcp: FastMCP, settings: Settings) -> None:
    roots = [str(p) for p in settings.allowed_dirs]

    @mcp.tool(annotations=READ_ONLY)
    def list_allowed_directories() -> AllowedDirectories:
        """The directories this server may read; paths given to other tools must be inside one."""
        return AllowedDirectories(directories=roots)
