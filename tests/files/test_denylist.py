"""The deny-list matches exactly what `fnmatch` does, and its two ways of checking a
path agree with each other."""

from __future__ import annotations

import fnmatch
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


_GLOB_ALPHABET = st.sampled_from([*"*?[]!-.ab", "A", "\u017f", "\u00df", "\\", "env"])
_NAME_ALPHABET = st.sampled_from([*".ab-!]", "A", "B", "s", "ss", "\u017f", "\u00df", "\n", "env"])


def _fnmatch_reference(patterns: list[str], name: str) -> bool:
    folded = name.casefold()
    return any(re.match(fnmatch.translate(p.casefold()), folded) for p in patterns)


@given(
    patterns=st.lists(st.lists(_GLOB_ALPHABET, max_size=6).map("".join), max_size=4),
    name=st.lists(_NAME_ALPHABET, max_size=8).map("".join),
)
@settings(max_examples=3000, deadline=None)
def test_a_name_is_denied_exactly_when_fnmatch_matches_a_pattern(
    patterns: list[str], name: str
) -> None:
    """Patterns are sorted into a set, prefix and suffix tuples and a regex for speed;
    the verdict must stay the one `fnmatch` gives, whatever the pattern's shape."""
    assert DenyList(patterns).denies_name(name) == _fnmatch_reference(patterns, name)


@given(
    patterns=st.lists(st.lists(_GLOB_ALPHABET, max_size=6).map("".join), max_size=4),
    text=st.lists(st.sampled_from([*_NAME_ALPHABET.elements, "/", "\\", ""]), max_size=10).map(
        "".join
    ),
)
@settings(max_examples=3000, deadline=None)
def test_a_path_is_denied_exactly_when_fnmatch_matches_one_of_its_components(
    patterns: list[str], text: str
) -> None:
    components = [part for part in re.split(r"[\\/]", text) if part]
    expected = bool(patterns) and any(_fnmatch_reference(patterns, c) for c in components)
    assert DenyList(patterns).denies_components(text) == expected
    assert DenyList(patterns).denies_parts(components) == expected


@given(name=st.lists(st.sampled_from(TOKENS), max_size=4).map("".join) | st.text(max_size=20))
@settings(max_examples=2000, deadline=None)
def test_the_default_patterns_deny_exactly_what_fnmatch_matches(name: str) -> None:
    assert DENY.denies_name(name) == _fnmatch_reference(list(DEFAULT_DENY_PATTERNS), name)
