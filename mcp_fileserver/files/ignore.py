"""`.gitignore` rules for walks, as git and ripgrep apply them.

Each `.gitignore` holds patterns relative to its own directory; a deeper file overrides
a shallower one, and within a file the last matching pattern wins (`!` re-includes). An
ignored directory is not entered, so nothing beneath it can be re-included (git's rule).
Patterns are parsed by `pathspec` (GitIgnoreSpec semantics); each file's patterns are
also joined into one regex, so the common case (no pattern matches) costs one match.
Only `.gitignore` files are read: not `.git/info/exclude` nor a global excludes file.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass

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
    joined = re.compile("|".join(f"(?:{r.pattern})" for r, _ in rules))
    return IgnoreFile(lead=lead, strip=strip, any_match=joined, rules=tuple(rules))


def is_ignored(layers: Sequence[IgnoreFile], bases: Sequence[str], name: str, is_dir: bool) -> bool:
    """Whether the deepest `.gitignore` with an opinion on `name` (in the directory whose
    path each layer sees as `bases[i]`) ignores it; directories carry a trailing slash."""
    tail = name + "/" if is_dir else name
    for i in range(len(layers) - 1, -1, -1):
        verdict = layers[i].decide(bases[i] + tail)
        if verdict is not None:
            return verdict
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
