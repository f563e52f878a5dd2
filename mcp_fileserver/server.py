"""Wiring only: `build_server(settings)` returns the FastMCP app with every tool and
middleware registered. No policy lives here; each decision is in its own module."""

from __future__ import annotations

from importlib import import_module

from fastmcp import FastMCP

from mcp_fileserver import __version__
from mcp_fileserver.audit import install_audit
from mcp_fileserver.config import Settings
from mcp_fileserver.files.tools import register_file_tools
from mcp_fileserver.framework import (
    drop_idle_dereferencing,
    inline_schema_refs,
    map_refusals,
    pass_plain_structured_content,
    skip_unrecorded_spans,
)

# fastmcp defers these imports to the first tools/list (session-state store) and the
# first tool call; loading them at startup keeps ~0.3 s off the first request
# (tests/e2e/test_first_request.py, bench/RESULTS.md). Schema dereferencing (jsonref,
# and through it requests, ~6 MiB) is not needed: our schemas have no $defs left.
FIRST_REQUEST_MODULES = (
    "fastmcp.server.providers.prefab_payload",
    "fastmcp.server.providers.prefab_synthesis",
    "key_value.aio.adapters.pydantic",
    "key_value.aio.stores.memory",
)
for _module in FIRST_REQUEST_MODULES:
    import_module(_module)

INSTRUCTIONS = (
    "Read-only access to the files in the directories the user allowed and to the "
    "databases the user configured. Nothing can be written. Call list_allowed_directories "
    "or list_databases first to see what is available."
)


def build_server(settings: Settings) -> FastMCP:
    mcp = FastMCP(
        "mcp-fileserver",
        instructions=INSTRUCTIONS,
        version=__version__,
        # Unknown or mistyped arguments are refused, never coerced or ignored.
        strict_input_validation=True,
        # An unexpected exception reaches the client as a generic error, never a traceback.
        mask_error_details=True,
    )
    if settings.allowed_dirs:
        register_file_tools(mcp, settings)
    if settings.databases:
        # The SQL tools and their models load here; each engine's stack (sqlglot, the
        # guard, the driver) on its database's first call (sql/tools.py, LazyBackend).
        from mcp_fileserver.sql.tools import register_sql_tools

        register_sql_tools(mcp, settings)
    # Last, and inserted first in the chain: audit sees every call, whatever refuses it.
    install_audit(mcp, settings)
    # Refusals are plain Python in the core; here they become what FastMCP shows clients.
    map_refusals(mcp)
    # Schemas inlined once here, as FastMCP would on every tools/list; should one resist,
    # FastMCP inlines it on tools/list with jsonref, loaded now rather than then.
    if not inline_schema_refs(mcp):
        import_module("jsonref")
    # Per-call framework work with no effect here: the dereferencing middleware's layers
    # (nothing left to dereference) and the attributes of spans no SDK records.
    drop_idle_dereferencing(mcp)
    skip_unrecorded_spans()
    # Large answers (a page of 1,000 matches, a tree) are plain JSON data already: the
    # SDK shapes their envelope without dumping them twice more (issue 19).
    pass_plain_structured_content()
    return mcp
