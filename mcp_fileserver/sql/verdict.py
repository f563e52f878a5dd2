"""The guard's answer for one query, shared by every dialect's checks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """Why a query is refused (`reason`), or None when it is a single read.

    `unparsable`: the text was not understood (an `InvalidRequest`, not counted as a
    violation); otherwise a refusal is a policy violation."""

    reason: str | None = None
    unparsable: bool = False


def statement_count_verdict(count: int) -> Verdict:
    if count == 0:
        return Verdict("the query has no statement", unparsable=True)
    return Verdict(f"the query holds {count} statements")


def short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
