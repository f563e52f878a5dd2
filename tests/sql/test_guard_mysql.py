"""Layer 1 for MySQL/MariaDB on its own: every attack refused, every control allowed."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from mcp_fileserver.errors import InvalidRequest, PolicyViolation, Refusal
from mcp_fileserver.sql import guard_mysql
from mcp_fileserver.sql.guard import Dialect, check_read_only, verdict
from mcp_fileserver.sql.mysql_lexer import Kind, lex
from mcp_fileserver.sql.mysql_params import bind_parameters
from tests.sql.mysql_corpus import (
    ATTACKS,
    CONTROLS,
    DIFFERENTIAL_FRAGMENTS,
    differential_texts,
)

MYSQL = Dialect.MYSQL
_MYSQL = sqlglot.Dialect.get_or_raise("mysql")


@pytest.mark.parametrize(("sql"), [sql for _id, sql in ATTACKS], ids=[i for i, _ in ATTACKS])
def test_corpus_attacks_are_refused(sql):
    with pytest.raises(Refusal) as caught:
        check_read_only(sql, MYSQL)
    assert caught.value.message.startswith("query refused: ")


@pytest.mark.parametrize(("sql"), [c[1] for c in CONTROLS], ids=[c[0] for c in CONTROLS])
def test_corpus_controls_pass(sql):
    check_read_only(sql, MYSQL)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT /*! SLEEP(2) */ 1",
        "SELECT /*!50000 SLEEP(2) */ 1",
        "SELECT /*M!100000 SLEEP(2) */ 1",
        "SELECT /*+ MAX_EXECUTION_TIME(0) */ 1",
    ],
)
def test_executable_comments_are_violations(sql):
    with pytest.raises(PolicyViolation, match=r"comment|hint"):
        check_read_only(sql, MYSQL)


def test_comment_markers_inside_strings_are_data():
    check_read_only("SELECT '/*!50000 SLEEP(2) */', \"/*M! x */\", '-- x', '#'", MYSQL)


def test_placeholders_are_accepted_in_code_only():
    check_read_only("SELECT * FROM orders WHERE id = %s AND status = %(s)s", MYSQL)
    check_read_only("SELECT DATE_FORMAT(ordered_at, '%H:%i:%s') FROM orders", MYSQL)


def test_unknown_functions_are_refused_but_not_violations():
    with pytest.raises(InvalidRequest, match="nvl"):
        check_read_only("SELECT NVL(amount, 0) FROM orders", MYSQL)


def test_reasons_are_specific():
    assert verdict("SELECT SLEEP(1)", MYSQL).reason == "function sleep() is not allowed"
    assert "statements" in (verdict("SELECT 1; SELECT 2", MYSQL).reason or "")
    assert "explain_query" in (verdict("EXPLAIN SELECT 1", MYSQL).reason or "")


def test_every_attack_is_refused_for_a_stated_reason():
    for attack_id, sql in ATTACKS:
        found = verdict(sql, MYSQL)
        assert found.reason, attack_id


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT /*! SLEEP(2) */ 1",
        "SELECT 1 /*!50000 , SLEEP(2) */",
        "SELECT 1 /*M!100000 , SLEEP(2) */",
    ],
)
def test_sqlglot_alone_reads_these_as_harmless(sql):
    """Why the lexer exists: a bare sqlglot parse keeps no trace of the executed part."""
    parsed = sqlglot.parse_one(sql, read="mysql")
    assert not any(isinstance(node, exp.Anonymous) for node in parsed.walk())
    assert verdict(sql, MYSQL).reason


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'a\\' /*! , SLEEP(2) */ '",  # a string, or a string then a comment
        'SELECT "a\\" /*! , SLEEP(2) */ "',
        "SELECT 'a\\' , 1 -- '",  # one string, or a string, code and a comment
    ],
)
def test_quoting_that_depends_on_the_sql_mode_is_refused(sql):
    assert verdict(sql, MYSQL).reason


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'C:\\\\temp'",  # the same string boundaries in every mode
        "SELECT 'it\\'s', \"x\\\"y\"",  # other modes leave a quote open: a server error
        'SELECT \'it\'\'s\', "say ""hi"""',
        "SELECT 'a\"b', \"a'b\"",
        "SELECT `we``ird` FROM (SELECT 1 AS `we``ird`) t",
        "SELECT 1 -- comment\n",
        "SELECT 1 -- windows line end\r\n, 2",
        "SELECT 1 # last line\r",
        "SELECT 1 --\tcomment",
        "SELECT 1 --",
        "SELECT 1 # /*! not run */",
        "SELECT 1 /* a comment; with -- and # and ' inside */",
        "SELECT 2-1, 3 - -1",
        "SELECT\t1\r\n",
        "SELECT N'into', _utf8mb4'update', X'4c4f434b', B'01', 'delete'",
        "SELECT 'tab\there', 'nbsp\u00a0here', 'brace {fn x}'",
        "SELECT 1;",
        "SELECT 1 ; ",
    ],
)
def test_quotes_comments_and_spaces_that_are_fine(sql):
    check_read_only(sql, MYSQL)


