"""Layer 1 for MySQL and MariaDB: one read statement, nothing that writes, locks or waits.

The order is the point:

1. mysql_lexer.py splits the raw text as the server does, refusing executable comments
   (`/*! */`, `/*M! */`, versioned), optimizer hints and anything two readers could split
   differently; sqlglot then parses a normalised text with no comment left in it.
2. The statement must start with SELECT, WITH, VALUES or TABLE (or `(`) and be exactly
   one statement; SHOW, DESCRIBE, EXPLAIN, SET, DO, CALL, HANDLER, LOCK ... are refused
   by their first word, before any parser can fall back to an opaque command.
3. Every token followed by `(` is a call unless it is structural: its name must be a
   built-in of both servers (mysql_functions.py), written unqualified, unquoted and,
   unless the name is reserved, with nothing between it and `(` (without IGNORE_SPACE
   the server reads `count (x)` as a call of a stored function `count`).
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
    AFTER_CLOSE,
    AFTER_COMPARISON,
    AFTER_STRING,
    BUILT_IN_FUNCTIONS,
    RESERVED_FUNCTIONS,
    RESERVED_TYPE_WORDS,
    SET_OPERATIONS,
    STRUCTURAL_KEYWORDS,
    TABLE_FUNCTIONS,
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
    if _quote_ends(tokens, text) != lexed.quote_ends:
        return Verdict(
            "the guard could not read the query's quoting as the server would; write "
            "strings in single quotes and names in backticks",
            unparsable=True,
        )
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


def _quote_ends(tokens: list[Any], text: str) -> tuple[int, ...]:
    """Where sqlglot closes each string and quoted name: must be where the lexer did."""
    return tuple(t.end for t in tokens if t.token_type in _QUOTED_TOKENS and text[t.end] in "'`")


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
            spaced = token.start != tokens[index - 1].end + 1
            calls.append(_Call(previous_text, previous_kind, before_previous, spaced))
        before_previous, previous_kind = previous_kind, kind
        previous_text = text = token.text.lower()
        if kind in _QUOTED_TOKENS:
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


# Tokens whose text is data or a quoted name, never a keyword.
_QUOTED_TOKENS = frozenset(
    {
        TokenType.STRING,
        TokenType.NATIONAL_STRING,
        TokenType.HEX_STRING,
        TokenType.BIT_STRING,
        TokenType.BYTE_STRING,
        TokenType.RAW_STRING,
        TokenType.IDENTIFIER,
    }
)
_ROLE_OF: dict[type[exp.Expr], str | None] = {}
_NAMES = frozenset({TokenType.VAR, TokenType.IDENTIFIER})


_ROLES: tuple[tuple[str, type[exp.Expr] | tuple[type[exp.Expr], ...]], ...] = (
    ("anonymous", (exp.Anonymous, exp.AnonymousAggFunc)),
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
    spaced: bool  # white space or a comment between the name and `(`


def _call_verdict(call: _Call, aliases_with_columns: set[str]) -> Verdict | None:
    """The name before a `(`: a built-in, a structural word in its place, or refused."""
    name, kind, previous = call.name, call.kind, call.previous
    if kind is TokenType.VAR or kind is TokenType.IDENTIFIER:
        if name in aliases_with_columns:
            return None  # WITH x (a, b) AS ..., (subquery) AS d (a)
        if kind is TokenType.IDENTIFIER:
            if MYSQL_FUNCTIONS.denies(name):
                return Verdict(f"function {name}() is not allowed")
            return Verdict(f"`{name}`(): a quoted function name is refused")
    elif not _WORD.fullmatch(name):
        return None  # an operator or punctuation before `(`
    if _in_its_place(name, previous):
        return None
    if kind is not TokenType.VAR and (name in STRUCTURAL_KEYWORDS or name in RESERVED_TYPE_WORDS):
        return None  # reserved: never a function's name (the tree still sees VALUES())
    if MYSQL_FUNCTIONS.denies(name):
        return Verdict(f"function {name}() is not allowed")
    if name in BUILT_IN_FUNCTIONS:
        if call.spaced and name not in RESERVED_FUNCTIONS:
            return Verdict(
                f"write {name}( with no space or comment before the parenthesis: the server "
                f"reads `{name} (` as a call of a stored function named {name}"
            )
        return None
    return _unknown_function(name)


def _in_its_place(name: str, previous: TokenType | None) -> bool:
    """A word the servers may not reserve, where it cannot be a call."""
    if name in AFTER_CLOSE:
        return previous is TokenType.R_PAREN
    if name in AFTER_STRING:
        return previous is TokenType.STRING
    if name in AFTER_COMPARISON:
        return previous in _COMPARISONS
    if name in SET_OPERATIONS:
        return previous in _QUERY_BLOCK_ENDS
    if name in TABLE_FUNCTIONS:
        return True  # the tree check keeps it in FROM
    return name in TYPE_WORDS and previous in _BEFORE_A_TYPE


# CAST(x AS DATETIME(6)); a JSON_TABLE column `name DATETIME(6) PATH ...`.
_BEFORE_A_TYPE = frozenset({TokenType.ALIAS, TokenType.VAR, TokenType.IDENTIFIER})
_COMPARISONS = frozenset(
    {TokenType.EQ, TokenType.NEQ, TokenType.GT, TokenType.GTE, TokenType.LT, TokenType.LTE}
)
_QUERY_BLOCK_ENDS = frozenset(
    {
        TokenType.R_PAREN,
        TokenType.NUMBER,
        TokenType.STRING,
        TokenType.VAR,
        TokenType.IDENTIFIER,
        TokenType.STAR,
    }
)


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
