"""The PostgreSQL function policy on its own, over a made-up catalog: what it resolves,
how it treats overloads and schemas, and what the allow-list can and cannot re-enable."""

from __future__ import annotations

import pytest

from mcp_fileserver.config import DEFAULT_ALLOWED_VOLATILE_FUNCTIONS
from mcp_fileserver.sql import function_policy
from mcp_fileserver.sql.function_policy import FunctionCatalog, references, refusal_reason

CATALOG = FunctionCatalog.from_rows(
    [
        *[("known", name, "") for name in ("random", "clock_timestamp", "now", "upper")],
        ("volatile", "random", "pg_catalog"),
        ("volatile", "random", "shady"),  # a user function of the same name
        ("volatile", "clock_timestamp", "pg_catalog"),
        ("volatile", "audit_touch", "public"),
        ("volatile", "lock_agg", "public"),
        ("volatile", "uuid_generate_v4", "public"),
        ("volatile", "pg_advisory_lock", "pg_catalog"),
        ("sql_text", "run_report", "reports"),
        ("operator", "###", "public"),
        ("cast_type", "marker", "public"),
        ("attribute", "touch_row", "public"),
    ]
)
ALLOW = DEFAULT_ALLOWED_VOLATILE_FUNCTIONS


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT audit_touch()", "function audit_touch() is volatile"),
        ('SELECT "public"."AUDIT_TOUCH"()', "function audit_touch() is volatile"),
        ("SELECT * FROM books, LATERAL audit_touch() t", "function audit_touch() is volatile"),
        ("WITH x AS (SELECT lock_agg(n) FROM t) SELECT * FROM x", "lock_agg() is volatile"),
        ("SELECT random()", "function random() is volatile"),  # shady.random exists too
        ("SELECT reports.run_report('SELECT 1')", "run_report() runs SQL given as text"),
        ("SELECT * FROM ts_stat('SELECT 1')", "ts_stat() runs SQL given as text"),
        ("SELECT txid_current()", "function txid_current() is not allowed"),  # stable
        ("SELECT 1 ### 2", "operator ### calls a volatile function"),
        ("SELECT 1 OPERATOR(public.###) 2", "operator ### calls a volatile function"),
        ("SELECT 1::public.marker", "a cast to marker calls a volatile function"),
        ("SELECT CAST(1 AS marker)", "a cast to marker calls a volatile function"),
        ("SELECT b.touch_row FROM books b", "touch_row calls a volatile function"),
    ],
)
def test_refused(sql, reason):
    found = refusal_reason(sql, CATALOG, ALLOW)
    assert found is not None and reason in found


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT clock_timestamp(), now(), upper(name) FROM books",
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY n) FROM big",
        "SELECT 1 + 2, 'a' ~ 'b', x::int FROM t",
        "SELECT b.title FROM books b",
        "this is not SQL",  # the guard and the server refuse it
    ],
)
def test_allowed(sql):
    assert refusal_reason(sql, CATALOG, ALLOW) is None


def test_the_allow_list_is_per_schema_and_cannot_re_enable_deny_listed_functions():
    only_pg_catalog = FunctionCatalog.from_rows([("volatile", "random", "pg_catalog")])
    assert refusal_reason("SELECT random()", only_pg_catalog, ALLOW) is None
    assert refusal_reason("SELECT random()", only_pg_catalog, ()) is not None
    assert refusal_reason("SELECT random()", CATALOG, ["random"]) is None  # every schema
    assert refusal_reason("SELECT uuid_generate_v4()", CATALOG, ALLOW) is not None
    assert refusal_reason("SELECT uuid_generate_v4()", CATALOG, ["public.uuid_generate_v4"]) is None
    for name in ("pg_advisory_lock", "ts_stat", "run_report"):
        assert refusal_reason(f"SELECT {name}(1)", CATALOG, [name, f"pg_catalog.{name}"])


def test_references_see_every_kind_of_name():
    refs = references(
        "SELECT x::int, b.f, 1 OPERATOR(pg_catalog.+) 2 FROM books b, "
        "LATERAL ts_stat($$x$$) t(a text) WHERE a ~ 'x'"
    )
    assert refs is not None
    assert refs.functions == ("ts_stat",)
    assert set(refs.operators) == {"+", "~"}
    assert {"int4", "text"} <= set(refs.types)
    assert refs.attributes == ("f",)


def test_a_function_unknown_to_the_catalog_makes_it_stale():
    assert function_policy.is_stale("SELECT created_later()", CATALOG)
    assert not function_policy.is_stale("SELECT upper(now()::text)", CATALOG)
