"""Layer 1 for MySQL and MariaDB: one read statement, nothing that writes, locks or waits.

The order is the point:

1. mysql_lexer.py splits the raw text as the server does, refusing executable comments
   (`/*! */`, `/*M! */`, versioned), optimizer hints and anything two readers could split
   differently; sqlglot then parses a normalised text with no comment left in it.
2. The statement must start with SELECT, WITH, VALUES or TABLE (or `(`) and be exactly
   one statement; SHOW, DESCRIBE, EXPLAIN, SET, DO, CALL, HANDLER, LOCK ... are refused
   by their first word, before any parser can fall back to an opaque command.
3. Every token followed by `(` is a call unless it is structural: its name must be a
   built-in of both servers (mysql_functions.py), written unqualified and unquoted.
4. The whole tree is walked: no write, DDL, INTO (file, dump or variable), row lock,
   assignment (`:=`), opaque command, unknown function or MySQL system schema anywhere,
   CTEs and subqueries included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect as SqlglotDialect
from sqlglot.tokens import TokenType

from mcp_fileserver.sql.denylist import MYSQL_FUNCTIONS
from mcp_fileserver.sql.mysql_functions import (
    BUILT_IN_FUNCTIONS,
    RESERVED_TYPE_WORDS,
    STRUCTURAL_KEYWORDS,
    TYPE_WORDS,
)
from mcp_fileserver.sql.mysql_lexer import LexRefusal, lex
from mcp_fileserver.sql.verdict import Verdict, short, statement_count_verdict

_MYSQL = SqlglotDialect.get_or_raise("mysql")
_READ_ROOTS = (exp.Select, exp.SetOperation, exp.Values, exp.Subquery)
_READ_FIRST_WORDS = frozenset({"select", "with", "values", "table"})
_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z_]+)")
_WORD = re.compile(r"[a-z_][a-z0-9_$]*")

# Statements by first word: what the refusal says.
_NOT_A_READ = {
    "show": "SHOW is refused here (list_tables and describe_table answer for the schema)",
    "describe": "DESCRIBE is refused here (use describe_table)",
    "desc": "DESC is refused here (use describe_table)",
    "explain": "EXPLAIN is refused here (use explain_query)",
    "analyze": "ANALYZE writes statistics (and ANALYZE SELECT runs the query)",
    "help": "HELP is not a read of your data",
}

# The first words of every other MySQL/MariaDB statement: refused as violations.
_STATEMENT_WORDS = frozenset(
    {
        "set", "do", "call", "handler", "lock", "unlock", "insert", "replace", "update",
        "delete", "create", "alter", "drop", "truncate", "rename", "grant", "revoke", "load",
        "prepare", "execute", "deallocate", "begin", "start", "commit", "rollback",
        "savepoint", "release", "xa", "kill", "shutdown", "flush", "reset", "purge",
        "install", "uninstall", "optimize", "repair", "check", "checksum", "cache", "change",
        "use", "binlog", "import", "clone", "restart", "signal", "resignal", "get", "backup",
        "stop", "declare", "return", "if", "while", "loop", "repeat", "leave", "iterate",
        "open", "close", "fetch", "source", "load_file",
    }
)  # fmt: skip

# Reserved words that never belong in a read: caught on the token stream, where a
# parser cannot have turned them into something else.
_FORBIDDEN_WORDS = {
    "into": "SELECT ... INTO writes a file or a variable",
    "outfile": "INTO OUTFILE writes a file on the server",
    "dumpfile": "INTO DUMPFILE writes a file on the server",
    "lock": "LOCK takes locks",
    "update": "UPDATE writes (FOR UPDATE takes row locks)",
    "delete": "DELETE writes",
    "sql_calc_found_rows": "SQL_CALC_FOUND_ROWS sets a session value",
    "procedure": "PROCEDURE runs a server-side procedure on the result",
}

# Nodes that write, lock, assign or that sqlglot could not read (Command).
_FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = (
    exp.DML,
    exp.DDL,
    exp.Into,
    exp.Lock,
    exp.Returning,
    exp.Command,
    exp.Set,
    exp.SetItem,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Analyze,
    exp.Copy,
    exp.PropertyEQ,
    exp.Show,
    exp.Describe,
    exp.Use,
    exp.Pragma,
)

# `seq.nextval` (MariaDB's Oracle-style sequence access) advances `seq`.
_SEQUENCE_STEPS = frozenset({"nextval", "currval", "lastval"})

# Schemas whose tables hold credentials, other sessions' statements or stored code.
# information_schema stays readable (as pg_catalog does on PostgreSQL): it is how a
# client learns a schema, and the server filters it by the account's privileges.
DENIED_SCHEMAS = frozenset({"mysql", "performance_schema", "sys"})


def mysql_verdict(sql: str) -> Verdict:
    try:
        lexed = lex(sql)
    except LexRefusal as exc:
        return Verdict(exc.reason, unparsable=not exc.violation)
    text = lexed.normalised
    if not text.strip(" \t\n\r\x0b\x0c;"):
        return statement_count_verdict(0)
    first = _FIRST_WORD.match(text)
    word = first.group(1).lower() if first else ""
    if word not in _READ_FIRST_WORDS:
        if word in _NOT_A_READ:
            return Verdict(_NOT_A_READ[word])
        if word in _STATEMENT_WORDS:
            return Verdict(f"{word.upper()} is not a read")
        return Verdict(
            f"not valid MySQL: {word.upper() or 'the query'} starts no read", unparsable=True
        )
    try:
        tokens = _MYSQL.tokenize(text)
    except Exception as exc:  # sqlglot raises TokenError, and may raise others
        return Verdict(f"not valid MySQL: {short(exc)}", unparsable=True)
    found = _token_verdict(tokens)
    if isinstance(found, Verdict):
        return found
    try:
        expressions = [e for e in _MYSQL.parser().parse(tokens, text) if e is not None]
    except Exception as exc:  # ParseError, and anything else: fail closed
        return Verdict(f"not valid MySQL: {short(exc)}", unparsable=True)
    statements = [e for e in expressions if not isinstance(e, exp.Semicolon)]
    if len(statements) != 1:
        return statement_count_verdict(len(statements))
    root = statements[0]
    if not isinstance(root, _READ_ROOTS):
        return Verdict(f"{_node_name(root)} is not a read")
    return _tree_verdict(root, found)


def _token_verdict(tokens: list[Any]) -> Verdict | list[_Call]:
    """Forbidden reserved words, assignments, sequence steps; else every call site."""
    calls: list[_Call] = []
    previous_kind: TokenType | None = None
    before_previous: TokenType | None = None
    previous_text = ""
    for index, token in enumerate(tokens):
        kind = token.token_type
        if kind is TokenType.L_PAREN and previous_kind is not None:
            if before_previous is TokenType.DOT and previous_kind in _NAMES:
                return Verdict(f"{previous_text}() is a stored function (schema-qualified)")
            calls.append(_Call(previous_text, previous_kind, before_previous))
        before_previous, previous_kind = previous_kind, kind
        previous_text = text = token.text.lower()
        if kind is TokenType.STRING or kind is TokenType.IDENTIFIER:
            continue
        if text in _FORBIDDEN_WORDS:
            return Verdict(_FORBIDDEN_WORDS[text])
        if kind is TokenType.COLON_EQ:
            return Verdict("an assignment (:=) sets a variable")
        if text in ("next", "previous") and _texts(tokens, index + 1, 2) == ["value", "for"]:
            return Verdict(f"{text.upper()} VALUE FOR reads or advances a sequence")
    return calls


def _tree_verdict(root: exp.Expr, calls: list[_Call]) -> Verdict:
    aliases_with_columns: set[str] = set()
    for node in root.walk():
        cls = type(node)
        role = _ROLE_OF[cls] if cls in _ROLE_OF else _role(cls)
        if role is None:
            continue
        if role == "forbidden":
            return Verdict(f"{_node_name(node)} inside the query")
        if role == "anonymous":
            name = node.name.lower()
            if MYSQL_FUNCTIONS.denies(name):
                return Verdict(f"function {name}() is not allowed")
            if name not in BUILT_IN_FUNCTIONS:
                return _unknown_function(name)
            if name == "last_insert_id" and node.expressions:
                return Verdict("LAST_INSERT_ID(expr) sets a session value")
        elif role == "json_table" and not isinstance(node.parent, exp.Table):
            return _unknown_function("json_table")
        elif role == "column" and node.text("table") and node.name.lower() in _SEQUENCE_STEPS:
            return Verdict(f"{node.text('table')}.{node.name} reads or advances a sequence")
        elif role == "table" and node.text("db").lower() in DENIED_SCHEMAS:
            return Verdict(f"tables of the {node.text('db').lower()} schema are not readable")
        elif role == "alias" and node.args.get("columns"):
            aliases_with_columns.add(node.name.lower())
    for call in calls:
        found = _call_verdict(call, aliases_with_columns)
        if found is not None:
            return found
    return Verdict()


def _role(cls: type[exp.Expr]) -> str | None:
    """What the tree walk checks on a node of this class, kept in `_ROLE_OF`."""
    found: str | None = None
    if issubclass(cls, _FORBIDDEN_NODES):
        found = "forbidden"
    else:
        found = next((role for role, base in _ROLES if issubclass(cls, base)), None)
    _ROLE_OF[cls] = found
    return found


_ROLE_OF: dict[type[exp.Expr], str | None] = {}
_NAMES = frozenset({TokenType.VAR, TokenType.IDENTIFIER})


_ROLES: tuple[tuple[str, type[exp.Expr]], ...] = (
    ("anonymous", exp.Anonymous),
    ("json_table", exp.JSONTable),
    ("column", exp.Column),
    ("table", exp.Table),
    ("alias", exp.TableAlias),
)


@dataclass(frozen=True)
class _Call:
    """The token before a `(`, and the one before it."""

    name: str
    kind: TokenType
    previous: TokenType | None


def _call_verdict(call: _Call, aliases_with_columns: set[str]) -> Verdict | None:
    """The name before a `(`: a built-in, a structural keyword, or refused."""
    name, kind = call.name, call.kind
    if kind is TokenType.VAR or kind is TokenType.IDENTIFIER:
        if name in aliases_with_columns:
            return None
        if kind is TokenType.VAR and name in STRUCTURAL_KEYWORDS:
            return None  # the tree check refuses it if it is a call after all
        if MYSQL_FUNCTIONS.denies(name):
            return Verdict(f"function {name}() is not allowed")
        if kind is TokenType.IDENTIFIER:
            return Verdict(f"`{name}`(): a quoted function name is refused")
        if name not in BUILT_IN_FUNCTIONS:
            return _unknown_function(name)
        return None
    if not _WORD.fullmatch(name):
        return None  # an operator or punctuation before `(`
    if name in BUILT_IN_FUNCTIONS or name in STRUCTURAL_KEYWORDS or name in RESERVED_TYPE_WORDS:
        return None
    if name in TYPE_WORDS and call.previous in _BEFORE_A_TYPE:
        return None
    if MYSQL_FUNCTIONS.denies(name):
        return Verdict(f"function {name}() is not allowed")
    return _unknown_function(name)


# CAST(x AS DECIMAL(10, 2)); a JSON_TABLE column `name VARCHAR(10) PATH ...`.
_BEFORE_A_TYPE = frozenset({TokenType.ALIAS, TokenType.VAR, TokenType.IDENTIFIER})


def _unknown_function(name: str) -> Verdict:
    return Verdict(
        f"function {name}() is not a built-in the guard knows to be free of side effects "
        "(stored and user-defined functions are refused)",
        unparsable=True,
    )


def _texts(tokens: list[Any], start: int, count: int) -> list[str]:
    return [t.text.lower() for t in tokens[start : start + count]]


def _node_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper() or "this statement"
    if isinstance(node, exp.Insert):
        return "INSERT/REPLACE"
    if isinstance(node, exp.Into):
        return "SELECT ... INTO"
    if isinstance(node, exp.Lock):
        return "FOR UPDATE/SHARE (row locks)"
    if isinstance(node, exp.PropertyEQ):
        return "an assignment (:=)"
    if isinstance(node, exp.Set | exp.SetItem):
        return "SET"
    return type(node).__name__.upper()
