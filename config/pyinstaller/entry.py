"""Entry point of the frozen executable: exactly the installed `mcp-fileserver` command."""

from mcp_fileserver.cli import main

raise SystemExit(main())
