"""No single SQLite function call runs unbounded: every query of the corpus ends (with rows
or a clear error) within timeout_s plus a small margin, and the server keeps serving.

The corpus covers the class, not one example: format strings built at run time, widths
and precisions taken from arguments, the quadratic built-ins (replace, instr, trim,
json_patch, LIKE/GLOB), the value builders (zeroblob, randomblob, hex, quote, char,
upper, group_concat, the JSON builders, recursive doubling) and long runs of calls that
each build a large value, where the progress handler alone is too coarse."""

from __future__ import annotations

import sqlite3
import time

import pytest

from mcp_fileserver.sql.sqlite_functions import BoundedFunctions, FunctionTooCostly
from tests.sql.conftest import call, error_text, sql_client, sqlite_settings

TIMEOUT_S = 1.0
# One function call may overrun the deadline by the time it takes to build one value of
# the 16 MiB limit; the rest is scheduling on a shared, loaded 2-core machine.
MARGIN_S = 1.5

MANY = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000) "
KEYS = (
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000), "
    "o(j) AS (SELECT json_group_object('k' || i, i) FROM c) "
)
A8M = "printf('%.*c', 8000000, 'a')"
NEEDLE = "(printf('%.*c', 1000000, 'a') || 'b')"

CORPUS = {
    # printf/format: the total of many conversions, each under the limit
    "printf-runtime-format": "SELECT length(printf(replace(hex(zeroblob(120)), '00', "
    "'%.60000000c')))",
    "format-runtime-format": "SELECT length(format(replace(hex(zeroblob(120)), '00', "
    "'%.10000000c'), 'x'))",
    "printf-runtime-width": "SELECT length(printf(replace(hex(zeroblob(120)), '00', "
    "'%10000000d'), 1))",
    "printf-concatenated-format": "SELECT length(printf('%.' || 12000000 || 'c%.' || "
    "12000000 || 'c', 'x', 'y'))",
    "printf-nested-format": "SELECT length(printf(printf('%%.%dc', 12000000) || "
    "printf('%%.%dc', 12000000), 'a', 'b'))",
    "printf-star-args": "SELECT length(printf('%.*c%.*c%.*c', 9000000, 'a', 9000000, 'b', "
    "9000000, 'c'))",
    "printf-float-precision": "SELECT length(printf('%!.*f', 16000000, 1.5))",
    "printf-thousands": "SELECT length(printf('%,*d', 16000000, 1))",
    "printf-quote-doubling": "SELECT length(printf('%q', printf('%.*c', 10000000, '''')))",
    "printf-multibyte-char": "SELECT length(printf('%.*c', 10000000, 'é'))",
    "printf-many-rows": MANY + "SELECT sum(length(printf('%.*c', 15000000, 'x'))) FROM c",
    # quadratic inside one call
    "instr-quadratic": f"SELECT instr({A8M}, {NEEDLE})",
    "replace-quadratic": f"SELECT length(replace({A8M}, {NEEDLE}, 'x'))",
    "ltrim-quadratic": f"SELECT length(ltrim({A8M}, printf('%.*c', 1000000, 'b') || 'a'))",
    "rtrim-quadratic": f"SELECT length(rtrim({A8M}, printf('%.*c', 1000000, 'b') || 'a'))",
    "trim-quadratic": f"SELECT length(trim({A8M}, printf('%.*c', 1000000, 'b') || 'a'))",
    "replace-blob-quadratic": "SELECT length(replace(zeroblob(8000000), "
    "zeroblob(1000000) || x'01', x'02'))",
    "json-patch-quadratic": KEYS + "SELECT length(json_patch(j, j)) FROM o",
    "like-backtracking": "SELECT printf('%.*c', 16000000, 'a') LIKE "
    "replace(hex(zeroblob(4999)), '00', '%a') || 'b'",
    "glob-backtracking": "SELECT printf('%.*c', 16000000, 'a') GLOB "
    "replace(hex(zeroblob(4999)), '00', '*a') || 'b'",
    # value builders: linear, bounded by the value limit
    "randomblob-2g": "SELECT hex(randomblob(2000000000))",
    "zeroblob-concat": "SELECT length(zeroblob(16000000) || zeroblob(16000000))",
    "hex-growth": "SELECT length(hex(hex(hex(zeroblob(4000000)))))",
    "quote-growth": "SELECT length(quote(randomblob(16000000)))",
    "char-upper": "SELECT length(upper(printf('%.*c', 16000000, char(233))))",
    "recursive-doubling": "WITH RECURSIVE r(s) AS (SELECT 'x' UNION ALL SELECT s || s "
    "FROM r) SELECT length(s) FROM r",
    "group-concat": MANY + "SELECT length(group_concat(hex(randomblob(100000)))) FROM c",
    "json-group-array": MANY + "SELECT length(json_group_array(printf('%.*c', 100000, 'x'))) "
    "FROM c",
    "json-object-builder": MANY + "SELECT sum(length(json_object('k', printf('%.*c', "
    "8000000, 'x')))) FROM c",
    "substr-huge": MANY + "SELECT sum(length(substr(printf('%.*c', 16000000, 'x'), 2))) FROM c",
    # long runs of calls, each building a large value
    "randomblob-many-rows": MANY + "SELECT sum(length(hex(randomblob(8000000)))) FROM c",
    "zeroblob-many-rows": MANY + "SELECT sum(length(hex(zeroblob(8000000)))) FROM c",
    "replace-many-rows": MANY + f"SELECT sum(length(replace({A8M}, 'a', 'b'))) FROM c",
    "cross-join": "SELECT count(*) FROM big a, big b",
}


