"""Sensitive names that are refused even inside an allowed root.

One place decides what is sensitive. A pattern is a shell-style glob matched
case-insensitively against every component of a path relative to its root, so `.ssh`
blocks `.ssh/config` and `projects/.SSH/id_rsa` alike. The list is configurable:
`[files] deny_patterns` replaces it, `extra_deny_patterns` extends it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence

DEFAULT_DENY_PATTERNS: tuple[str, ...] = (
    # Environment and credential files
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".my.cnf",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".dockercfg",
    "credentials",
    "credentials.json",
    "*.credentials",
    "secrets.*",
    ".htpasswd",
    # Private keys and certificates stores
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
    # Credential folders
    ".ssh",
    ".aws",
    ".azure",
    ".gnupg",
    ".kube",
    ".docker",
    ".password-store",
    # Password databases and keyrings
    "*.kdbx",
    "*.kdb",
    "*.keychain",
    "*.keychain-db",
    "shadow",
    "gshadow",
)


_GLOB_CHARS = frozenset("*?[")


class DenyList:
    """Matches path components against glob patterns, case-insensitively.

    Every component of every path a tool touches is checked, and so is every string
    argument the monitor scans. One regex alternation of all the patterns costs a
    backtracking pass per `*.ext` pattern per component, so patterns are sorted once:
    plain names go in a set, `*suffix` and `prefix*` into `str.endswith` /
    `str.startswith` tuples, and only the rest (`?`, `[...]`, inner `*`) into the regex.
    tests/files/test_denylist.py holds the result equal to `fnmatch` on every pattern."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: tuple[str, ...] = tuple(patterns)
        exact: set[str] = set()
        prefixes: list[str] = []
        suffixes: list[str] = []
        other: list[str] = []
        for pattern in (p.casefold() for p in self.patterns):
            if _GLOB_CHARS.isdisjoint(pattern):
                exact.add(pattern)
            elif pattern[:1] == "*" and _GLOB_CHARS.isdisjoint(pattern[1:]):
                suffixes.append(pattern[1:])
            elif pattern[-1:] == "*" and _GLOB_CHARS.isdisjoint(pattern[:-1]):
                prefixes.append(pattern[:-1])
            else:
                other.append(pattern)
        self._exact = frozenset(exact)
        # For `_denies_any`, where an empty string is a gap between separators, not a name.
        self._exact_names = self._exact - {""}
        self._prefixes = tuple(prefixes)
        self._suffixes = tuple(suffixes)
        self._regex = re.compile("|".join(map(fnmatch.translate, other))) if other else None

    def _denies_folded(self, name: str) -> bool:
        # `_denies_any` asks the same per component, inlined for speed; a name checked on
        # its own stays this direct (routing it through `_denies_any` cost 140 ns per
        # name, paid on every entry a search walks). tests/files/test_denylist.py holds
        # both equal to fnmatch.
        return (
            name in self._exact
            or name.endswith(self._suffixes)
            or name.startswith(self._prefixes)
            or (self._regex is not None and self._regex.match(name) is not None)
        )

    def denies_name(self, name: str) -> bool:
        """Whether one path component is sensitive."""
        return self._denies_folded(name.casefold())

    def denies_parts(self, parts: Sequence[str]) -> bool:
        """Whether any component of a root-relative path is sensitive."""
        return self._denies_any([part.casefold() for part in parts])

    def denies_components(self, text: str) -> bool:
        """Whether any `/`- or `\\`-separated component of `text` is sensitive: the
        monitor's check of every string argument, so folded once and split once."""
        if not self.patterns:
            return False
        return self._denies_any(text.casefold().replace("\\", "/").split("/"))

    def _denies_any(self, folded: list[str]) -> bool:
        """`_denies_folded` over several components in one loop, without a call per
        component (it runs on every string argument of every call); empty ones never
        match. One set operation answers the exact names for all of them."""
        if not self._exact_names.isdisjoint(folded):
            return True
        suffixes, prefixes, regex = self._suffixes, self._prefixes, self._regex
        for name in folded:
            if name and (
                name.endswith(suffixes)
                or name.startswith(prefixes)
                or (regex is not None and regex.match(name) is not None)
            ):
                return True
        return False


def effective_patterns(replace: Sequence[str] | None, extend: Sequence[str]) -> tuple[str, ...]:
    base = DEFAULT_DENY_PATTERNS if replace is None else tuple(replace)
    return tuple(dict.fromkeys((*base, *extend)))
