from mcp_fileserver.cli import main

raise SystemExit(main())