async def test_every_function_attack_stops_within_the_time_limit(tmp_path):
    setup = sqlite_settings(tmp_path, timeout_s=TIMEOUT_S, max_result_bytes=65536)
    slow: list[str] = []
    async with sql_client(setup.settings) as client:
        for name, sql in CORPUS.items():
            started = time.monotonic()
            result = await call(client, "run_query", database="shop", sql=sql)
            elapsed = time.monotonic() - started
            if elapsed > TIMEOUT_S + MARGIN_S:
                slow.append(f"{name}: {elapsed:.2f} s")
            if result.is_error:
                text = error_text(result)
                assert "Traceback" not in text
                assert "too" in text or "time limit" in text, f"{name}: {text}"
            ok = await call(client, "run_query", database="shop", sql="SELECT 1")
            assert ok.structured_content["rows"] == [[1]], name
    assert not slow, slow


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT replace('a-b-c', '-', '+')", "a+b+c"),
        ("SELECT instr('hello', 'll')", 3),
        ("SELECT instr(x'0102030405', x'0304')", 3),
        ("SELECT trim('xxhixx', 'x')", "hi"),
        ("SELECT ltrim('  hi ', ' ')", "hi "),
        ("SELECT rtrim('héé', 'é')", "h"),
        ('SELECT json_patch(\'{"a":1,"b":2}\', \'{"b":null,"c":3}\')', '{"a":1,"c":3}'),
        ("SELECT replace(NULL, 'a', 'b')", None),
        ("SELECT instr(12345, 34)", 3),
        ("SELECT printf('%s=%d', 'n', 42)", "n=42"),
    ],
)
async def test_bounded_functions_answer_as_sqlite_does(tmp_path, sql, expected):
    setup = sqlite_settings(tmp_path)
    async with sql_client(setup.settings) as client:
        result = await call(client, "run_query", database="shop", sql=sql)
        assert result.structured_content["rows"] == [[expected]]


async def test_views_may_call_the_bounded_functions(tmp_path):
    """trusted_schema is ON for them; what a view reads is still vetted by the authorizer."""
    setup = sqlite_settings(tmp_path)
    conn = sqlite3.connect(setup.db)
    conn.executescript(
        "CREATE VIEW shouting AS SELECT upper(replace(trim(name), ' ', '_')) AS n, "
        "printf('%05d', id) AS code FROM authors;"
        "CREATE VIEW sneaky AS SELECT file FROM pragma_database_list;"
    )
    conn.close()
    async with sql_client(setup.settings, guard=False) as client:
        result = await call(
            client, "run_query", database="shop", sql="SELECT n, code FROM shouting ORDER BY 2"
        )
        assert result.structured_content["rows"][0] == ["CHINUA_ACHEBE", "00001"]
        refused = await call(client, "run_query", database="shop", sql="SELECT * FROM sneaky")
        assert refused.is_error
        assert "prohibited" in error_text(refused)
        assert str(setup.db) not in error_text(refused)


def test_the_work_budget_refuses_before_any_work():
    functions = BoundedFunctions(1 << 24, budget=1000)
    conn = sqlite3.connect(":memory:")
    functions.register(conn)
    assert conn.execute("SELECT replace('aaaa', 'a', 'b')").fetchone() == ("bbbb",)
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("SELECT instr(?, ?)", ("a" * 100, "a" * 11)).fetchone()
    assert functions.problem is not None and "instr()" in functions.problem
    with pytest.raises(FunctionTooCostly):
        functions._wrapper("replace", 3, (0, 1))("a" * 100, "a" * 11, "")
    functions.close()
    conn.close()
