"""Audit, monitoring and rate limits: one outermost middleware and a chained JSON log.

`install_audit(mcp, settings)` opens the folder's log (shared within the process) and
puts `AuditMiddleware` first in the chain, so every call is recorded, whatever refuses
or breaks it later. `audit_of(mcp)` finds it again (the runner writes start and stop
records through it). See docs/audit.md.
"""

from __future__ import annotations

import weakref

from fastmcp import FastMCP
from loguru import logger

from mcp_fileserver.audit import log as audit_log
from mcp_fileserver.audit.middleware import AuditMiddleware
from mcp_fileserver.config import Settings
from mcp_fileserver.errors import ConfigError

__all__ = ["AuditMiddleware", "audit_of", "install_audit"]


def install_audit(mcp: FastMCP, settings: Settings) -> AuditMiddleware | None:
    """Install the audit middleware first; None when there is nothing for it to do."""
    needed = (
        settings.audit.enabled
        or settings.monitor.enabled
        or settings.rate_limit.enabled
        or not settings.secrets.empty
    )
    if not needed:
        return None
    log = None
    if settings.audit.enabled:
        try:
            log = audit_log.acquire(
                settings.log_dir, settings.audit, settings.hmac_key, settings.checkpoint_key
            )
        except OSError as exc:
            problem = f"audit log folder {settings.log_dir} cannot be used: {exc.strerror or exc}"
            if not settings.audit.fail_open:
                raise ConfigError(
                    f"{problem}; fix it, choose another with --log-dir, or set "
                    "[audit] fail_open = true to serve without an audit log"
                ) from None
            logger.warning("{}; serving UNAUDITED calls because fail_open = true", problem)
    middleware = AuditMiddleware(settings, log, mcp)
    mcp.middleware.insert(0, middleware)
    if log is not None:
        # Released when the runner closes it, or when the server is garbage collected.
        middleware.closer = weakref.finalize(middleware, audit_log.release, log)
    return middleware


def audit_of(mcp: FastMCP) -> AuditMiddleware | None:
    return next((m for m in mcp.middleware if isinstance(m, AuditMiddleware)), None)
