"""search_files matches names as `find -name` does, whichever fast path a glob takes."""

from __future__ import annotations

import fnmatch

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_fileserver.files.search import _glob_literal, _name_test

_PIECES = st.sampled_from(["*", "?", "[ab]", "[!a]", "[", "]", "a", "b", ".", "md", "\\", "*"])
_GLOB = st.lists(_PIECES, min_size=1, max_size=4).map("".join)
_NAME = st.lists(st.sampled_from(["a", "b", ".", "md", "*", "?", "[", "\\", "A"]), max_size=5).map(
    "".join
)


@given(pattern=_GLOB, names=st.lists(_NAME, min_size=1, max_size=8))
@settings(max_examples=2000, deadline=None)
def test_name_test_is_fnmatchcase(pattern: str, names: list[str]) -> None:
    want = [fnmatch.fnmatchcase(n, pattern) for n in names]
    assert [bool(hit) for hit in _name_test(pattern)(names)] == want
    if any(want):  # the prefilter's literal is in every matching name
        literal = _glob_literal(pattern)
        assert all(literal in n for n, hit in zip(names, want, strict=True) if hit)
