"""Bound parameters for MariaDB/MySQL: the tool's placeholder forms, spliced as literals.

PyMySQL binds on the client (the text protocol has no bound values): each value becomes a
SQL literal in the text. So the text the server runs is the query with its placeholders
replaced, and that final text is what the guard judges (mysql.py), never the template:
whatever a value holds, the guard sees exactly what the server will parse.

Placeholders, as on SQLite: `?` with a list, `:name` with an object. They are found by
MySQL's own lexical rules (quotes with backslash escapes, backquoted names, `#`, `-- ` and
`/* */` comments), so a `?` inside a string or comment is left alone.

Literals read the same under every SQL mode (with or without NO_BACKSLASH_ESCAPES): a
string is quoted with its quotes doubled, or, when it holds a backslash or a control
character, written as `_utf8mb4 X'<hex>'`; a negative number is parenthesised, so that
`1-?` cannot become the `1--5` that a lexer could take for a comment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mcp_fileserver.errors import InvalidRequest

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_TEXT = re.compile(r"[^\\\x00-\x1f\x7f]*")


def bind(sql: str, params: Sequence[Any] | Mapping[str, Any] | None) -> str:
    """`sql` with each placeholder replaced by its value as a SQL literal."""
    if params is None:
        return sql
    positional = not isinstance(params, Mapping)
    spans = list(placeholders(sql, named=not positional))
    if positional:
        values = list(params)
        if len(spans) != len(values):
            raise InvalidRequest(
                f"the query has {len(spans)} ? placeholder(s) but params holds "
                f"{len(values)} value(s)"
            )
        literals = [literal(value) for value in values]
    else:
        named: Mapping[str, Any] = params  # type: ignore[assignment]
        missing = sorted({sql[a + 1 : b] for a, b in spans} - set(named))
        if missing:
            raise InvalidRequest(f"params has no value for :{missing[0]}")
        literals = [literal(named[sql[a + 1 : b]]) for a, b in spans]
    out: list[str] = []
    last = 0
    for (start, end), text in zip(spans, literals, strict=True):
        out.append(sql[last:start])
        out.append(text)
        last = end
    out.append(sql[last:])
    return "".join(out)


def literal(value: Any) -> str:
    """`value` as a MariaDB/MySQL literal that every SQL mode reads the same way."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return f"({value})" if value < 0 else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequest(f"parameter value {value!r} cannot be sent to MariaDB/MySQL")
        text = repr(value)
        return f"({text})" if value < 0 else text
    if isinstance(value, str):
        if _PLAIN_TEXT.fullmatch(value):
            return "'" + value.replace("'", "''") + "'"
        return "_utf8mb4 X'" + value.encode("utf-8", "surrogatepass").hex() + "'"
    raise InvalidRequest("parameter values must be strings, numbers, booleans or null")


def placeholders(sql: str, *, named: bool) -> list[tuple[int, int]]:
    """(start, end) of every `?` (or every `:name` when `named`) outside quotes and comments."""
    found: list[tuple[int, int]] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            i = _end_of_string(sql, i, ch)
        elif ch == "`":
            i = _end_of_quoted_name(sql, i)
        elif ch == "#" or (sql.startswith("--", i) and (i + 2 == n or sql[i + 2] in " \t\r\n\f\v")):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif not named and ch == "?":
            found.append((i, i + 1))
            i += 1
        elif named and ch == ":" and (i == 0 or sql[i - 1] != ":"):
            match = _NAME.match(sql, i + 1)
            if match:
                found.append((i, match.end()))
                i = match.end()
            else:
                i += 1
        elif ch.isalnum() or ch in "_$@":
            # A word, a number or a variable: a ':' or '?' glued to it is not a placeholder.
            i += 1
            while i < n and (sql[i].isalnum() or sql[i] in "_$@."):
                i += 1
        else:
            i += 1
    return found


def _end_of_string(sql: str, start: int, quote: str) -> int:
    i, n = start + 1, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "\\":
            i += 2
        elif ch == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return n


def _end_of_quoted_name(sql: str, start: int) -> int:
    i, n = start + 1, len(sql)
    while i < n:
        if sql[i] == "`":
            if i + 1 < n and sql[i + 1] == "`":
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return n
