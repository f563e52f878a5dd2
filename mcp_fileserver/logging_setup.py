"""Human-readable logs: stderr only, secrets masked, control characters escaped,
fastmcp's logging routed through.

stdout belongs to the MCP protocol. Every human log line, ours and fastmcp's (which
otherwise installs its own rich handlers), goes through one loguru sink on stderr whose
patcher masks every secret value the server loaded and escapes every control character
(newline, carriage return, ESC...) as a visible hex escape: text a client chose (a tool
name, a path) can neither forge a line of its own nor drive the operator's terminal.
"""

from __future__ import annotations

import logging
import os
import re
import sys

from loguru import logger

from mcp_fileserver.secrets import SecretStore

ENV_LOG_LEVEL = "MCP_FILESERVER_LOG_LEVEL"
_STDERR_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {name} | {message}"
# C0 (but tab), DEL, C1, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """`text` with every control character written as a visible escape."""
    if text.isprintable():
        return text
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"


class _InterceptHandler(logging.Handler):
    """Sends stdlib `logging` records (fastmcp, mcp, httpx...) to loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        message = record.getMessage()
        # exc_info is None, False (fastmcp passes exc_info=False) or a (type, value, tb).
        exc_type = record.exc_info[0] if isinstance(record.exc_info, tuple) else None
        if exc_type is None and message.startswith("Error calling tool"):
            # A refusal (ToolError) is expected behaviour, recorded with its outcome in the
            # audit log; an ERROR line per refused path would only train operators to
            # ignore ERROR. Crashes carry exc_info and stay at their level.
            level = "DEBUG"
        elif exc_type is not None:
            # No traceback in the human log (it could quote arguments); the type suffices.
            message = f"{message} ({exc_type.__name__})"
        name = record.name
        logger.patch(lambda r: r.__setitem__("name", name)).log(level, message)


def setup_logging(secrets: SecretStore | None = None, level: str | None = None) -> None:
    """Route all human-readable logging to stderr, masked. Idempotent."""
    level = (level or os.environ.get(ENV_LOG_LEVEL) or "INFO").upper()

    def mask(record: dict) -> None:  # loguru's patcher signature
        message = record["message"]
        if secrets is not None:
            message = secrets.mask(message)
        record["message"] = escape_controls(message)
        record["name"] = escape_controls(str(record["name"]))

    logger.remove()
    logger.configure(patcher=mask)  # type: ignore[arg-type]
    logger.add(
        sys.stderr,
        level=level,
        format=_STDERR_FORMAT,
        backtrace=False,
        diagnose=False,
        filter=lambda record: "audit" not in record["extra"],
    )

    logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)
    for name in ("fastmcp", "mcp", "FastMCP"):
        std = logging.getLogger(name)
        for handler in std.handlers[:]:
            std.removeHandler(handler)
        std.propagate = True
        # Never below INFO: the frameworks' DEBUG lines quote whole call arguments, which
        # the audit log redacts by key and shortens; stderr must not undo that.
        std.setLevel(max(logging.INFO, logging.getLevelNamesMapping().get(level, logging.INFO)))
