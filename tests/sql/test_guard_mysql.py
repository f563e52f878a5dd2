"""Layer 1 for MySQL/MariaDB on its own: every attack refused, every control allowed."""

from __future__ import annotations

import pytest

from mcp_fileserver.errors import InvalidRequest, PolicyViolation, Refusal
from mcp_fileserver.sql.guard import Dialect, check_read_only, verdict
from tests.sql.mysql_corpus import ATTACKS, CONTROLS

MYSQL = Dialect.MYSQL


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
