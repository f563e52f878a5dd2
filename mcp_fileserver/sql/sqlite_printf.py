"""A bounded `printf()`/`format()` for SQLite.

SQLite's built-in printf fills `%.*c` one character at a time and keeps looping after
its output passed SQLITE_LIMIT_LENGTH: `printf('%.*c', 2000000000, 'x')` burns ~30 s of
CPU inside one function call, where the progress handler cannot interrupt it, and then
quietly returns NULL. A format string built at run time multiplies this:
`printf(replace(hex(zeroblob(120)), '00', '%.60000000c'))` asks for 240 conversions each
under the limit, 14 GB in all (40 s). The replacement bounds, before the built-in runs,
every width and precision and the sum of every conversion's largest possible output
(literal text included) against the value limit; it then delegates the formatting to
SQLite's own printf on a private in-memory connection, so results are byte-for-byte
SQLite's and its work is bounded by the value limit.
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
        self.problem: str | None = None  # why the last call was refused
        self._lock = threading.Lock()
        self._engine = sqlite3.connect(":memory:", check_same_thread=False)
        self._engine.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_length)

    def __call__(self, fmt: Any, *args: Any) -> Any:
        try:
            if isinstance(fmt, bytes):
                self._check(fmt.decode("utf-8", "replace"), args)
            elif isinstance(fmt, str):
                self._check(fmt, args)
        except PrintfTooLarge as exc:
            self.problem = str(exc)
            raise
        placeholders = ", ".join("?" for _ in range(len(args) + 1))
        with self._lock:
            return self._engine.execute(f"SELECT printf({placeholders})", (fmt, *args)).fetchone()[
                0
            ]

    def _check(self, fmt: str, args: tuple[Any, ...]) -> None:
        consumed = 0
        total = len(fmt.encode("utf-8", "surrogatepass"))  # literal text, at most
        for match in _SPEC.finditer(fmt):
            sizes: list[int] = []
            for part in (match.group(2), match.group(3)):
                if part == "*":
                    value = _as_int(args[consumed]) if consumed < len(args) else 0
                    consumed += 1
                elif part:
                    value = int(part)
                else:
                    sizes.append(-1)
                    continue
                if abs(value) > self._max:
                    raise PrintfTooLarge(
                        f"printf width or precision {abs(value)} exceeds {self._max} bytes"
                    )
                sizes.append(abs(value))
            width, precision = sizes
            kind = match.group(4)
            if kind in ("%", "n"):  # %% and %n take no argument in SQL
                total += 1
            else:
                argument = args[consumed] if consumed < len(args) else None
                consumed += 1
                total += max(width, _largest_output(kind, precision, argument))
            if total > self._max:
                raise PrintfTooLarge(
                    f"printf output of up to {total} bytes exceeds {self._max} bytes"
                )

    def close(self) -> None:
        self._engine.close()


def _largest_output(kind: str, precision: int, argument: Any) -> int:
    """An upper bound of the bytes one conversion writes, width aside."""
    if kind == "c":  # the argument's first character, `precision` times
        first = argument[:1] if isinstance(argument, str | bytes) else ""
        size = len(first.encode("utf-8", "surrogatepass")) if isinstance(first, str) else 4
        return max(precision, 1) * max(size, 1)
    if kind in ("s", "z"):
        size = _text_bytes(argument)
        return size if precision < 0 else min(size, precision * 4)
    if kind in ("q", "Q", "w"):  # quotes doubled, plus the enclosing quotes or NULL
        return 2 * _text_bytes(argument) + 4
    # Numbers: at most ~310 digits for a double, 20 for an integer, thousands separators,
    # sign, exponent; a precision adds that many digits.
    return max(precision, 0) * 2 + 420


def _text_bytes(value: Any) -> int:
    if value is None:
        return 4
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    return 420  # a number's text form


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
