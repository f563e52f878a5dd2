"""SQL literals for bound values that every MariaDB/MySQL SQL mode reads the same way.

PyMySQL binds on the client (the text protocol carries no bound values): each value
becomes a literal in the text (mysql_params.bind_parameters puts it where the guard saw
the placeholder). PyMySQL's own escaping uses backslashes, which mean something else
under NO_BACKSLASH_ESCAPES; these literals do not depend on the mode: a string is quoted
with its quotes doubled or, when it holds a backslash or a control character, written as
`_utf8mb4 X'<hex>'`; a negative number is parenthesised.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mcp_fileserver.errors import InvalidRequest

_PLAIN_TEXT = re.compile(r"[^\\\x00-\x1f\x7f]*")


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
