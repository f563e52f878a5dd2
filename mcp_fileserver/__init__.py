"""mcp-fileserver: a security-first, read-only MCP server for files and SQL."""

__version__ = "0.1.0"
