"""The audit record format and its hash chain.

A record is one flat JSON object on one line. Its fields are written in a fixed order
(`FIELDS`, then any event-specific extras), ASCII-only, without spaces, and end with
`"hash"`. The hash covers the exact bytes of the record without the hash, which includes
`prev`, the previous record's hash; so editing, removing, inserting or reordering a
record breaks the chain at that point:

    body = the line up to `,"hash":"..."}`, closed with `}`
    hash = hex(SHA-256(body))          or, with an HMAC key,  hex(HMAC-SHA256(key, body))

The first record ever written has `prev` = 64 zeros and `seq` = 1; `seq` grows by one
per record across files, rotations and restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Event = Literal[
    "tool_call",
    "server_start",
    "server_stop",
    "config_error",
    "security_alert",
    "security_incident",
]
Outcome = Literal["ok", "denied", "invalid", "error", "rate_limited", "locked"]

GENESIS = "0" * 64

# The stable field order of every record; absent values are written as null.
FIELDS: tuple[str, ...] = (
    "ts",
    "event",
    "tool",
    "args",
    "outcome",
    "reason",
    "detail",
    "duration_ms",
    "result_bytes",
    "request_id",
    "client_name",
    "client_version",
    "server_version",
    "pid",
)
CHAIN_FIELDS: tuple[str, ...] = ("seq", "prev")
_CHAIN_KEYS = frozenset(CHAIN_FIELDS) | {"hash"}  # set by `encode`, never by a caller

_to_json = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode
_HASH_SUFFIX = re.compile(r',"hash":"([0-9a-f]{64})"\}\n?\Z')

Hasher = Callable[[bytes], str]


def make_hasher(key: str | None) -> Hasher:
    """SHA-256, or HMAC-SHA256 when a key is configured (the chain cannot be recomputed
    by someone who can write the files but does not know the key)."""
    # Copying a keyed, ready-made state skips the digest lookup and the key schedule that
    # `hashlib.sha256()` / `hmac.new()` redo on every call.
    base = hmac.new(key.encode("utf-8"), digestmod=hashlib.sha256) if key else hashlib.sha256()

    def digest(body: bytes) -> str:
        state = base.copy()
        state.update(body)
        return state.hexdigest()

    return digest


_second_stamp: tuple[int, str] = (-1, "")  # the last second formatted (strftime is slow)


def utc_timestamp(now: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-11-25T11:39:21.123Z (`now`: epoch s)."""
    global _second_stamp
    moment = time.time() if now is None else now
    second = math.floor(moment)
    cached = _second_stamp
    if cached[0] != second:
        cached = _second_stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{int((moment - second) * 1000):03d}Z"


def encode(fields: Mapping[str, Any], seq: int, prev: str, hasher: Hasher) -> tuple[str, str]:
    """The record line (with trailing newline) and its hash."""
    ordered: dict[str, Any] = dict.fromkeys(FIELDS)
    ordered.update(fields)  # FIELDS keep their places; extras follow in their order
    if not _CHAIN_KEYS.isdisjoint(fields):
        for name in _CHAIN_KEYS.intersection(fields):
            del ordered[name]
    ordered["seq"] = seq
    ordered["prev"] = prev
    body = _to_json(ordered)
    digest = hasher(body.encode("ascii"))
    return f'{body[:-1]},"hash":"{digest}"}}\n', digest


class BadRecord(ValueError):
    """A line that is not a well-formed audit record."""


@dataclass(frozen=True)
class ParsedRecord:
    seq: int
    prev: str
    hash: str
    body: bytes
    fields: dict[str, Any]


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadRecord(f"duplicate key {key!r}")
        result[key] = value
    return result


def decode(line: str) -> ParsedRecord:
    """Parse one line strictly: valid JSON, no duplicate keys, hash last, seq and prev."""
    match = _HASH_SUFFIX.search(line)
    if match is None:
        raise BadRecord("not an audit record (no trailing hash; torn or edited line?)")
    body = line[: match.start()] + "}"
    try:
        fields = json.loads(body, object_pairs_hook=_no_duplicate_keys)
    except BadRecord:
        raise
    except ValueError as exc:
        raise BadRecord(f"not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(fields, dict):
        raise BadRecord("not a JSON object")
    seq, prev = fields.get("seq"), fields.get("prev")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise BadRecord("missing or invalid seq")
    if not isinstance(prev, str) or not re.fullmatch(r"[0-9a-f]{64}", prev):
        raise BadRecord("missing or invalid prev")
    return ParsedRecord(
        seq=seq,
        prev=prev,
        hash=match.group(1),
        body=body.encode("utf-8", "surrogatepass"),
        fields=fields,
    )
