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
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Literal

Event = Literal[
    "tool_call",
    "server_start",
    "server_stop",
    "config_error",
    "security_alert",
    "security_incident",
    "audit_pruned",
    "checkpoint",
]
Outcome = Literal["ok", "denied", "invalid", "error", "rate_limited", "locked", "cancelled"]

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
_CHAIN_KEYS = frozenset(CHAIN_FIELDS) | {"hash"}  # set by `chain`, never by a caller


def _unserialisable(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_json_encoder() -> Callable[[Any], str]:
    """Compact, ASCII-only JSON that refuses NaN and infinities.

    One reusable C encoder: `JSONEncoder.encode` builds a new one on every call, which
    showed on the per-call path. It checks no cycles (markers None): what it encodes is
    a fresh, depth-bounded tree built from JSON arguments and settings."""
    if c_make_encoder is None:  # an interpreter without the _json accelerator
        return json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode
    chunks = c_make_encoder(
        None, _unserialisable, encode_basestring_ascii, None, ":", ",", False, False, False
    )
    return lambda value: "".join(chunks(value, 0))


to_json = _make_json_encoder()
json_string = encode_basestring_ascii  # a str as a JSON string literal, ASCII-only
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


def record_head(fields: Mapping[str, Any]) -> str:
    """The record's JSON up to its chain fields: `{"ts":...` without the closing brace.

    FIELDS keep their places (absent ones are null), extras follow in their order;
    `seq`, `prev` and `hash` are the chain's own and are set by `chain`."""
    ordered: dict[str, Any] = dict.fromkeys(FIELDS)
    ordered.update(fields)
    if not _CHAIN_KEYS.isdisjoint(fields):
        for name in _CHAIN_KEYS.intersection(fields):
            del ordered[name]
    return to_json(ordered)[:-1]


def tool_call_head(
    ts: str,
    tool: str,
    args: Mapping[str, Any],
    outcome: str,
    reason: str | None,
    detail: str | None,
    duration_ms: float,
    result_bytes: int | None,
    request_id: str | None,
    client_name: str | None,
    client_version: str | None,
    constant_tail: str,
) -> str:
    """`record_head` of a `tool_call` record, assembled without the intermediate dict.

    The one record written on every call. `constant_tail` is the encoded
    `,"server_version":...,"pid":...` that never changes in a process (see
    `constant_tail`). tests/audit/test_chain.py holds this equal to `record_head`."""
    return (
        f'{{"ts":{json_string(ts)},"event":"tool_call","tool":{json_string(tool)},'
        f'"args":{to_json(args)},"outcome":{json_string(outcome)},'
        f'"reason":{"null" if reason is None else json_string(reason)},'
        f'"detail":{"null" if detail is None else json_string(detail)},'
        f'"duration_ms":{_number(duration_ms)},'
        f'"result_bytes":{"null" if result_bytes is None else _number(result_bytes)},'
        f'"request_id":{"null" if request_id is None else json_string(request_id)},'
        f'"client_name":{"null" if client_name is None else json_string(client_name)},'
        f'"client_version":{"null" if client_version is None else json_string(client_version)}'
        f"{constant_tail}"
    )


def _number(value: float) -> str:
    """A JSON number as `to_json` writes it (`repr` for a finite int or float), without
    the encoder call; anything else (NaN, a bool...) goes to `to_json`, which refuses or
    encodes it the same way."""
    kind = value.__class__
    if kind is int or (kind is float and math.isfinite(value)):
        return repr(value)
    return to_json(value)


def constant_tail(server_version: str, pid: int) -> str:
    """The encoded last two FIELDS, which every record of a process shares."""
    return f',"server_version":{json_string(server_version)},"pid":{to_json(pid)}'


def chain(head: str, seq: int, prev: str, hasher: Hasher) -> tuple[str, str]:
    """The full record line (with trailing newline) for `head`, and its hash."""
    body = f'{head},"seq":{seq},"prev":"{prev}"}}'
    digest = hasher(body.encode("ascii"))
    return f'{body[:-1]},"hash":"{digest}"}}\n', digest


def encode(fields: Mapping[str, Any], seq: int, prev: str, hasher: Hasher) -> tuple[str, str]:
    """The record line (with trailing newline) and its hash."""
    return chain(record_head(fields), seq, prev, hasher)


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
