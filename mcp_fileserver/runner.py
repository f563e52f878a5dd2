"""The serving lifecycle: logging, server, stdio loop, clean shutdown."""

from __future__ import annotations

import anyio
from fastmcp import FastMCP
from loguru import logger

from mcp_fileserver import __version__
from mcp_fileserver.audit.lifecycle import install_signal_handlers, record_start, record_stop
from mcp_fileserver.config import Settings
from mcp_fileserver.files.scan_worker import start_workers
from mcp_fileserver.logging_setup import setup_logging
from mcp_fileserver.sandbox import ROOT_WARNING, apply_sandbox, refuse_root
from mcp_fileserver.server import build_server
from mcp_fileserver.startup_gc import collector_paused
from mcp_fileserver.stdio import run_stdio


def serve(settings: Settings) -> int:
    with collector_paused():  # what startup builds is long-lived: see startup_gc.py
        mcp = _prepare(settings)
    stop_reason = "stdin closed"
    try:
        protocol = settings.protocol
        anyio.run(run_stdio, mcp, protocol.max_message_bytes, protocol.eof_drain_s)
    except BaseException as exc:
        stop_reason = f"stopped by {type(exc).__name__}"
        raise
    finally:
        record_stop(mcp, stop_reason)
    logger.info("mcp-fileserver stopped")
    return 0


def _prepare(settings: Settings) -> FastMCP:
    """Everything before the first request: the server, the sandbox, the start record."""
    setup_logging(settings.secrets)
    if refuse_root(settings):  # raises ConfigError (exit 2) for root without --allow-root
        logger.warning(ROOT_WARNING)
    mcp = build_server(settings)
    # After every import and before the first request; raises ConfigError when `require`
    # cannot be met. The start record carries what it enforced.
    sandbox = apply_sandbox(settings)
    # Still single-threaded: the content-search worker is forked here, inside the sandbox.
    start_workers()
    (logger.info if sandbox.status == "enforced" else logger.warning)(sandbox.summary())
    logger.info(
        "mcp-fileserver {} serving {} director{} and {} database{} over stdio",
        __version__,
        len(settings.allowed_dirs),
        "y" if len(settings.allowed_dirs) == 1 else "ies",
        len(settings.databases),
        "" if len(settings.databases) == 1 else "s",
    )
    record_start(mcp, settings, {"sandbox": sandbox.as_dict()})
    install_signal_handlers(mcp)  # SIGTERM/SIGINT/SIGHUP: record, server_stop, exit 0
    return mcp
