"""The walk's per-directory `.gitignore` prefilter never misses an entry a rule matches.

A walk asks `ignore.candidates` once per directory (a search or two over the names
joined by newlines) and decides only the entries it returns; an entry some rule of some
layer matches, and so possibly ignored or re-included, must always be among them.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_fileserver.files import ignore

_PIECES = st.sampled_from(
    ["*", "?", "**", "/", "!", "a", "b", ".", "log", "[ab]", "[!a]", "\\*", "build", " "]
)
_PATTERN = st.lists(_PIECES, min_size=1, max_size=5).map("".join)
_NAME = st.lists(st.sampled_from(["a", "b", ".", "log", "build", "*", " ", "x\ny"]), min_size=1,
                 max_size=4).map("".join)  # fmt: skip
_DIR = st.lists(st.sampled_from(["a", "b", "build", "log", "a.log"]), max_size=3)


@given(
    rules=st.lists(st.lists(_PATTERN, min_size=1, max_size=4), min_size=1, max_size=3),
    rel=_DIR,
    names=st.lists(_NAME, min_size=1, max_size=6, unique=True),
    dirs=st.lists(st.booleans(), min_size=6, max_size=6),
)
@settings(max_examples=1500, deadline=None)
def test_prefilter_never_misses_a_matching_entry(
    rules: list[list[str]], rel: list[str], names: list[str], dirs: list[bool]
) -> None:
    layers = []
    for depth, patterns in enumerate(rules):
        parsed = ignore.parse("\n".join(patterns).encode(), strip=min(depth, len(rel)))
        if parsed is not None:
            layers.append(parsed)
    names = sorted(names)
    isdir = dirs[: len(names)]
    bases = [layer.base_of(tuple(rel)) for layer in layers]
    found = set(ignore.candidates(layers, bases, names, isdir))
    for i, name in enumerate(names):
        tail = name + "/" if isdir[i] else name
        if any(
            layer.decide(base + tail) is not None for layer, base in zip(layers, bases, strict=True)
        ):
            assert i in found, (rules, rel, name, isdir[i])


def test_prefilter_examples() -> None:
    root = ignore.parse(b"build/\n*.log\n/dist\n!keep.log\ndoc/*.txt\n")
    assert root is not None
    names = ["a.py", "build", "dist", "doc", "keep.log", "x.log"]
    isdir = [False, True, True, True, False, False]
    assert ignore.candidates([root], [""], names, isdir) == [1, 2, 4, 5]
    assert ignore.candidates([root], ["src/"], ["a.py", "b.txt"], [False, False]) == []
    assert ignore.candidates([root], ["doc/"], ["a.py", "b.txt"], [False, False]) == [1]


@given(
    rules=st.lists(st.lists(_PATTERN, min_size=1, max_size=4), min_size=1, max_size=3),
    rel=_DIR,
    child=st.sampled_from(["a", "b", "build", "log", "a.log", "x\ny"]),
    names=st.lists(_NAME, min_size=1, max_size=6, unique=True),
    dirs=st.lists(st.booleans(), min_size=6, max_size=6),
)
@settings(max_examples=1500, deadline=None)
def test_a_directory_its_parent_cleared_needs_no_base_check(
    rules: list[list[str]], rel: list[str], child: str, names: list[str], dirs: list[bool]
) -> None:
    """The walk skips the base checks of a directory that was not among its parent's
    candidates (for the layers of the parent): the answer must be the same."""
    layers = []
    for depth, patterns in enumerate(rules):
        parsed = ignore.parse("\n".join(patterns).encode(), strip=min(depth, len(rel)))
        if parsed is not None:
            layers.append(parsed)
    parent_bases = [layer.base_of(tuple(rel)) for layer in layers]
    if ignore.candidates(layers, parent_bases, [child], [True]):
        return  # the parent named it: the walk checks its bases
    below = (*rel, child)
    bases = [layer.base_of(below) for layer in layers]
    names = sorted(names)
    isdir = dirs[: len(names)]
    assert ignore.candidates(layers, bases, names, isdir, bases_clear=True) == ignore.candidates(
        layers, bases, names, isdir
    ), (rules, rel, child, names)
