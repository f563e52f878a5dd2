"""`.gitignore` rules for walks, as git and ripgrep apply them.

Each `.gitignore` holds patterns relative to its own directory; a deeper file overrides
a shallower one, and within a file the last matching pattern wins (`!` re-includes). An
ignored directory is not entered, so nothing beneath it can be re-included (git's rule).
Patterns are parsed by `pathspec` (GitIgnoreSpec semantics); each file's patterns are
also joined into one regex, so the common case (no pattern matches) costs one match.
Only `.gitignore` files are read: not `.git/info/exclude` nor a global excludes file.
"""

from __future__ import annotations

import operator
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress, repeat

from pathspec.patterns.gitignore import GitIgnorePatternError
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

IGNORE_FILE = ".gitignore"
GIT_DIR = ".git"
MAX_IGNORE_FILE_BYTES = 1 << 20  # a larger .gitignore is read only this far


@dataclass(frozen=True)
class IgnoreFile:
    """The patterns of one `.gitignore`.

    A path is tested as `lead + the entry's path below the walk start, minus the first
    `strip` components`, i.e. relative to the directory holding the file; directories
    carry a trailing slash.
    """

    lead: str
    strip: int
    any_match: re.Pattern[str]
    # The prefilter of `candidates` (a few C-level passes per directory): patterns that
    # only look at an entry's own name, split into plain names (`build/`: a set), names
    # with a leading `*` (`*.log`: one unanchored search, which a literal start makes
    # fast) and the rest, over names joined by newlines; the others over whole paths
    # joined by newlines.
    name_set: frozenset[str]
    name_tails: re.Pattern[str] | None
    name_lines: re.Pattern[str] | None
    path_lines: re.Pattern[str] | None
    rules: tuple[tuple[re.Pattern[str], bool], ...]  # (regex, ignores) in file order

    def base_of(self, dir_rel: Sequence[str]) -> str:
        """The path of the directory `dir_rel` (below the walk start) as this file sees
        it, ending in `/` unless empty: computed once per directory, not per entry."""
        inner = "/".join(dir_rel[self.strip :])
        path = self.lead + inner
        return path + "/" if inner else path

    def decide(self, path: str) -> bool | None:
        """True: ignored; False: re-included by `!`; None: no pattern of this file matches."""
        if self.any_match.match(path) is None:
            return None
        for regex, ignores in reversed(self.rules):
            if regex.match(path) is not None:
                return ignores
        return None


def parse(data: bytes, *, lead: str = "", strip: int = 0) -> IgnoreFile | None:
    """The rules of one `.gitignore` file's bytes; None when it has none."""
    rules: list[tuple[re.Pattern[str], bool]] = []
    for raw in data.decode("utf-8", errors="surrogateescape").splitlines():
        try:
            pattern = GitIgnoreSpecPattern(raw)
        except (GitIgnorePatternError, ValueError):
            continue  # git ignores a line it cannot parse
        if pattern.include is None or pattern.regex is None:
            continue  # blank line or comment
        source = pattern.regex.pattern
        # pathspec names a group; several of its patterns cannot share one regex with it.
        source = re.sub(r"\(\?P<[A-Za-z_]\w*>", "(?:", source)
        rules.append((re.compile(source), bool(pattern.include)))
    if not rules:
        return None
    joined = "|".join(f"(?:{r.pattern})" for r, _ in rules)
    by_name: list[str] = []
    by_path: list[str] = []
    plain: set[str] = set()
    tails: list[str] = []
    for regex, _ in rules:
        rest = _name_only(regex.pattern)
        if rest is None:
            by_path.append(regex.pattern)
        elif (name := _plain_name(rest)) is not None:
            plain.add(name)
        elif rest.startswith(_STAR) and not rest.startswith(_STAR, len(_STAR)):
            tails.append(rest[len(_STAR) :])
        else:
            by_name.append(rest)
    return IgnoreFile(
        lead=lead,
        strip=strip,
        any_match=re.compile(joined),
        name_set=frozenset(plain),
        name_tails=_lines(_name_source(tails)) if tails else None,
        name_lines=_name_lines(by_name) if by_name else None,
        path_lines=_lines("|".join(f"(?:{p})" for p in by_path)) if by_path else None,
        rules=tuple(rules),
    )


_ANY_DEPTH = "^(?:.+/)?"
_DIR_MARKS = ("(?:(?:/)|$)", "(?:/)")


def _name_only(source: str) -> str | None:
    """For a pattern that matches an entry by its last component alone (pathspec's
    `^(?:.+/)?NAME` with NAME free of `/`, `.` wildcards and classes), NAME with its end
    mark; else None."""
    if not source.startswith(_ANY_DEPTH):
        return None
    rest = source[len(_ANY_DEPTH) :]
    core = rest
    for mark in _DIR_MARKS:
        if core.endswith(mark):
            core = core[: -len(mark)]
            break
    core = core.replace("\\\\", "").replace("[^/]", "")  # escaped backslashes, `?`, `*`
    # A `.` wildcard or a character class (`[!a]` matches `/` too) may reach past the name.
    if "/" in core or re.search(r"(?<!\\)[.[]", core):
        return None
    return rest


