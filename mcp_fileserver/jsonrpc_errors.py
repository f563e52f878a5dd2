"""The answer to a line on stdin that is not one valid JSON-RPC message.

JSON-RPC 2.0 says: unparsable JSON gets `-32700` with id null; a message that is JSON
but not a valid request gets `-32600`, with the request's id when it can be known. MCP
has no batches (removed in 2025-06-18): each request of a batch array gets `-32600`
under its own id, so a client waiting on it is answered. Notifications and responses
are never answered. Plain Python: `(id, code, message)` triples; stdio.py sends them.
"""

from __future__ import annotations

import json
from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600

RequestId = int | str | None
ErrorTriple = tuple[RequestId, int, str]

BATCH_MESSAGE = "batch requests are not supported: send one JSON-RPC message per line"
SHAPE_MESSAGE = (
    'invalid request: expected a JSON-RPC 2.0 object with "jsonrpc": "2.0", a "method" '
    'and, for a request, an "id"'
)


def protocol_errors(line: str) -> list[ErrorTriple]:
    """The error answers owed for `line`, which failed JSON-RPC validation."""
    if not line.strip():
        return []  # a blank line between messages: nothing to answer
    try:
        data = json.loads(line)
    except RecursionError:
        return [(sniff_id(line.encode("utf-8", "replace")), INVALID_REQUEST, _too_deep())]
    except ValueError:
        return [(None, PARSE_ERROR, "parse error: the line is not valid JSON")]
    if isinstance(data, list):
        ids = [item["id"] for item in data if _is_request(item)]
        return [(i, INVALID_REQUEST, BATCH_MESSAGE) for i in ids] or [
            (None, INVALID_REQUEST, BATCH_MESSAGE)
        ]
    if not isinstance(data, dict):
        return [(None, INVALID_REQUEST, SHAPE_MESSAGE)]
    if "method" not in data and ("result" in data or "error" in data):
        return []  # a (malformed) response to us: a response is never answered
    if "method" in data and "id" not in data:
        return []  # a notification: never answered, even when malformed
    request_id = data.get("id")
    return [(request_id if _valid_id(request_id) else None, INVALID_REQUEST, SHAPE_MESSAGE)]


def too_large(head: bytes, size: int, limit: int) -> list[ErrorTriple]:
    """The answer to a line over `limit` bytes, of which only `head` was kept."""
    message = (
        f"message too large: {size:,} bytes, the limit is {limit:,} ([protocol] max_message_bytes)"
    )
    return [(sniff_id(head), INVALID_REQUEST, message)]


def sniff_id(head: bytes) -> RequestId:
    """The `id` of the top-level object at the start of `head`, if it is there before
    anything nested; None otherwise. Used when the whole message cannot be parsed."""
    text = head.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if not text.startswith("{", pos):
        return None
    pos += 1
    while True:
        pos = _skip_ws(text, pos)
        try:
            key, pos = decoder.raw_decode(text, pos)
            pos = _skip_ws(text, pos)
            if not isinstance(key, str) or not text.startswith(":", pos):
                return None
            pos = _skip_ws(text, pos + 1)
            if text.startswith(("{", "["), pos):
                return None  # a nested value first: the id, if any, is out of reach
            value, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            return None
        if key == "id":
            return value if _valid_id(value) else None
        pos = _skip_ws(text, pos)
        if not text.startswith(",", pos):
            return None
        pos += 1


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _is_request(item: Any) -> bool:
    return isinstance(item, dict) and "method" in item and _valid_id(item.get("id"))


def _too_deep() -> str:
    return "invalid request: the message is nested too deeply"
