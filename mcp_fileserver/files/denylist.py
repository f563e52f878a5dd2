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


class DenyList:
    """Matches path components against glob patterns, case-insensitively."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: tuple[str, ...] = tuple(patterns)
        if self.patterns:
            joined = "|".join(fnmatch.translate(p.casefold()) for p in self.patterns)
            self._regex: re.Pattern[str] | None = re.compile(joined)
        else:
            self._regex = None

    def denies_name(self, name: str) -> bool:
        """Whether one path component is sensitive."""
        return self._regex is not None and self._regex.match(name.casefold()) is not None

    def denies_parts(self, parts: Sequence[str]) -> bool:
        """Whether any component of a root-relative path is sensitive."""
        return any(self.denies_name(part) for part in parts)

    def denies_components(self, text: str) -> bool:
        """Whether any `/`- or `\\`-separated component of `text` is sensitive: the
        monitor's check of every string argument, so folded once and split once."""
        if self._regex is None:
            return False
        parts = text.casefold().replace("\\", "/").split("/")
        return any(map(self._regex.match, filter(None, parts)))


def effective_patterns(replace: Sequence[str] | None, extend: Sequence[str]) -> tuple[str, ...]:
    base = DEFAULT_DENY_PATTERNS if replace is None else tuple(replace)
    return tuple(dict.fromkeys((*base, *extend)))
