"""Continuation cursors: where a walk stopped, as an opaque, tamper-evident token.

A walk visits entries in one stable order (pre-order, names sorted per directory), which
is the lexicographic order of their path components; a position is the components of an
entry (plus, for a content search, the byte offset and line number inside that file).
The token is the position and a digest of the query, signed with HMAC-SHA256 under a
key made when the process starts: a client can hand back only a cursor this process
issued for the same query. A cursor never opens anything by name: the resumed walk
starts again from the confined directory descriptor and only *compares* the names it
lists with the position, so even a forged position could not leave the roots.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from mcp_fileserver.errors import InvalidRequest

MAX_CURSOR_CHARS = 16384  # a position holds at most a PATH_MAX path, encoded
_SIG_BYTES = 16


@dataclass(frozen=True)
class Position:
    """Resume after `rel` (exclusive); with `offset`, inside the file `rel` at that byte."""

    rel: tuple[str, ...]
    offset: int | None = None
    line: int = 1


class CursorCodec:
    """Signs positions into tokens and checks tokens handed back."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)

    def encode(self, query: str, position: Position) -> str:
        body = json.dumps(
            {
                "q": _digest(query),
                "p": list(position.rel),
                "o": position.offset,
                "l": position.line,
            },
            separators=(",", ":"),
        ).encode("utf-8", errors="surrogatepass")
        sig = hmac.new(self._key, body, hashlib.sha256).digest()[:_SIG_BYTES]
        return f"{_b64(body)}.{_b64(sig)}"

    def decode(self, query: str, token: str) -> Position:
        """The position in `token`; InvalidRequest unless this process issued it for `query`."""
        try:
            body_text, sig_text = token.split(".")
            body, sig = _unb64(body_text), _unb64(sig_text)
        except ValueError:
            raise _invalid() from None
        good = hmac.new(self._key, body, hashlib.sha256).digest()[:_SIG_BYTES]
        if not hmac.compare_digest(sig, good):
            raise _invalid()
        try:
            data = json.loads(body.decode("utf-8", errors="surrogatepass"))
            digest, rel, offset, line = data["q"], data["p"], data["o"], data["l"]
        except (ValueError, KeyError, TypeError):
            raise _invalid() from None
        if digest != _digest(query):
            raise InvalidRequest("cursor belongs to a different query; repeat the same arguments")
        return Position(rel=tuple(rel), offset=offset, line=line)


def query_key(tool: str, *parts: object) -> str:
    """A canonical text of a tool's arguments (everything but the cursor)."""
    return json.dumps([tool, *parts], separators=(",", ":"), default=str)


def _digest(query: str) -> str:
    return hashlib.sha256(query.encode("utf-8", errors="surrogatepass")).hexdigest()[:32]


def _invalid() -> InvalidRequest:
    return InvalidRequest("invalid or expired cursor (cursors last until the server restarts)")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise ValueError("not base64") from None
