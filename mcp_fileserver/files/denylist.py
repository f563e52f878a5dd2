"""Sensitive names that are refused even inside an allowed root.

One place decides what is sensitive. A rule says what a file *is* (a dotenv file, an
SSH key, a password store), never a substring that ordinary source code also has:
`secrets.py` is Python (the standard library has one), a folder named `credentials/`
in a Python tree holds code, and both stay visible.

Rules are shell globs, matched case-insensitively against each component of a path
relative to its root, with the syntax of `.gitignore`:

- `name` matches a file or a directory of that name (so `.env` refuses `.env/x` too);
- `name/` matches directories only (`.ssh/` refuses everything beneath any `.ssh`);
- `!name` is an exception: it makes visible what an earlier rule refused;
- the last rule that matches decides, so `[files] extra_deny_patterns` (appended
  after the built-in list) can refuse more or make a built-in refusal an exception.
  `[files] deny_patterns` replaces the list.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from itertools import compress, repeat
from typing import Any

# Source code and documentation are never secret stores: a rule such as `secrets.*`
# or `id_rsa*` names a key or a config file, not `secrets.py` or `id_rsa_test.go`.
SOURCE_EXTENSIONS: tuple[str, ...] = (
    *("py", "pyi", "pyx", "ipynb", "js", "jsx", "mjs", "cjs", "ts", "tsx", "vue", "svelte"),
    *("go", "rs", "java", "kt", "kts", "scala", "groovy", "rb", "php", "pl", "pm", "lua"),
    *("c", "h", "cc", "cpp", "cxx", "hpp", "cs", "fs", "swift", "m", "mm", "dart", "r"),
    *("ex", "exs", "erl", "hs", "ml", "clj", "jl", "zig", "nim", "sql", "proto"),
    *("md", "rst", "adoc", "html", "css", "scss"),
)

DEFAULT_DENY_PATTERNS: tuple[str, ...] = (
    # Environment files
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    # Credential files of well-known tools
    ".netrc",
    "_netrc",
    ".pgpass",
    ".my.cnf",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".dockercfg",
    ".boto",
    ".s3cfg",
    ".htpasswd",
    "credentials",  # ~/.aws/credentials and its copies
    "credentials.*",  # credentials.json (Google), credentials.db (gcloud)...
    "*.credentials",
    "application_default_credentials.json",
    "client_secret*.json",
    "secrets.*",  # secrets.json, secrets.yaml, secrets.toml...
    "kubeconfig",
    "*.kubeconfig",
    # Private keys and key stores
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    # Password databases and keyrings
    "*.kdbx",
    "*.kdb",
    "*.keychain",
    "*.keychain-db",
    "shadow",
    "gshadow",
    # What is named like the above but is not a secret store: any directory (a folder
    # named `credentials/` or `secrets.d/` holds code or config, and is judged by what
    # it contains), templates meant to be committed, and source code or documentation.
    "!*/",
    "!.env.example",
    "!.env.sample",
    "!.env.template",
    "!.env.dist",
    *(f"!*.{ext}" for ext in SOURCE_EXTENSIONS),
    # Folders that are credential stores as a whole (directories only)
    ".ssh/",
    ".env/",
    ".aws/",
    ".azure/",
    ".gnupg/",
    ".kube/",
    ".docker/",
    ".password-store/",
)


_GLOB_CHARS = frozenset("*?[")


class _Globs:
    """Whether a casefolded name matches any of a set of globs, fast.

    One regex alternation of all the patterns costs a backtracking pass per `*.ext`
    pattern per name, so patterns are sorted once: plain names go in a set, `*suffix`
    and `prefix*` into `str.endswith` / `str.startswith` tuples, and only the rest
    (`?`, `[...]`, inner `*`) into the regex. tests/files/test_denylist.py holds the
    result equal to `fnmatch`."""

    def __init__(self, patterns: Iterable[str]) -> None:
        exact: list[str] = []
        prefixes: list[str] = []
        suffixes: list[str] = []
        other: list[str] = []
        for pattern in patterns:
            if _GLOB_CHARS.isdisjoint(pattern):
                exact.append(pattern)
            elif pattern[:1] == "*" and _GLOB_CHARS.isdisjoint(pattern[1:]):
                suffixes.append(pattern[1:])
            elif pattern[-1:] == "*" and _GLOB_CHARS.isdisjoint(pattern[:-1]):
                prefixes.append(pattern[:-1])
            else:
                other.append(pattern)
        self.empty = not (exact or prefixes or suffixes or other)
        self._exact = frozenset(exact)
        # For `any`, where an empty string is a gap between separators, not a name.
        self._exact_names = self._exact - {""}
        self._prefixes = tuple(prefixes)
        self._suffixes = tuple(suffixes)
        self._regex = re.compile("|".join(map(fnmatch.translate, other))) if other else None
        # The same globs over a whole directory at once: its names joined by NUL (which
        # no name holds), so one search answers "may any name match?".
        at_start = [f"{_joined_glob(p)}(?=\0)" for p in other]
        if exact:
            at_start.append(f"{_trie(exact)}(?=\0)")
        if prefixes:
            at_start.append(_trie(prefixes))
        alternatives = [f"\0(?:{'|'.join(at_start)})"] if at_start else []
        if suffixes:  # `*.pem`: wherever a name ends so, whatever precedes it
            alternatives.append(f"{_trie(suffixes)}(?=\0)")
        self._joined = re.compile("|".join(alternatives)) if alternatives else None

    def match(self, name: str) -> bool:
        return (
            name in self._exact
            or name.endswith(self._suffixes)
            or name.startswith(self._prefixes)
            or (self._regex is not None and self._regex.match(name) is not None)
        )

    def may_match_any(self, joined: str) -> bool:
        """Whether some name of `joined` (NUL-separated, with a NUL at each end) may
        match: False means none does (one C-level search per directory)."""
        return self._joined is not None and self._joined.search(joined) is not None

    def hits(self, folded: list[str]) -> set[int]:
        """Indexes of the names `match` accepts, found by C-level passes over the whole
        list (no Python call per name): a walk asks this once per directory."""
        index = range(len(folded))
        found: set[int] = set()
        if self._exact:
            found.update(compress(index, map(self._exact.__contains__, folded)))
        if self._suffixes:
            found.update(compress(index, map(str.endswith, folded, repeat(self._suffixes))))
        if self._prefixes:
            found.update(compress(index, map(str.startswith, folded, repeat(self._prefixes))))
        if self._regex is not None:
            found.update(compress(index, map(self._regex.match, folded)))
        return found

    def any(self, names: list[str]) -> bool:
        """`match` over several names in one loop (empty ones never match): the
        monitor runs it on every string argument of every call."""
        if not self._exact_names.isdisjoint(names):
            return True
        suffixes, prefixes, regex = self._suffixes, self._prefixes, self._regex
        for name in names:
            if name and (
                name.endswith(suffixes)
                or name.startswith(prefixes)
                or (regex is not None and regex.match(name) is not None)
            ):
                return True
        return False


class DenyList:
    """The rules above, compiled. Every entry a walk lists asks `denies_name`, so the
    common case (no refusing rule matches) is one fast `_Globs` check; only a name that
    some refusing rule matches is checked rule by rule for a later exception."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: tuple[str, ...] = tuple(patterns)
        rules: list[tuple[re.Pattern[str], bool, bool]] = []  # (glob, exception, dirs only)
        refuse_files: list[str] = []
        refuse_dirs: list[str] = []
        for raw in self.patterns:
            exception = raw.startswith("!")
            glob = raw[1:] if exception else raw
            dirs_only = glob.endswith("/")
            glob = glob.rstrip("/").casefold()
            if not glob and dirs_only:
                continue  # "/" alone names nothing
            rules.append((re.compile(fnmatch.translate(glob)), exception, dirs_only))
            if not exception:
                refuse_dirs.append(glob)
                if not dirs_only:
                    refuse_files.append(glob)
        self._rules = tuple(reversed(rules))  # the last matching rule decides
        self._exceptions = any(exception for _, exception, _ in rules)
        self._files = _Globs(refuse_files)
        self._dirs = _Globs(refuse_dirs)  # every refusing rule can match a directory

    def _decide(self, folded: str, is_dir: bool) -> bool:
        """The verdict of the last rule matching a name some refusing rule matched."""
        if not self._exceptions:
            return True
        for glob, exception, dirs_only in self._rules:
            if (is_dir or not dirs_only) and glob.match(folded) is not None:
                return not exception
        return False

    def denies_name(self, name: str, *, is_dir: bool) -> bool:
        """Whether one path component (a directory or not: rules may differ) is sensitive."""
        folded = name.casefold()
        if not (self._dirs if is_dir else self._files).match(folded):
            return False
        return self._decide(folded, is_dir)

    def candidates(self, names: list[str]) -> list[int]:
        """Indexes of the names of one directory that some refusing rule matches (as a
        file or a directory), in order: only these need `denies_name`, so a walk checks a
        whole directory in a few C-level passes."""
        if self._dirs.empty:
            return []
        joined = "\0" + "\0".join(names).casefold() + "\0"  # a name holds no NUL
        if not self._dirs.may_match_any(joined):
            return []
        return sorted(self._dirs.hits(joined[1:-1].split("\0")))

    def denies_parts(self, parts: Sequence[str], *, last_is_dir: bool) -> bool:
        """Whether any component of a root-relative path is sensitive: every component
        but the last is a directory; `last_is_dir` says what the last one is."""
        if not parts:
            return False
        folded = [part.casefold() for part in parts]
        if not self._dirs.any(folded):
            return False
        last = len(folded) - 1
        return any(
            name and self._check(name, i < last or last_is_dir) for i, name in enumerate(folded)
        )

    def denies_components(self, text: str) -> bool:
        """Whether any `/`- or `\\`-separated component of `text` is sensitive: the
        monitor's check of every string argument, so folded once and split once. What the
        last component is, is unknown here: it is read as a file name, what a probe names
        (`/etc/shadow`, `keys/id_rsa`); the components before it are directories."""
        if not self.patterns:
            return False
        folded = [name for name in text.casefold().replace("\\", "/").split("/") if name]
        if not folded or not self._dirs.any(folded):
            return False
        last = len(folded) - 1
        return any(self._check(name, i < last) for i, name in enumerate(folded))

    def _check(self, folded: str, is_dir: bool) -> bool:
        if not (self._dirs if is_dir else self._files).match(folded):
            return False
        return self._decide(folded, is_dir)


def _trie(words: Iterable[str]) -> str:
    """A regex matching exactly `words`, factored by common prefixes, so a search tries
    one branch per character instead of every word at every position."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else f"(?:{'|'.join(alts)})"
        return f"(?:{body})?" if "" in node else body

    return emit(root)


def _joined_glob(pattern: str) -> str:
    """A glob as a regex that never crosses a NUL (names joined by NUL): matches at least
    what `fnmatch` does on each name alone (exact hits are decided name by name)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append("[^\0]*")
        elif c == "?":
            out.append("[^\0]")
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")
                continue
            # Any character class, stated loosely: a superset is enough here.
            out.append("[^\0]")
            i = j + 1
        else:
            out.append(re.escape(c))
    return "".join(out)


def effective_patterns(replace: Sequence[str] | None, extend: Sequence[str]) -> tuple[str, ...]:
    base = DEFAULT_DENY_PATTERNS if replace is None else tuple(replace)
    return tuple(dict.fromkeys((*base, *extend)))