def _name_lines(rests: list[str]) -> re.Pattern[str]:
    """Name-only patterns over names joined by newlines: a wildcard stops at a newline
    (linear time), and each may match as a directory (`/` or the line's end), so one
    search covers files and directories."""
    return _lines("^(?:" + _name_source(rests) + ")")


def _name_source(rests: list[str]) -> str:
    source = "|".join(rests).replace("[^/]", "[^/\n]")
    return source.replace("(?:(?:/)|$)", "(?:/|$)").replace("(?:/)", "(?:/|$)")


_STAR = "[^/]*"  # a leading `*`: `^[^/\n]*X` finds a line iff an unanchored X does
_END_MARKS = ("(?:(?:/)|$)", "(?:/)", "$")
_PLAIN = re.compile(r"(?:\\.|[^\\.^$*+?{}\[\]|()])+")


def _plain_name(rest: str) -> str | None:
    """The name a name-only pattern matches exactly (`build(?:/)`: `build`), or None."""
    for mark in _END_MARKS:
        if rest.endswith(mark):
            core = rest[: -len(mark)]
            if _PLAIN.fullmatch(core):
                return re.sub(r"\\(.)", r"\1", core)
            return None
    return None


def _lines(source: str) -> re.Pattern[str]:
    return re.compile(source, re.MULTILINE)


def is_ignored(layers: Sequence[IgnoreFile], bases: Sequence[str], name: str, is_dir: bool) -> bool:
    """Whether the deepest `.gitignore` with an opinion on `name` (in the directory whose
    path each layer sees as `bases[i]`) ignores it; directories carry a trailing slash."""
    tail = name + "/" if is_dir else name
    for i in range(len(layers) - 1, -1, -1):
        verdict = layers[i].decide(bases[i] + tail)
        if verdict is not None:
            return verdict
    return False


def candidates(
    layers: Sequence[IgnoreFile],
    bases: Sequence[str],
    names: list[str],
    isdir: list[bool],
    *,
    bases_clear: bool = False,
) -> list[int]:
    """Indexes of the entries of one directory that some pattern of some layer matches,
    in order: only these need `is_ignored`.

    First one search per layer over the directory's paths joined by newlines, each name
    tried with and without a trailing slash: pathspec's patterns match within a line
    (`.` stops at a newline, `^`/`$` are line ends), so no hit there means no pattern
    matches any entry, the common case. A name holding a newline skips that test.
    `bases_clear`: no layer matches any base (the walk knows it when this directory was
    not among its parent's candidates, whose paths are these bases), so none is tried."""
    plain = "\n".join(names)
    if plain.count("\n") == len(names) - 1:
        for i, layer in enumerate(layers):
            if _may_match(layer, "" if bases_clear else bases[i], bases[i], plain, names):
                break
        else:
            return []
    tails = list(names)
    for i in compress(range(len(names)), isdir):
        tails[i] += "/"
    index = range(len(names))
    found: set[int] = set()
    for layer, base in zip(layers, bases, strict=True):
        paths = map(operator.add, repeat(base), tails) if base else tails
        found.update(compress(index, map(layer.any_match.match, paths)))
    return sorted(found)


def _may_match(layer: IgnoreFile, check: str, base: str, plain: str, names: list[str]) -> bool:
    """Whether some pattern of `layer` may match some entry of the directory `base`
    (names joined by newlines in `plain`, each tried with and without a trailing slash).
    A match that ends within `base` is a match of `base` alone: tried on `check` (the
    base, or empty when the caller knows no pattern matches it)."""
    if check and layer.any_match.match(check):
        return True
    if layer.name_set and not layer.name_set.isdisjoint(names):
        return True
    if layer.name_tails is not None and layer.name_tails.search(plain):
        return True
    if layer.name_lines is not None and layer.name_lines.search(plain):
        return True
    if layer.path_lines is not None:
        sep = "\n" + base
        search = layer.path_lines.search
        return bool(search(base + sep.join(names)) or search(base + ("/" + sep).join(names) + "/"))
    return False


def read_ignore_file(
    dir_fd: int, flags: int, *, lead: str = "", strip: int = 0
) -> IgnoreFile | None:
    """Parse the `.gitignore` in the directory `dir_fd`, if it is a readable regular file."""
    try:
        fd = os.open(IGNORE_FILE, flags | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        if not _is_regular(fd):
            return None
        data = os.pread(fd, MAX_IGNORE_FILE_BYTES, 0)
    except OSError:
        return None
    finally:
        os.close(fd)
    return parse(data, lead=lead, strip=strip)


def _is_regular(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)
