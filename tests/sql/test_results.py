"""collect_rows and json_safe as plain functions: exact truncation, bounded batches."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid

from hypothesis import given
from hypothesis import strategies as st

from mcp_fileserver.sql.results import collect_rows, encoded_size, json_safe


class Source:
    def __init__(self, rows):
        self.rows = list(rows)
        self.requests: list[int] = []

    def fetch(self, n):
        self.requests.append(n)
        chunk, self.rows = self.rows[:n], self.rows[n:]
        return chunk


@given(st.integers(0, 300), st.integers(1, 120))
def test_row_limit_is_exact(available, max_rows):
    source = Source([[i] for i in range(available)])
    result = collect_rows(source.fetch, max_rows=max_rows, max_bytes=10**9)
    assert [r[0] for r in result.rows] == list(range(min(available, max_rows)))
    assert (result.truncated_reason == "max_rows") == (available > max_rows)
    # Never reads more than one row past the limit.
    assert sum(source.requests) <= max_rows + 1 + max(source.requests)


@given(st.lists(st.text(max_size=50), max_size=200), st.integers(10, 3000))
def test_byte_limit_is_never_exceeded(values, max_bytes):
    source = Source([[v] for v in values])
    result = collect_rows(source.fetch, max_rows=10**6, max_bytes=max_bytes)
    assert 2 + sum(encoded_size(r) for r in result.rows) <= max_bytes
    if result.truncated_reason is None:
        assert len(result.rows) == len(values)


def test_large_rows_are_fetched_one_at_a_time():
    big = "x" * 100_000
    source = Source([[big]] * 50)
    result = collect_rows(source.fetch, max_rows=1000, max_bytes=1_048_576)
    assert result.truncated_reason == "max_result_bytes"
    assert len(result.rows) == 10
    assert max(source.requests) <= 10  # never a batch of 100 huge rows
    assert source.requests[0] == 1


def test_small_rows_are_fetched_in_batches():
    source = Source([[i] for i in range(1000)])
    collect_rows(source.fetch, max_rows=500, max_bytes=1_048_576)
    assert max(source.requests) == 100


def test_json_safe_values():
    assert json_safe(b"\x00\xff") == "AP8="
    assert json_safe(memoryview(b"ab")) == "YWI="
    assert json_safe(decimal.Decimal("1.10")) == "1.10"
    assert json_safe(dt.date(2026, 1, 2)) == "2026-01-02"
    assert json_safe(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) == "2026-01-02T03:04:05+00:00"
    assert json_safe(dt.time(1, 2)) == "01:02:00"
    assert json_safe(dt.timedelta(days=-1, seconds=5)) == "-P0DT86395S"
    assert json_safe(dt.timedelta(seconds=1.5)) == "P0DT1.5S"
    assert json_safe(math.nan) == "NaN"
    assert json_safe(-math.inf) == "-Infinity"
    assert json_safe(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert json_safe([1, (b"a",), {"k": decimal.Decimal(2)}]) == [1, ["YQ=="], {"k": "2"}]
    assert json_safe(object.__new__(object)).startswith("<object")


@given(
    st.lists(
        st.lists(
            st.one_of(
                st.none(),
                st.integers(-(2**63), 2**63 - 1),
                st.floats(allow_nan=True, allow_infinity=True),
                st.text(max_size=20),
                st.binary(max_size=10),
            ),
            min_size=1,
            max_size=4,
        ),
        max_size=150,
    ),
    st.integers(1, 200),
    st.integers(10, 4000),
)
def test_the_batch_fast_path_matches_row_by_row(raw_rows, max_rows, max_bytes):
    """Same rows, reason and bytes as sizing each row alone; the JSON is what was counted."""
    fast = collect_rows(Source(raw_rows).fetch, max_rows=max_rows, max_bytes=max_bytes)
    expected: list[list[object]] = []
    used, reason = 2, None
    for raw in raw_rows:
        if len(expected) == max_rows:
            reason = "max_rows"
            break
        row = [json_safe(v) for v in raw]
        used += encoded_size(row)
        if used > max_bytes:
            reason = "max_result_bytes"
            break
        expected.append(row)
    assert fast.rows == expected
    assert fast.truncated_reason == reason
    assert json.loads(fast.rows_json) == expected
    assert len(fast.rows_json.encode()) == 2 + sum(encoded_size(r) for r in expected) - (
        1 if expected else 0
    )


def test_a_batch_with_nan_beside_null_is_spelled_as_json_safe_does():
    """orjson writes NaN as null: a batch holding both must not pass NaN off as null."""
    rows = [[None, 1.5], [math.nan, 1e16], [math.inf, 1e-7], [None, -0.0]]
    expected = [[None, 1.5], ["NaN", 1e16], ["Infinity", 1e-7], [None, -0.0]]
    result = collect_rows(Source(rows).fetch, max_rows=10, max_bytes=10**6)
    assert result.rows == expected
    assert json.loads(result.rows_json) == expected
    counted = len(result.rows_json.encode())
    assert counted == 2 + sum(encoded_size(r) for r in result.rows) - 1


def test_values_orjson_cannot_encode_take_the_row_path():
    rows = [[1, "a"], [2**70, "\udcff"], [3, b"x"]]
    result = collect_rows(Source(rows).fetch, max_rows=10, max_bytes=10**6)
    assert result.rows == [[1, "a"], [2**70, "\udcff"], [3, "eA=="]]
    counted = len(result.rows_json.encode("utf-8", "surrogatepass"))
    assert counted == 2 + sum(encoded_size(r) for r in result.rows) - 1