@pytest.mark.parametrize(
    ("sql", "word"),
    [
        ("SHOW TABLES", "list_tables"),
        ("DESCRIBE orders", "describe_table"),
        ("EXPLAIN SELECT 1", "explain_query"),
        ("SET @a = 1", "SET"),
        ("HANDLER orders OPEN", "HANDLER"),
        ("WITH x AS (SELECT 1) DELETE FROM orders", "DELETE"),
        ("SELECT * FROM orders LOCK IN SHARE MODE", "LOCK"),
        ("SELECT 1 INTO @a", "INTO"),
        ("SELECT GET_LOCK('x', 1)", "get_lock"),
        ("SELECT shop.f(1)", "stored function"),
        ("SELECT * FROM mysql.user", "mysql schema"),
        ("SELECT NEXT VALUE FOR s", "sequence"),
        ("SELECT LAST_INSERT_ID(1)", "LAST_INSERT_ID"),
    ],
)
def test_refusals_say_what_and_count_as_violations(sql, word):
    with pytest.raises(PolicyViolation) as caught:
        check_read_only(sql, MYSQL)
    assert word in caught.value.message
    assert caught.value.violation


@pytest.mark.parametrize("sql", ["SELEC 1", "SELECT (", "FOO BAR", "SELECT 'open"])
def test_unreadable_text_is_invalid_not_a_violation(sql):
    with pytest.raises(InvalidRequest) as caught:
        check_read_only(sql, MYSQL)
    assert not caught.value.violation


def test_json_table_only_as_a_table():
    check_read_only("SELECT * FROM JSON_TABLE('[1]', '$[*]' COLUMNS (x INT PATH '$')) AS jt", MYSQL)
    assert verdict("SELECT JSON_TABLE('[1]', '$[*]' COLUMNS (x INT PATH '$'))", MYSQL).reason
    assert verdict("SELECT against(1)", MYSQL).reason


def test_type_names_take_parentheses_only_as_types():
    check_read_only("SELECT CAST(amount AS DECIMAL(10, 2)), CAST(d AS DATETIME(6)) FROM t", MYSQL)
    check_read_only("SELECT CONVERT(amount, DECIMAL(10, 2)), CONVERT(name, CHAR(3)) FROM t", MYSQL)
    assert verdict("SELECT DATETIME(1)", MYSQL).reason  # not a built-in: a stored function
    assert verdict("SELECT 1, datetime(1)", MYSQL).reason


def test_cte_and_derived_column_lists_are_not_calls():
    check_read_only("WITH x (a, b) AS (SELECT 1, 2) SELECT a FROM x", MYSQL)
    check_read_only("SELECT a FROM (SELECT 1) AS d (a)", MYSQL)


# --- binding parameters where the guard saw placeholders ---------------------------


def _literal(value: object) -> str:
    """PyMySQL's escaping, enough for these tests."""
    if value is None:
        return "NULL"
    if isinstance(value, bool | int | float):
        return str(int(value) if isinstance(value, bool) else value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def test_bind_puts_values_at_code_placeholders_only():
    sql = "SELECT DATE_FORMAT(d, '%H:%i:%s'), '%s' FROM t WHERE a = %s AND b LIKE %s"
    bound = bind_parameters(sql, [1, "x'%s"], _literal)
    assert bound == (
        "SELECT DATE_FORMAT(d, '%H:%i:%s'), '%s' FROM t WHERE a =  1  AND b LIKE  'x\\'%s' "
    )
    named = bind_parameters("SELECT %(a)s, %(a)s, %(b)s", {"a": 1, "b": None}, _literal)
    assert named == "SELECT  1 ,  1 ,  NULL "


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT '%s'",  # Python's % would splice the value's quotes into the code
        'SELECT "%s"',
        "SELECT `%s` FROM t",
        "SELECT 1 /* %s */",
        "SELECT 1 -- %s",
        "SELECT 1 # %s",
    ],
)
def test_placeholders_in_strings_comments_or_names_are_never_bound(sql):
    check_read_only(sql, MYSQL)  # a read as written ...
    with pytest.raises(InvalidRequest, match="no placeholder"):
        bind_parameters(sql, ["x, SLEEP(5), y"], _literal)  # ... and nothing is spliced in
    assert bind_parameters(sql, None, _literal) == sql


@pytest.mark.parametrize(
    ("sql", "params", "message"),
    [
        ("SELECT %s", None, "no params"),
        ("SELECT %s, %s", [1], "2 placeholder"),
        ("SELECT %s", [1, 2], "1 placeholder"),
        ("SELECT %s, %(a)s", {"a": 1}, "either"),
        ("SELECT %(a)s", [1], "object"),
        ("SELECT %s", {"a": 1}, "list"),
        ("SELECT %(a)s", {"b": 1}, "a"),
        ("SELECT %s", [[1, 2]], "single value"),
        ("SELECT %s", "ab", "list"),
        ("SELECT a%s", [1], "stand alone"),
    ],
)
def test_bind_refuses_mismatches(sql, params, message):
    with pytest.raises(InvalidRequest, match=message):
        bind_parameters(sql, params, _literal)


