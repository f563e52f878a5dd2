"""Layer 3 (rows and bytes) and JSON-safe values, shared by every engine.

`collect_rows` pulls rows from an engine in batches and stops at the first limit reached:
`max_rows` rows, or `max_result_bytes` of JSON. It asks for one row more than it returns,
so `truncated` is exact for the row limit without reading the rest of the result.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import ipaddress
import json
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

FETCH_BATCH = 100  # most rows per round trip (fewer when rows are large or few are wanted)

JsonSafe = Any


def json_safe(value: Any) -> JsonSafe:
    """`value` as something `json.dumps` accepts losslessly, or as its text form."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _iso_duration(value)
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    return str(value)


def _iso_duration(delta: dt.timedelta) -> str:
    sign = "-" if delta < dt.timedelta(0) else ""
    delta = abs(delta)
    seconds = delta.seconds + delta.microseconds / 1_000_000
    secs = f"{seconds:.6f}".rstrip("0").rstrip(".")
    return f"{sign}P{delta.days}DT{secs}S"


def encoded_size(row: list[JsonSafe]) -> int:
    """Bytes this row adds to the JSON result (UTF-8, with its separator)."""
    return len(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()) + 1


@dataclass
class CollectedRows:
    rows: list[list[JsonSafe]]
    truncated_reason: Literal["max_rows", "max_result_bytes"] | None


def collect_rows(
    fetch: Callable[[int], Sequence[Sequence[Any]]],
    *,
    max_rows: int,
    max_bytes: int,
    batch: int = FETCH_BATCH,
) -> CollectedRows:
    """Rows from `fetch(n)` (at most n rows; fewer means the end) until a limit is hit.

    The first request asks for one row; later ones for as many rows as the largest row
    seen so far leaves room for. A PostgreSQL FETCH holds its whole batch in memory, so a
    result of 100 MB rows is read one row at a time and stops at the first, never 100 of
    them.
    """
    rows: list[list[JsonSafe]] = []
    used = 2  # the enclosing []
    largest = 0
    while True:
        wanted = max_rows + 1 - len(rows)  # one extra row tells whether more exist
        room = max(max_bytes - used, 0)
        size = 1 if largest == 0 else max(1, min(batch, wanted, room // largest))
        chunk = fetch(min(size, wanted))
        for raw in chunk:
            if len(rows) == max_rows:
                return CollectedRows(rows, "max_rows")
            row = [json_safe(value) for value in raw]
            row_bytes = encoded_size(row)
            largest = max(largest, row_bytes)
            used += row_bytes
            if used > max_bytes:
                return CollectedRows(rows, "max_result_bytes")
            rows.append(row)
        if len(chunk) < min(size, wanted):
            return CollectedRows(rows, None)
