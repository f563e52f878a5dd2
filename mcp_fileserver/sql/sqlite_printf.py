"""A bounded `printf()`/`format()` for SQLite.

SQLite's built-in printf fills `%.*c` one character at a time and keeps looping after
its output passed SQLITE_LIMIT_LENGTH: `printf('%.*c', 2000000000, 'x')` burns ~30 s of
CPU inside one function call, where the progress handler cannot interrupt it, and then
quietly returns NULL. The replacement refuses any width or precision above the value
limit before the built-in runs, then delegates the formatting itself to SQLite's own
printf on a private in-memory connection, so results are byte-for-byte SQLite's.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from typing import Any

# A conversion: flags, width (digits or *), precision (digits or *), length, type.
_SPEC = re.compile(r"%([-+ 0#,!]*)(\*|\d+)?(?:\.(\*|\d*))?(?:ll|l)?(.)", re.S)


_NUMBER = re.compile(r"\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


class PrintfTooLarge(Exception):
    """A width or precision above the limit (the message reaches the client)."""


class BoundedPrintf:
    """Callable for `create_function("printf", -1, ...)`, one per connection."""

    def __init__(self, max_length: int) -> None:
        self._max = max_length
        self._lock = threading.Lock()
        self._engine = sqlite3.connect(":memory:", check_same_thread=False)
        self._engine.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_length)

    def __call__(self, fmt: Any, *args: Any) -> Any:
        if isinstance(fmt, bytes):
            self._check(fmt.decode("utf-8", "replace"), args)
        elif isinstance(fmt, str):
            self._check(fmt, args)
        placeholders = ", ".join("?" for _ in range(len(args) + 1))
        with self._lock:
            return self._engine.execute(f"SELECT printf({placeholders})", (fmt, *args)).fetchone()[
                0
            ]

    def _check(self, fmt: str, args: tuple[Any, ...]) -> None:
        consumed = 0
        for match in _SPEC.finditer(fmt):
            for part in (match.group(2), match.group(3)):
                if part == "*":
                    value = _as_int(args[consumed]) if consumed < len(args) else 0
                    consumed += 1
                elif part:
                    value = int(part)
                else:
                    continue
                if abs(value) > self._max:
                    raise PrintfTooLarge(
                        f"printf width or precision {abs(value)} exceeds {self._max} bytes"
                    )
            if match.group(4) not in ("%", "n"):  # %% and %n take no argument in SQL
                consumed += 1

    def close(self) -> None:
        self._engine.close()


def _as_int(value: Any) -> int:
    """How SQLite reads a `*` argument: numbers as they are, text by its numeric prefix."""
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        return int(value) if abs(value) < 2**63 else 2**63
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        # The widest reading of a numeric prefix ('2e9' counts as 2000000000): fail closed.
        match = _NUMBER.match(value)
        return _as_int(float(match.group())) if match else 0
    return 0
