"""Layer 1 on its own: the guard refuses every attack with no engine behind it, lets
every control through, fails closed on text it cannot parse, and never crashes."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_fileserver.errors import InvalidRequest, PolicyViolation, Refusal
from mcp_fileserver.sql.guard import Dialect, check_read_only, verdict
from tests.sql.attacks import POSTGRES_ATTACKS, POSTGRES_CONTROLS, SQLITE_ATTACKS, SQLITE_CONTROLS


@pytest.mark.parametrize("attack", SQLITE_ATTACKS, ids=lambda a: a.id)
def test_sqlite_guard_refuses(attack):
    with pytest.raises(Refusal) as caught:
        check_read_only(attack.render("/tmp/out"), Dialect.SQLITE)
    assert "query refused" in caught.value.message


@pytest.mark.parametrize("attack", POSTGRES_ATTACKS, ids=lambda a: a.id)
def test_postgres_guard_refuses(attack):
    with pytest.raises(Refusal):
        check_read_only(attack.render("/tmp/out"), Dialect.POSTGRESQL)


@pytest.mark.parametrize("sql", [c[0] for c in SQLITE_CONTROLS])
def test_sqlite_guard_allows_reads(sql):
    check_read_only(sql, Dialect.SQLITE)


@pytest.mark.parametrize("sql", [c[0] for c in POSTGRES_CONTROLS])
def test_postgres_guard_allows_reads(sql):
    check_read_only(sql, Dialect.POSTGRESQL)


@pytest.mark.parametrize("dialect", list(Dialect))
@pytest.mark.parametrize("sql", ["", "   ", "SELEC 1", "SELECT (", "SELECT 'unterminated", "\x00"])
def test_unparsable_is_refused(dialect, sql):
    with pytest.raises(InvalidRequest):
        check_read_only(sql, dialect)


def test_reasons_are_specific():
    assert verdict("DELETE FROM t", Dialect.SQLITE).reason == "DELETE is not a read"
    assert (
        verdict("SELECT 1; SELECT 2", Dialect.POSTGRESQL).reason == "the query holds 2 statements"
    )
    assert "nextval" in (verdict("SELECT nextval('s')", Dialect.POSTGRESQL).reason or "")
    with pytest.raises(PolicyViolation, match="FOR UPDATE"):
        check_read_only("SELECT * FROM t FOR UPDATE", Dialect.POSTGRESQL)


def test_deny_list_matches_schema_qualified_and_quoted_names():
    assert verdict('SELECT pg_catalog."pg_read_file"($1)', Dialect.POSTGRESQL).reason
    assert verdict("SELECT PG_CATALOG.LO_IMPORT('/x')", Dialect.POSTGRESQL).reason
    assert verdict("SELECT \"readfile\"('x')", Dialect.SQLITE).reason


def test_a_column_named_like_a_denied_function_is_fine():
    # `edit` is a denied sqlite3-shell function, but only when called.
    assert verdict("SELECT edit FROM (SELECT 1 AS edit)", Dialect.SQLITE).reason is None


def test_denied_function_deep_inside_subqueries_and_ctes():
    sql = (
        "WITH a AS (SELECT * FROM (SELECT 1 WHERE EXISTS (SELECT lo_unlink(1))) s) SELECT * FROM a"
    )
    assert "lo_unlink" in (verdict(sql, Dialect.POSTGRESQL).reason or "")
    sql = "SELECT (SELECT max(x) FROM (SELECT load_extension('e') AS x))"
    assert "load_extension" in (verdict(sql, Dialect.SQLITE).reason or "")


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80), st.sampled_from(list(Dialect)))
def test_guard_never_crashes(text, dialect):
    # Any text either passes or is refused with a Refusal; nothing else escapes.
    with contextlib.suppress(Refusal):
        check_read_only(text, dialect)


READ_ACTIONS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_RECURSIVE,
}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "SELECT",
                "1",
                ";",
                "DROP",
                "TABLE",
                "t",
                "DELETE",
                "FROM",
                "/*",
                "*/",
                "--",
                "\n",
                "'",
                "WITH",
                "x",
                "AS",
                "(",
                ")",
                "INSERT",
                "INTO",
                "VALUES",
                "UPDATE",
                "SET",
                "PRAGMA",
                "=",
                "ATTACH",
                "'f.db'",
                "BEGIN",
                "*",
                "RETURNING",
                "REPLACE",
            ]
        ),
        max_size=14,
    )
)
def test_sqlite_compiles_whatever_the_guard_accepts_as_reads_only(tokens):
    """Differential test: SQLite's own compiler is the oracle for the sqlglot guard."""
    sql = " ".join(tokens)
    if verdict(sql, Dialect.SQLITE).reason is not None:
        return
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x)")
    actions: list[int] = []

    def record(action, *_):
        actions.append(action)
        return sqlite3.SQLITE_OK

    conn.set_authorizer(record)
    try:
        conn.execute(sql)
    except (sqlite3.Error, sqlite3.Warning):
        pass
    finally:
        conn.close()
    assert set(actions) <= READ_ACTIONS, (sql, actions)


def test_only_short_texts_are_cached():
    from mcp_fileserver.sql.guard import CACHEABLE_SQL_CHARS, _cached_verdict

    _cached_verdict.cache_clear()
    long_sql = "SELECT 1 AS " + "x" * CACHEABLE_SQL_CHARS
    assert verdict(long_sql, Dialect.POSTGRESQL).reason is None
    assert _cached_verdict.cache_info().currsize == 0
    verdict("SELECT 1", Dialect.POSTGRESQL)
    assert _cached_verdict.cache_info().currsize == 1
