"""MCP Roots: the client may narrow the configured directories, never widen them.

When the client declared the `roots` capability, the effective roots of a request are
`Confinement.narrow(client roots)`: the intersection with the configured directories.
A client that declares roots none of which meets a configured directory gets no roots
at all (every path is refused). A client that does not declare the capability, or lists
no roots at all (many clients, the MCP Inspector among them, declare the capability and
answer with an empty list), sets no boundary and gets the configured roots: that is never
wider than the operator's configuration, and the official filesystem server does the same.

How the roots are fetched depends on the negotiated protocol:
- handshake era (<= 2025-11-25): a `roots/list` request to the client, mid-call;
- 2026-07-28: the tool answers `InputRequiredResult` asking for `roots/list`, and the
  client retries the call with the answer (SEP-2322).

The answer is cached (per session on the handshake era; per process on 2026-07-28, where
there are no sessions and a stdio server serves one client) until the client sends
`notifications/roots/list_changed`. A client that declares roots but cannot list them is
refused (fail closed) rather than given the wider configured set.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
import mcp_types
from fastmcp import Context
from fastmcp.server.middleware import Middleware, MiddlewareContext
from loguru import logger
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp_fileserver.errors import Unavailable
from mcp_fileserver.files.confine import Confinement, Root

INPUT_KEY = "mcp_fileserver/roots"
ROOTS_TIMEOUT_S = 10.0
MAX_CACHED_SESSIONS = 64
_PROCESS_KEY = "process"


def paths_from_uris(uris: list[str]) -> list[str]:
    """Local paths of `file://` root URIs; other schemes and remote hosts are ignored."""
    paths: list[str] = []
    for uri in uris:
        parts = urlsplit(uri)
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            continue
        path = unquote(parts.path)  # a URI is percent-encoded by definition
        if path.startswith("/") and "\0" not in path:
            paths.append(path)
    return paths


class ClientRoots:
    """Effective roots per client, cached until the client says its roots changed."""

    def __init__(self, confinement: Confinement) -> None:
        self.confinement = confinement
        self._cache: OrderedDict[str, tuple[Root, ...]] = OrderedDict()

    def invalidate(self) -> None:
        self._cache.clear()

    def narrow(self, uris: list[str]) -> tuple[Root, ...]:
        return self.confinement.narrow(paths_from_uris(uris))

    async def effective(self, ctx: Context) -> tuple[Root, ...] | mcp_types.InputRequiredResult:
        session = ctx.session
        caps = session.client_capabilities
        if caps is None or caps.roots is None:
            return self.confinement.roots
        modern = session.protocol_version in MODERN_PROTOCOL_VERSIONS
        key = _PROCESS_KEY if modern else f"session:{ctx.session_id}"
        if modern:
            answer = (ctx.input_responses or {}).get(INPUT_KEY)
            if isinstance(answer, mcp_types.ListRootsResult):
                return self._store(key, [str(r.uri) for r in answer.roots])
            if answer is not None:
                raise Unavailable("the client's roots could not be listed")
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if modern:
            return mcp_types.InputRequiredResult(
                input_requests={INPUT_KEY: mcp_types.ListRootsRequest()}
            )
        return self._store(key, await self._ask(session))

    async def _ask(self, session: Any) -> list[str]:
        try:
            with anyio.fail_after(ROOTS_TIMEOUT_S), warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                result = await session.list_roots()
        except Exception as exc:  # the client's failure must not widen anything
            logger.warning("client declared roots but roots/list failed: {}", type(exc).__name__)
            raise Unavailable("the client's roots could not be listed") from None
        return [str(r.uri) for r in result.roots]

    def _store(self, key: str, uris: list[str]) -> tuple[Root, ...]:
        # No roots listed: no boundary set. Roots listed but none usable (outside, remote,
        # another scheme): nothing, since the client did set a boundary.
        roots = self.narrow(uris) if uris else self.confinement.roots
        self._cache[key] = roots
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED_SESSIONS:
            self._cache.popitem(last=False)
        return roots


class RootsChangedMiddleware(Middleware):
    """Drops cached client roots when the client announces that they changed."""

    def __init__(self, client_roots: ClientRoots) -> None:
        self.client_roots = client_roots

    async def on_notification(self, context: MiddlewareContext[Any], call_next: Any) -> Any:
        if context.method == "notifications/roots/list_changed":
            self.client_roots.invalidate()
        return await call_next(context)
