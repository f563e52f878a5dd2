"""Layer 3 (rows and bytes) and JSON-safe values, shared by every engine.

`collect_rows` pulls rows from an engine in batches and stops at the first limit reached:
`max_rows` rows, or `max_result_bytes` of JSON. It asks for one row more than it returns,
so `truncated` is exact for the row limit without reading the rest of the result.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import gc
import ipaddress
import json
import math
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import orjson

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
    return len(_row_text(row).encode("utf-8", "surrogatepass")) + 1


@dataclass
class CollectedRows:
    rows: list[list[JsonSafe]]
    truncated_reason: Literal["max_rows", "max_result_bytes"] | None
    pieces: list[str]  # the rows' compact JSON, in order, each without the outer []

    @property
    def rows_json(self) -> str:
        """`rows` as compact JSON, exactly the bytes the byte limit counted."""
        return "[" + ",".join(self.pieces) + "]"


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

    Fast path: a batch whose values are all JSON-native (what SQLite returns, bytes and
    NaN aside) is encoded with ONE `json.dumps`; its length is exactly the sum of its
    rows' `encoded_size`, so when the whole batch fits the byte count stays exact without
    sizing each row. A batch that does not encode, or would cross the limit, is taken
    row by row as before.
    """
    with _no_cyclic_collections():
        return _collect(fetch, max_rows=max_rows, max_bytes=max_bytes, batch=batch)


@contextmanager
def _no_cyclic_collections() -> Iterator[None]:
    """Without the cyclic collector while rows are read: 10,000 rows are 10,000 new lists
    (and strings), and with the collector on CPython runs its generation scans over them
    again and again as they pile up; they hold no cycles. A 10,000-row MariaDB result:
    43 ms -> 31 ms in-process (bench/RESULTS.md, issue 17). Another thread may have it
    off already: then it is left to that thread to turn it back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _collect(
    fetch: Callable[[int], Sequence[Sequence[Any]]],
    *,
    max_rows: int,
    max_bytes: int,
    batch: int,
) -> CollectedRows:
    rows: list[list[JsonSafe]] = []
    pieces: list[str] = []
    used = 2  # the enclosing []
    largest = 0
    while True:
        wanted = max_rows + 1 - len(rows)  # one extra row tells whether more exist
        room = max(max_bytes - used, 0)
        size = 1 if largest == 0 else max(1, min(batch, wanted, room // largest))
        chunk = fetch(min(size, wanted))
        fitting = chunk if len(rows) + len(chunk) <= max_rows else None
        encoded, size_bytes = _encode_native(fitting) if fitting else (None, 0)
        # len("[r1,...,rn]") - 1 == sum(len(ri) + 1): the rows' exact encoded size.
        batch_bytes = size_bytes - 1
        if encoded is not None and used + batch_bytes <= max_bytes:
            used += batch_bytes
            largest = max(largest, batch_bytes // len(chunk) + 1)
            rows.extend([list(raw) for raw in chunk])
            pieces.append(encoded[1:-1])
        else:
            for raw in chunk:
                if len(rows) == max_rows:
                    return CollectedRows(rows, "max_rows", pieces)
                row = [json_safe(value) for value in raw]
                text = _row_text(row)
                row_bytes = len(text.encode("utf-8", "surrogatepass")) + 1
                largest = max(largest, row_bytes)
                used += row_bytes
                if used > max_bytes:
                    return CollectedRows(rows, "max_result_bytes", pieces)
                rows.append(row)
                pieces.append(text)
        if len(chunk) < min(size, wanted):
            return CollectedRows(rows, None, pieces)


def _encode_native(chunk: Sequence[Sequence[Any]]) -> tuple[str | None, int]:
    """The batch as compact JSON and its UTF-8 size when every value is JSON-native,
    else (None, 0): the batch then goes row by row through json_safe.

    orjson: ~15x faster than the stdlib encoder on a 10,000-row result (7 ms -> 0.45 ms,
    bench/RESULTS.md, issue 17), a fifth of such a call. It writes NaN and Infinity as
    null, so a batch whose text holds `null` is checked for them."""
    data = _orjson(chunk)
    if data is None or (b"null" in data and _has_non_finite(chunk)):
        return None, 0
    return data.decode("utf-8"), len(data)


def _row_text(row: list[JsonSafe]) -> str:
    """One row already made JSON-safe, encoded as a batch would encode it."""
    data = _orjson(row)
    return data.decode("utf-8") if data is not None else _NATIVE.encode(row)


def _orjson(value: Any) -> bytes | None:
    try:
        return orjson.dumps(value, option=_ORJSON_NATIVE_ONLY)
    except TypeError:  # orjson.JSONEncodeError: bytes, Decimal, ints > 64 bits, surrogates
        return None


def _has_non_finite(chunk: Sequence[Sequence[Any]]) -> bool:
    return any(type(v) is float and not math.isfinite(v) for row in chunk for v in row)


# Dates, dataclasses and subclasses of str/int are not orjson's to spell: json_safe does.
_ORJSON_NATIVE_ONLY = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
# allow_nan=False: NaN and Infinity are not JSON; json_safe spells them as strings.
_NATIVE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
