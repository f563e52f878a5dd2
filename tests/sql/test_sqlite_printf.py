"""The bounded printf: same output as SQLite's, refusal above the limit, at once."""

from __future__ import annotations

import sqlite3

import pytest

from mcp_fileserver.sql.sqlite_printf import BoundedPrintf, PrintfTooLarge


@pytest.fixture
def printf():
    bounded = BoundedPrintf(1000)
    yield bounded
    bounded.close()


@pytest.mark.parametrize(
    "args",
    [
        ("%d items", 3),
        ("%05.2f|%-6s|%q|%Q", 3.14159, "ab", "it's", None),
        ("%.*c", 5, "x"),
        ("%*d", 8, 42),
        ("%%%s%%", "x"),
        ("%!.3s", "héllo"),
        ("%,d", 1234567),
        ("no conversions",),
        (None,),
    ],
)
def test_same_output_as_sqlite(printf, args):
    reference = sqlite3.connect(":memory:")
    placeholders = ", ".join("?" for _ in args)
    expected = reference.execute(f"SELECT printf({placeholders})", args).fetchone()[0]
    assert printf(*args) == expected


@pytest.mark.parametrize(
    "args",
    [
        ("%.*c", 2_000_000_000, "x"),
        ("%.*c", "2e9", "x"),
        ("%*s", -5000, "x"),
        ("%2000000000d", 1),
        ("%.5000s", "x"),
        ("%n%.*c", 5000, "x"),
        ("%d %.*c", 1, 5000, "x"),
        (b"%.*c", 5000, "x"),
    ],
)
def test_widths_and_precisions_above_the_limit_are_refused(printf, args):
    with pytest.raises(PrintfTooLarge):
        printf(*args)
