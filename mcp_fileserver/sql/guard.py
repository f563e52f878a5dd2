"""Layer 1: parse a query in its database's dialect and refuse anything but one read.

Invariant: `check_read_only(sql, dialect)` returns only if `sql` is exactly one statement
whose root is a read (SELECT, a set operation, VALUES, WITH of read-only parts) and whose
whole tree holds no data-modifying statement (also inside CTEs and subqueries), no
`SELECT ... INTO`, no row lock (`FOR UPDATE/SHARE`) and no call to a deny-listed
function (denylist.py). Anything the parser cannot read is refused: it fails closed.

Parsers:
- PostgreSQL: pglast, which embeds PostgreSQL's own parser (libpg_query). What it sees is
  exactly what the server will see, so dollar quoting, nested comments, `E''` escapes and
  new syntax cannot make the guard and the server disagree about what a string means.
- MySQL and MariaDB: guard_mysql.py (its own lexer for comments and quotes, then
  sqlglot's MySQL dialect, and an allow-list of built-in functions).
- SQLite: sqlglot's SQLite dialect (no nested comments, as in SQLite). Its tree may map a
  function to a typed node under another name, so deny-listed names are also matched on
  the token stream, where a name is exactly what the user wrote.

Verdicts are cached by SQL text (an LRU of `VERDICT_CACHE_SIZE` entries, texts up to
`CACHEABLE_SQL_CHARS`): the same query asked twice is validated once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from enum import StrEnum
from functools import lru_cache
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect as SqlglotDialect
from sqlglot.tokens import TokenType

from mcp_fileserver.errors import InvalidRequest, PolicyViolation
from mcp_fileserver.sql import pg_tree
from mcp_fileserver.sql.denylist import (
    POSTGRES_FUNCTIONS,
    SQLITE_DENIED_TABLES,
    SQLITE_FUNCTIONS,
)
from mcp_fileserver.sql.verdict import Verdict, short, statement_count_verdict

__all__ = ["Dialect", "Verdict", "check_read_only", "verdict"]

VERDICT_CACHE_SIZE = 1024
# Only texts up to this length are cached, so the cache holds at most ~4 MiB of SQL.
CACHEABLE_SQL_CHARS = 4096
READ_ONLY_HINT = "only a single read-only query (SELECT, VALUES, WITH ... SELECT) is allowed"


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"
    MYSQL = "mysql"  # MySQL and MariaDB alike: what they read differently is refused


def check_read_only(sql: str, dialect: Dialect) -> None:
    """Return if `sql` is one read-only statement; raise a `Refusal` saying why not."""
    found = verdict(sql, dialect)
    if found.reason is None:
        return
    if found.unparsable:
        raise InvalidRequest(f"query refused: {found.reason}")
    raise PolicyViolation(f"query refused: {found.reason}; {READ_ONLY_HINT}")


def verdict(sql: str, dialect: Dialect) -> Verdict:
    """The verdict for `sql`, from the cache when the text is short enough to be kept."""
    if len(sql) <= CACHEABLE_SQL_CHARS:
        return _cached_verdict(sql, dialect)
    return _verdict(sql, dialect)


@lru_cache(maxsize=VERDICT_CACHE_SIZE)
def _cached_verdict(sql: str, dialect: Dialect) -> Verdict:
    return _verdict(sql, dialect)


def _verdict(sql: str, dialect: Dialect) -> Verdict:
    if not sql.strip():
        return Verdict("the query is empty", unparsable=True)
    if "\x00" in sql:
        return Verdict("the query contains a NUL character", unparsable=True)
    if dialect is Dialect.POSTGRESQL:
        return _postgres_verdict(sql)
    if dialect is Dialect.MYSQL:
        # Loaded on first use, so that a server without MySQL never pays for it (~15 ms).
        from mcp_fileserver.sql import guard_mysql

        return guard_mysql.mysql_verdict(sql)
    return _sqlite_verdict(sql)


# --- PostgreSQL (pglast) ----------------------------------------------------------


def _postgres_verdict(sql: str) -> Verdict:
    # pglast loads with the PostgreSQL backend (postgres.py imports it), so that a server
    # without a PostgreSQL database never pays for it; here it is already in memory.
    from pglast import parser as pg_parser

    try:
        tree = json.loads(pg_parser.parse_sql_json(sql))
    except pg_parser.ParseError as exc:
        return Verdict(f"not valid PostgreSQL: {exc}", unparsable=True)
    except Exception:  # the parser is C code: anything unexpected refuses
        return Verdict("not valid PostgreSQL", unparsable=True)
    statements = tree.get("stmts") or []
    if len(statements) != 1:
        return statement_count_verdict(len(statements))
    root = statements[0].get("stmt") or {}
    kind = next(iter(root), "")
    if kind != "SelectStmt":
        return Verdict(f"{_pg_statement_name(kind)} is not a read")
    for key, value in _walk_json(root):
        if key.endswith("Stmt") and key != "SelectStmt":
            return Verdict(f"{_pg_statement_name(key)} inside the query")
        if key == "intoClause" and value:
            return Verdict("SELECT ... INTO creates a table")
        if key == "lockingClause" and value:
            return Verdict("FOR UPDATE/SHARE locks rows")
    # Every function call, wherever it hangs (select list, FROM, LATERAL, CTEs, filters,
    # typed fields): recognised by its `funcname` field, not by its key.
    for _key, node in pg_tree.nodes(root):
        name = pg_tree.called_function(node)
        if name and POSTGRES_FUNCTIONS.denies(name):
            return Verdict(f"function {name}() is not allowed")
    return Verdict()


def _walk_json(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a pglast JSON tree, depth first, without recursion."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            for key, value in current.items():
                yield key, value
                if isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(current, list):
            stack.extend(item for item in current if isinstance(item, dict | list))


def _pg_statement_name(kind: str) -> str:
    names = {
        "InsertStmt": "INSERT",
        "UpdateStmt": "UPDATE",
        "DeleteStmt": "DELETE",
        "MergeStmt": "MERGE",
        "TransactionStmt": "a transaction command",
        "VariableSetStmt": "SET",
        "ExplainStmt": "EXPLAIN (use explain_query)",
        "CopyStmt": "COPY",
        "DoStmt": "DO",
        "CallStmt": "CALL",
        "ListenStmt": "LISTEN",
        "NotifyStmt": "NOTIFY",
        "LockStmt": "LOCK",
        "VacuumStmt": "VACUUM/ANALYZE",
    }
    if kind in names:
        return names[kind]
    if kind.startswith(("Create", "Alter", "Drop")) or kind in ("IndexStmt", "ViewStmt"):
        return "a schema change"
    return "this statement"


# --- SQLite (sqlglot) -------------------------------------------------------------

_SQLITE = SqlglotDialect.get_or_raise("sqlite")
# sqlglot warns (with the SQL text) when it falls back to a raw Command; we refuse those.
logging.getLogger("sqlglot").setLevel(logging.ERROR)
_READ_ROOTS = (exp.Select, exp.SetOperation, exp.Values, exp.Subquery)
# Statements and clauses that write, lock, change the schema or the session.
_FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = (
    exp.DML,
    exp.DDL,
    exp.Into,
    exp.Lock,
    exp.Returning,
    exp.Command,
    exp.Pragma,
    exp.Attach,
    exp.Detach,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Set,
    exp.Analyze,
    exp.Copy,
)


def _sqlite_verdict(sql: str) -> Verdict:
    try:
        tokens = _SQLITE.tokenize(sql)
    except Exception as exc:  # sqlglot raises TokenError, and may raise others
        return Verdict(f"not valid SQLite: {short(exc)}", unparsable=True)
    denied = _sqlite_denied_name(tokens)
    if denied:
        return Verdict(denied)
    try:
        expressions = [e for e in _SQLITE.parser().parse(tokens, sql) if e is not None]
    except Exception as exc:  # ParseError, and anything else: fail closed
        return Verdict(f"not valid SQLite: {short(exc)}", unparsable=True)
    statements = [e for e in expressions if not isinstance(e, exp.Semicolon)]
    if len(statements) != 1:
        return statement_count_verdict(len(statements))
    root = statements[0]
    if not isinstance(root, _READ_ROOTS):
        return Verdict(f"{_sqlite_statement_name(root)} is not a read")
    for node in root.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            return Verdict(f"{_sqlite_statement_name(node)} inside the query")
        if isinstance(node, exp.Func):
            for name in _sqlglot_function_names(node):
                if SQLITE_FUNCTIONS.denies(name):
                    return Verdict(f"function {name}() is not allowed")
    return Verdict()


def _sqlite_denied_name(tokens: list[Any]) -> str | None:
    """A deny-listed function called, or a raw-page table named, anywhere in the text."""
    for index, token in enumerate(tokens):
        text = token.text.lower()
        if text in SQLITE_DENIED_TABLES and token.token_type is not TokenType.STRING:
            return f"{text} is not allowed"
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if (
            following is not None
            and following.token_type is TokenType.L_PAREN
            and token.token_type is not TokenType.STRING
            and SQLITE_FUNCTIONS.denies(text)
        ):
            return f"function {text}() is not allowed"
    return None


def _sqlglot_function_names(node: exp.Func) -> list[str]:
    if isinstance(node, exp.Anonymous):
        return [node.name]
    return list(type(node).sql_names())


def _sqlite_statement_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper() or "this statement"
    if isinstance(node, exp.Insert):
        return "INSERT/REPLACE"
    if isinstance(node, exp.Into):
        return "SELECT ... INTO"
    if isinstance(node, exp.Lock):
        return "FOR UPDATE/SHARE"
    if isinstance(node, exp.Column | exp.Alias | exp.Identifier):
        return "this statement"
    return type(node).__name__.upper()
