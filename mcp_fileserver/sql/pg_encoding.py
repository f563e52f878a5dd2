"""Text from every PostgreSQL server encoding comes back as text.

Each session asks for `client_encoding=UTF8`, so the server converts LATIN1, WIN1252,
EUC_JP, ... to UTF-8 itself. A `SQL_ASCII` database is the exception: its bytes carry no
declared encoding, and the server neither converts them nor lets a UTF8 client read
bytes that are not UTF-8 ("invalid byte sequence"); psycopg, told SQL_ASCII, hands back
`bytes` and cannot send a non-ASCII query. So a SQL_ASCII session declares LATIN1, the
one client encoding in which every byte is valid and passes through unchanged, and the
bytes are UTF-8 on our side: query text and parameters go out as their UTF-8 bytes
(`to_wire`), text values are decoded as UTF-8 with replacement characters by the
loaders below, names and messages are re-read as UTF-8 (`from_wire`), and query
results say so.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.pq import Format

CLIENT_ENCODING = "UTF8"
UNDECLARED = "SQL_ASCII"
BYTES_CLIENT_ENCODING = "LATIN1"  # for SQL_ASCII servers: every byte passes unchanged
SQL_ASCII_NOTE = (
    "the database's encoding is SQL_ASCII (undeclared): text was decoded as UTF-8, "
    "bytes that are not UTF-8 replaced with U+FFFD"
)
# Types psycopg loads as text; 0 is its fallback for types it does not know (enums,
# domains over text, extension types such as citext).
_TEXT_TYPES = ("text", "varchar", "bpchar", "name", "char", "xml", "unknown")


class _ReplacingTextLoader(Loader):
    def load(self, data: Buffer) -> str:
        return bytes(data).decode("utf-8", "replace")


class _ReplacingJsonLoader(Loader):
    def load(self, data: Buffer) -> Any:
        return json.loads(bytes(data).decode("utf-8", "replace"))


def client_encoding(undeclared: bool) -> str:
    return BYTES_CLIENT_ENCODING if undeclared else CLIENT_ENCODING


def to_wire(text: str) -> str:
    """`text` as the LATIN1 string psycopg will send as exactly its UTF-8 bytes."""
    return text.encode("utf-8").decode("latin-1")


def from_wire(text: str) -> str:
    """The inverse of `to_wire` for what psycopg decoded as LATIN1; never fails."""
    return text.encode("latin-1", "replace").decode("utf-8", "replace")


def server_encoding(conn: psycopg.Connection[Any]) -> str:
    return (conn.info.parameter_status("server_encoding") or "").upper()


def adapt_to_server_encoding(conn: psycopg.Connection[Any]) -> str | None:
    """Install the replacing loaders on a SQL_ASCII session; return the note to show."""
    if server_encoding(conn) != UNDECLARED:
        return None
    adapters = conn.adapters
    for name in _TEXT_TYPES:
        info = adapters.types.get(name)
        if info is not None:
            adapters.register_loader(info.oid, _ReplacingTextLoader)
            adapters.register_loader(info.oid, _BinaryReplacingTextLoader)
    adapters.register_loader(0, _ReplacingTextLoader)
    adapters.register_loader(0, _BinaryReplacingTextLoader)
    for name in ("json", "jsonb"):
        info = adapters.types.get(name)
        if info is not None:
            adapters.register_loader(info.oid, _ReplacingJsonLoader)
    return SQL_ASCII_NOTE


class _BinaryReplacingTextLoader(_ReplacingTextLoader):
    format = Format.BINARY