def test_bound_values_cannot_glue_to_neighbours():
    # `-%s` with -1 would give `--1`; the padding keeps the literal a separate token.
    bound = bind_parameters("SELECT 1 -%s", [-1], _literal)
    assert bound == "SELECT 1 - -1 "
    check_read_only(bound, MYSQL)


def test_differential_texts_hide_sleep_only_where_the_guard_sees_it_as_data():
    """What the guard accepts of the differential texts never calls SLEEP in code; the
    server half of this check (run them, none sleeps) belongs to the engine suite."""
    accepted = [t for t in differential_texts(3, 4000) if verdict(t, MYSQL).reason is None]
    assert accepted  # the draw does produce texts worth sending to a server
    for text in accepted:
        pieces = lex(text).pieces
        code = "".join(text[p.start : p.end] for p in pieces if p.kind is Kind.CODE)
        assert "SLEEP" not in code, text


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT sum (1)",
        "SELECT count/**/(1)",
        "SELECT MAX\n(id) FROM orders",
        "SELECT rank () OVER (ORDER BY id) FROM orders",
        "SELECT CONCAT ('a')",
    ],
)
def test_a_space_before_a_builtins_parenthesis_is_refused(sql):
    """Without IGNORE_SPACE, MariaDB and MySQL read `sum (1)` as a call of a stored
    function named sum (MariaDB 10.11: a `sum` that inserts a row did insert it)."""
    with pytest.raises(PolicyViolation, match="no space"):
        check_read_only(sql, MYSQL)


def test_reserved_names_and_keywords_may_be_spaced():
    check_read_only(
        "SELECT IF (id > 1, 'a', 'b'), LEFT (name, 1), CHAR (65), MOD (id, 2), "
        "CONVERT (name USING utf8mb4) FROM customers WHERE id IN (1, 2) AND EXISTS "
        "(SELECT 1) AND MATCH (name) AGAINST ('x') AND id = ANY (SELECT 1)",
        MYSQL,
    )
    check_read_only("SELECT SUM(id) OVER (ORDER BY id) FROM orders", MYSQL)


def test_sqlglot_and_the_lexer_agree_on_every_quote_of_the_differential_texts():
    for text in differential_texts(11, 3000):
        try:
            lexed = lex(text)
            tokens = _MYSQL.tokenize(lexed.normalised)
        except Exception:
            continue
        assert guard_mysql._quote_ends(tokens, lexed.normalised) == lexed.quote_ends, text


def test_a_quote_sqlglot_closes_elsewhere_refuses_the_query(monkeypatch):
    real = guard_mysql.lex

    def shifted(sql):
        lexed = real(sql)
        return dataclasses.replace(lexed, quote_ends=tuple(e + 1 for e in lexed.quote_ends))

    monkeypatch.setattr(guard_mysql, "lex", shifted)
    found = guard_mysql.mysql_verdict("SELECT 'a', `b` FROM t")
    assert found.reason and "quoting" in found.reason


def test_adjacent_strings_stay_two_strings():
    for sql in ["SELECT 'a'\"b\"", "SELECT \"a\"'b'", "SELECT 'a' 'b'", 'SELECT "a""b"']:
        check_read_only(sql, MYSQL)
    assert lex("SELECT 'a'\"b\"").normalised == "SELECT 'a' 'b'"


_FRAGMENTS = st.sampled_from(
    [
        *DIFFERENTIAL_FRAGMENTS,
        "%s", "%(a)s", "%", "{", "}", "\x00", "\u00a0", "@", ":=", "`x`", "N'", "x'",
        "SELECT", "FROM t", "count(", "sum (", "WITH", "INTO", "'%s'",
    ]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=12))
def test_guard_and_binding_never_crash(fragments):
    sql = "SELECT " + "".join(fragments)
    found = verdict(sql, MYSQL)
    assert found.reason is None or found.reason
    with contextlib.suppress(InvalidRequest):
        bind_parameters(sql, {"a": 1}, _literal)
    with contextlib.suppress(InvalidRequest):
        bind_parameters(sql, [1, 2], _literal)


def test_the_allow_list_and_the_deny_list_never_overlap():
    from mcp_fileserver.sql.denylist import MYSQL_FUNCTIONS
    from mcp_fileserver.sql.mysql_functions import BUILT_IN_FUNCTIONS, RESERVED_FUNCTIONS

    assert not {name for name in BUILT_IN_FUNCTIONS if MYSQL_FUNCTIONS.denies(name)}
    assert RESERVED_FUNCTIONS <= BUILT_IN_FUNCTIONS
