"""Bounded versions of SQLite's built-in functions whose work can outgrow their output.

SQLITE_LIMIT_LENGTH bounds every value a function builds, so a function whose work is
linear in its input and output (hex, quote, zeroblob, randomblob, char, substr, upper,
group_concat, the JSON builders, ...) is bounded by it, and a statement that calls one
many times is stopped between two calls by the progress handler and the watchdog
(`control.py`). Four built-ins are quadratic inside ONE call, where nothing can stop them:

- `replace(X, Y, Z)` and `instr(X, Y)` compare Y at every offset of X (memcmp): a 30 MB X
  of 'a' and a 3 MB Y of 'a...ab' never finish;
- `trim/ltrim/rtrim(X, Y)` compare each stripped character of X with every character
  of Y;
- `json_patch(A, B)` looks each key of B up by a linear scan of A's keys (200,000 keys:
  over 20 s).

Each is replaced by a wrapper that refuses the call when its worst-case work
(len(X) x len(Y)) is above `WORK_BUDGET`, and otherwise delegates to the same built-in on
a private in-memory connection, so results are SQLite's own. `printf`/`format` are bounded
in `sqlite_printf.py`. LIKE and GLOB are bounded by SQLITE_LIMIT_LIKE_PATTERN_LENGTH.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

# Worst-case byte comparisons one call may make: ~0.1-0.3 s of memcmp. An ordinary call is
# far below (replace() of 'a' in 1 MiB of text: 1 MiB; of a 1 KiB needle: 1 GiB, allowed).
WORK_BUDGET = 1 << 30


class FunctionTooCostly(Exception):
    """A call whose worst-case work exceeds the budget (the message reaches the client)."""


class BoundedFunctions:
    """The wrappers for one connection; `problem` says why the last call was refused."""

    # name -> (number of arguments, the two arguments whose sizes multiply)
    QUADRATIC: dict[str, tuple[int, tuple[int, int]]] = {
        "replace": (3, (0, 1)),
        "instr": (2, (0, 1)),
        "trim": (2, (0, 1)),
        "ltrim": (2, (0, 1)),
        "rtrim": (2, (0, 1)),
        "json_patch": (2, (0, 1)),
    }

    def __init__(self, max_length: int, budget: int = WORK_BUDGET) -> None:
        self.budget = budget
        self.problem: str | None = None
        self._lock = threading.Lock()
        self._engine = sqlite3.connect(":memory:", check_same_thread=False)
        self._engine.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_length)

    def register(self, conn: sqlite3.Connection) -> None:
        for name, (arity, pair) in self.QUADRATIC.items():
            conn.create_function(name, arity, self._wrapper(name, arity, pair), deterministic=True)

    def _wrapper(self, name: str, arity: int, pair: tuple[int, int]) -> Callable[..., Any]:
        placeholders = ", ".join("?" for _ in range(arity))
        sql = f"SELECT {name}({placeholders})"
        first, second = pair

        def call(*args: Any) -> Any:
            work = _size(args[first]) * _size(args[second])
            if work > self.budget:
                self.problem = (
                    f"{name}() on values this large could compare up to {work:,} bytes, "
                    f"above the {self.budget:,}-byte work limit of one call"
                )
                raise FunctionTooCostly(self.problem)
            with self._lock:
                return self._engine.execute(sql, args).fetchone()[0]

        return call

    def close(self) -> None:
        self._engine.close()


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value) if value.isascii() else 4 * len(value)  # UTF-8 bytes, at most
    if isinstance(value, bytes):
        return len(value)
    return 32  # a number's text form; NULL
