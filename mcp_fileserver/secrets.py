"""`${VAR}` resolution, and the set of secret values that must never be shown.

A configuration value may be `${VAR}` or contain it (`postgresql://app:${PGPASS}@db/x`).
`VAR` is looked up, in order, in the process environment, the env file, and a file named
`VAR` in the secrets directory (`/run/secrets` by default, as Docker and Kubernetes mount
them). Every value resolved this way is remembered by the `SecretStore`, and `mask()`
replaces each of them wherever it appears, even inside a longer string.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from mcp_fileserver.errors import ConfigError

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MASK = "***"
# Values shorter than this are not masked inside longer strings: masking "a" everywhere
# would destroy every message while protecting nothing.
MIN_MASKED_LENGTH = 4


class SecretStore:
    """Resolves `${VAR}` references and remembers every value it resolved."""

    def __init__(
        self,
        environ: Mapping[str, str],
        env_file: Mapping[str, str | None] | None = None,
        secrets_dir: Path | None = Path("/run/secrets"),
    ) -> None:
        self._environ = dict(environ)
        self._env_file = {k: v for k, v in (env_file or {}).items() if v is not None}
        self._secrets_dir = secrets_dir
        self._values: set[str] = set()
        self._longest_first: tuple[str, ...] = ()  # what `mask` replaces, in order

    def lookup(self, name: str) -> str | None:
        """The value of `name` from the environment, the env file or a secret file."""
        if name in self._environ:
            return self._environ[name]
        if name in self._env_file:
            return self._env_file[name]
        if self._secrets_dir is not None:
            candidate = self._secrets_dir / name
            try:
                return candidate.read_text(encoding="utf-8").rstrip("\r\n")
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError as exc:
                raise ConfigError(
                    f"secret {name}: cannot read {candidate}: {exc.strerror}"
                ) from None
        return None

    def resolve(self, value: str, *, where: str, secret: bool = True) -> str:
        """Replace every `${VAR}` in `value`; the resolved values become secrets unless
        `secret` is false (a path or a setting referenced for convenience: treating it
        as a secret would mask it everywhere and make every file holding it sensitive)."""

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            resolved = self.lookup(name)
            if resolved is None:
                raise ConfigError(
                    f"{where}: ${{{name}}} is not set (define {name} in the environment, "
                    f"the env file, or {self._secrets_dir or 'a secrets directory'}/{name})"
                )
            if secret:
                self.add(resolved)
            return resolved

        return REFERENCE.sub(substitute, value)

    def add(self, value: str) -> None:
        """Treat `value` as secret from now on."""
        if value and value not in self._values:
            self._values.add(value)
            # Longest first, so a secret that contains another is masked whole.
            self._longest_first = tuple(sorted(self._values, key=len, reverse=True))

    def add_all(self, values: Iterable[str]) -> None:
        for value in values:
            self.add(value)

    @property
    def values(self) -> frozenset[str]:
        return frozenset(self._values)

    @property
    def empty(self) -> bool:
        """No secret known: nothing to mask (cheaper than building `values`)."""
        return not self._longest_first

    def mask(self, text: str) -> str:
        """`text` with every known secret value replaced by `***`."""
        for secret in self._longest_first:
            if len(secret) >= MIN_MASKED_LENGTH or text == secret:
                text = text.replace(secret, MASK)
        return text


# -- the one rule for names that denote a credential (config keys, URL query keys,
#    tool arguments in audit records) ---------------------------------------------------

_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
SENSITIVE_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "pass",
        "secret",
        "secrets",
        "token",
        "tokens",
        "key",
        "keys",
        "apikey",
        "authorization",
        "auth",
        "credential",
        "credentials",
        "cookie",
        "cookies",
        "session",
        "bearer",
        "signature",
        "otp",
        "private",
        "jwt",
        "dsn",
    }
)
_SENSITIVE_FRAGMENTS = ("password", "passwd", "secret", "token", "apikey", "credential")


@lru_cache(maxsize=1024)  # names repeat on every call
def is_sensitive_key(key: str) -> bool:
    """Whether an argument name denotes a credential: `password`, `api_key`,
    `X-Auth-Token`, `clientSecret`, `private_key`... but not `keyword` or `monkey`."""
    words = {w.lower() for w in _WORDS.findall(key)}
    if words & SENSITIVE_WORDS:
        return True
    squashed = re.sub(r"[^a-z0-9]", "", key.lower())
    return any(fragment in squashed for fragment in _SENSITIVE_FRAGMENTS)


def mask_deep(value: Any, mask: Callable[[str], str]) -> Any:
    """`value` (JSON-like data) with `mask` applied to every string, keys included."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask(str(k)): mask_deep(v, mask) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_deep(v, mask) for v in value]
    return value


def has_reference(value: str) -> bool:
    return REFERENCE.search(value) is not None


def is_pure_reference(value: str) -> bool:
    return REFERENCE.fullmatch(value) is not None


def process_environ() -> dict[str, str]:
    return dict(os.environ)
