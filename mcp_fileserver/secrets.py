"""`${VAR}` resolution, and the set of secret values that must never be shown.

A configuration value may be `${VAR}` or contain it (`postgresql://app:${PGPASS}@db/x`).
`VAR` is looked up, first match wins, in (`PRECEDENCE`):
1. the process environment;
2. the env file (`.env` beside the config file, or `--env-file`);
3. a file named `VAR` in the systemd credentials directory (`$CREDENTIALS_DIRECTORY`,
   set by `LoadCredential=` / `LoadCredentialEncrypted=`);
4. a file named `VAR` in the secrets directory (`/run/secrets` by default, as Docker and
   Kubernetes mount them);
5. the age-encrypted secrets file (secrets_age.py), decrypted in memory at startup.
Every value resolved this way is remembered by the `SecretStore` (every value of the
encrypted file is, resolved or not), and `mask()` replaces each of them wherever it
appears, even inside a longer string. `describe()` says which source each name came
from, never a value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pydantic_core

from mcp_fileserver.errors import ConfigError

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MASK = "***"
# Values shorter than this are not masked inside longer strings: masking "a" everywhere
# would destroy every message while protecting nothing.
MIN_MASKED_LENGTH = 4


@dataclass(frozen=True)
class EncryptedSource:
    """The decrypted secrets file as a lookup source: where it is, how it was opened."""

    path: Path
    key_source: str
    values: Mapping[str, str] = field(repr=False)
    # The key's own text (identity lines, passphrase): masked like the values.
    key_texts: tuple[str, ...] = field(default=(), repr=False)


class SecretStore:
    """Resolves `${VAR}` references and remembers every value it resolved."""

    def __init__(
        self,
        environ: Mapping[str, str],
        env_file: Mapping[str, str | None] | None = None,
        secrets_dir: Path | None = Path("/run/secrets"),
        *,
        credentials_dir: Path | None = None,
        encrypted: EncryptedSource | None = None,
    ) -> None:
        self._environ = dict(environ)
        self._env_file = {k: v for k, v in (env_file or {}).items() if v is not None}
        self._secrets_dir = secrets_dir
        self._credentials_dir = credentials_dir
        self._encrypted = encrypted
        self._values: set[str] = set()
        self._longest_first: tuple[str, ...] = ()  # what `mask` replaces, in order
        self._resolved_from: dict[str, str] = {}  # name -> source, for `describe`
        if encrypted is not None:
            self.add_all(encrypted.values.values())
            self.add_all(encrypted.key_texts)

    def lookup(self, name: str) -> str | None:
        """The value of `name` from the first source (`PRECEDENCE`) that defines it."""
        found = self._find(name)
        return found[0] if found else None

    def _find(self, name: str) -> tuple[str, str] | None:
        """(value, source) from the first source that defines `name`."""
        if name in self._environ:
            return self._environ[name], "environment"
        if name in self._env_file:
            return self._env_file[name], "env file"
        for folder, label in (
            (self._credentials_dir, "systemd credentials directory"),
            (self._secrets_dir, "secrets directory"),
        ):
            if folder is None:
                continue
            candidate = folder / name
            try:
                return candidate.read_text(encoding="utf-8").rstrip("\r\n"), f"{label} {folder}"
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise ConfigError(
                    f"secret {name}: cannot read {candidate}: {exc.strerror}"
                ) from None
        if self._encrypted is not None and name in self._encrypted.values:
            return self._encrypted.values[name], f"encrypted file {self._encrypted.path}"
        return None

    def sources(self) -> list[str]:
        """The sources consulted, in precedence order (what `check` shows)."""
        shown = ["environment", "env file"]
        if self._credentials_dir is not None:
            shown.append(f"systemd credentials directory {self._credentials_dir}")
        if self._secrets_dir is not None:
            shown.append(f"secrets directory {self._secrets_dir}")
        if self._encrypted is not None:
            shown.append(f"encrypted file {self._encrypted.path}")
        return shown

    def describe(self) -> dict[str, Any]:
        """Names and sources, never values: for `check` and the audit start record."""
        data: dict[str, Any] = {
            "precedence": self.sources(),
            "resolved": dict(sorted(self._resolved_from.items())),
        }
        if self._encrypted is not None:
            data["encrypted_file"] = {
                "path": str(self._encrypted.path),
                "key": self._encrypted.key_source,
                "names": sorted(self._encrypted.values),
            }
        return data

    def resolve(self, value: str, *, where: str, secret: bool = True) -> str:
        """Replace every `${VAR}` in `value`; the resolved values become secrets unless
        `secret` is false (a path or a setting referenced for convenience: treating it
        as a secret would mask it everywhere and make every file holding it sensitive)."""

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            found = self._find(name)
            if found is None:
                encrypted = ", or the encrypted secrets file" if self._encrypted else ""
                raise ConfigError(
                    f"{where}: ${{{name}}} is not set (define {name} in the environment, "
                    f"the env file, or {self._secrets_dir or 'a secrets directory'}/{name}"
                    f"{encrypted})"
                )
            resolved, self._resolved_from[name] = found
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

    def found_in(self, value: Any) -> bool:
        """Whether `mask_deep(value, self.mask)` could change anything in `value`.

        One scan of `value`'s JSON text per secret, at native speed, instead of a Python
        call for every string (10,000 rows: 40,000 strings). Exact for JSON data: JSON
        escapes each character on its own, so a string (or key) holding a secret encodes
        to text holding the secret's own encoding. Whatever the scan cannot vouch for
        answers True, so the caller walks it: a value or secret that does not encode,
        and a secret made only of characters a non-string key's `str()` can show (an
        int, float, bool or None key, which JSON may spell otherwise).
        """
        secrets = self._longest_first
        if not secrets:
            return False
        if any(set(secret) <= _NON_STRING_KEY_CHARS for secret in secrets):
            return True
        try:
            encoded = pydantic_core.to_json(value)
            return any(pydantic_core.to_json(secret)[1:-1] in encoded for secret in secrets)
        except (TypeError, ValueError, RecursionError, pydantic_core.PydanticSerializationError):
            return True


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


# Every character `str()` of an int, float, bool or None can contain.
_NON_STRING_KEY_CHARS = frozenset("0123456789+-.eE" + "infaTrueFalseNone")


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
