"""The deny-list's two ways of checking a path agree with each other."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_fileserver.files.denylist import DEFAULT_DENY_PATTERNS, DenyList

DENY = DenyList(DEFAULT_DENY_PATTERNS)
TOKENS = [
    "/",
    "\\",
    ".",
    "..",
    "env",
    ".env",
    ".ENV",
    "id_rsa",
    "x.pem",
    "Key",
    "notes",
    "\u017f",  # long s: casefolds to s
    "\u0130",  # dotted capital I
    "\u00df",  # sharp s: casefolds to ss
    "credentials",
    ".ssh",
    "a",
    "b.txt",
    ".SSH",
    "shadow",
    "*",
    " ",
]


@given(
    st.one_of(
        st.lists(st.sampled_from(TOKENS), max_size=10).map("".join),
        st.text(max_size=30),
    )
)
@settings(max_examples=2000, deadline=None)
def test_one_pass_check_equals_the_per_component_check(text: str) -> None:
    parts = [part for part in re.split(r"[\\/]", text) if part]
    assert DENY.denies_components(text) == DENY.denies_parts(parts)


def test_one_pass_check_examples() -> None:
    assert DENY.denies_components("home/u/.SSH/config")
    assert DENY.denies_components("C:\\Users\\u\\id_rsa.pub")
    assert not DENY.denies_components("docs/keynote/readme.md")
    assert not DenyList(()).denies_components("a/.env")
