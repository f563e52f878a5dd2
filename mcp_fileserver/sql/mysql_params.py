"""Bind PyMySQL-style parameters where the guard saw placeholders, and nowhere else.

PyMySQL binds on the client: `cursor.execute(sql, params)` runs Python's `sql % params`
over the WHOLE text, strings and comments included. So `SELECT '%s'` with the value
`x, SLEEP(5), y` becomes `SELECT ''x, SLEEP(5), y''` -- two empty strings around code
the guard never saw (a backtick identifier or a comment splices the same way). The
guard accepts `%s` and `%(name)s` only in code (mysql_lexer.py); this module puts each
escaped literal at exactly those places, and the engine then sends the bound text with
no params (`cursor.execute(bound)`), so nothing else in the text is ever formatted and
`%` in a string stays a `%`.

`literal` escapes one value as the connection would (PyMySQL: `connection.literal`,
which follows the connection's charset and NO_BACKSLASH_ESCAPES). Each literal is
padded with spaces, so it can never glue to a neighbouring token.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mcp_fileserver.errors import InvalidRequest
from mcp_fileserver.sql.mysql_lexer import Kind, LexRefusal, lex

_SCALARS = (
    str,
    int,
    float,
    bool,
    bytes,
    decimal.Decimal,
    datetime.date,
    datetime.time,
    datetime.timedelta,
)


def bind_parameters(
    sql: str,
    params: Sequence[Any] | Mapping[str, Any] | None,
    literal: Callable[[Any], str],
) -> str:
    """`sql` with every placeholder replaced by `literal(value)`; InvalidRequest when the
    placeholders and `params` do not match one to one."""
    try:
        lexed = lex(sql)
    except LexRefusal as exc:  # the guard refuses the same text with the same reason
        raise InvalidRequest(f"query refused: {exc.reason}") from None
    names = lexed.placeholders
    if not names:
        if params:
            raise InvalidRequest(
                "params were given but the query has no placeholder (%s or %(name)s)"
            )
        return sql
    values = _values(names, params)
    out: list[str] = []
    position = 0
    slot = 0
    for piece in lexed.pieces:
        if piece.kind is not Kind.PLACEHOLDER:
            continue
        out.append(sql[position : piece.start])
        out.append(f" {literal(values[slot])} ")
        slot += 1
        position = piece.end
    out.append(sql[position:])
    return "".join(out)


def _values(
    names: tuple[str | None, ...], params: Sequence[Any] | Mapping[str, Any] | None
) -> list[Any]:
    if params is None:
        raise InvalidRequest("the query has placeholders (%s) but no params were given")
    named = [name for name in names if name is not None]
    if named and len(named) != len(names):
        raise InvalidRequest("use either %s or %(name)s placeholders in one query, not both")
    if named:
        if not isinstance(params, Mapping):
            raise InvalidRequest("%(name)s placeholders take params as an object")
        missing = sorted({name for name in named if name not in params})
        if missing:
            raise InvalidRequest(f"no value for placeholder(s): {', '.join(missing)}")
        values = [params[name] for name in named]
    else:
        if isinstance(params, Mapping | str | bytes):
            raise InvalidRequest("%s placeholders take params as a list")
        values = list(params)
        if len(values) != len(names):
            raise InvalidRequest(
                f"the query has {len(names)} placeholder(s) but {len(values)} param(s)"
            )
    for value in values:
        if value is not None and not isinstance(value, _SCALARS):
            raise InvalidRequest(
                "each param must be a single value (text, number, true/false, null)"
            )
    return values
