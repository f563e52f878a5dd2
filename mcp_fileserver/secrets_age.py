"""The encrypted secrets file: a dotenv file encrypted with age (age-encryption.org/v1).

Interoperable with the `age` and `rage` tools (pyrage is rage's Python binding). The file
is decrypted in memory at startup and never written anywhere in clear; its names resolve
`${VAR}` references like every other secret source (see secrets.py for the order).

The key, first match wins:
1. an identity file, `MCP_FILESERVER_AGE_IDENTITY_FILE` (refused unless only its owner
   may read it, like ssh refuses a private key others can read);
2. an identity in the environment, `MCP_FILESERVER_AGE_IDENTITY` (for containers); it is
   removed from the process environment as soon as it is read;
3. for a file encrypted with a passphrase (age's scrypt recipient), the passphrase in the
   file named by `MCP_FILESERVER_AGE_PASSPHRASE_FILE` (a Docker secret, a systemd
   credential), held to the same owner-only rule.

Every failure is a `ConfigError` with one line saying what to do; no message ever holds
a value or a key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

import pyrage
from pyrage import passphrase as age_passphrase
from pyrage import x25519

from mcp_fileserver import dotenv_strict
from mcp_fileserver.errors import ConfigError

ENV_SECRETS_FILE = "MCP_FILESERVER_SECRETS_FILE"
ENV_IDENTITY_FILE = "MCP_FILESERVER_AGE_IDENTITY_FILE"
ENV_IDENTITY = "MCP_FILESERVER_AGE_IDENTITY"
ENV_PASSPHRASE_FILE = "MCP_FILESERVER_AGE_PASSPHRASE_FILE"  # noqa: S105 - a variable name

MAGIC = b"age-encryption.org/v1\n"
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
SECRET_KEY_PREFIX = "AGE-SECRET-KEY-1"  # noqa: S105 - the format prefix
RECIPIENT_COMMENT = "recipient:"  # `# recipient: age1...` lines record who can decrypt

# pyrage raises one exception type; its message tells the causes apart.
_DECRYPT_ERRORS: tuple[tuple[str, str], ...] = (
    (
        "No matching keys found",
        "no identity matches it (wrong key?): use an identity it was encrypted for",
    ),
    ("Decryption failed", "the passphrase is wrong or the file was modified"),
    ("Header MAC is invalid", "its header was modified: restore it from a backup"),
    ("failed to fill whole buffer", "it is truncated: restore it from a backup"),
    ("Unknown age format", "it is damaged or not an age file: restore it from a backup"),
)
_DAMAGED = (
    "it is damaged, truncated or was modified (age authenticates every byte): "
    "restore it from a backup"
)


@dataclass(frozen=True)
class AgeKey:
    """What decrypts (and re-encrypts) the file, and where it came from (for `check`)."""

    source: str
    identities: tuple[x25519.Identity, ...] = field(default=(), repr=False)
    passphrase: str | None = field(default=None, repr=False)
    # Key material as text: registered for masking like every secret value.
    secret_texts: tuple[str, ...] = field(default=(), repr=False)

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(str(identity.to_public()) for identity in self.identities)


@dataclass(frozen=True)
class KeySources:
    """Where a key may come from; `from_environment` takes the identity out of os.environ."""

    identity_file: Path | None = None
    identity: str | None = field(default=None, repr=False)
    passphrase_file: Path | None = None

    @classmethod
    def take(
        cls,
        process_env: MutableMapping[str, str],
        file_env: Mapping[str, str | None],
        *,
        clear_process_environ: bool,
    ) -> KeySources:
        """The key variables; the identity is removed from `process_env` (and from
        `os.environ` when `clear_process_environ`), so no `${VAR}` and no child sees it."""
        identity = take_identity(process_env, clear_process_environ=clear_process_environ)
        return cls.from_env(process_env, file_env, identity)

    @classmethod
    def from_env(
        cls,
        process_env: Mapping[str, str],
        file_env: Mapping[str, str | None],
        identity: str | None,
    ) -> KeySources:
        """File paths may come from the env file too; an identity may not (it would sit in
        clear beside the config)."""
        if file_env.get(ENV_IDENTITY):
            raise ConfigError(
                f"{ENV_IDENTITY} in the env file keeps the key in clear on disk: put the "
                f"identity in a file only you can read and set {ENV_IDENTITY_FILE}"
            )
        env = {**{k: v for k, v in file_env.items() if v}, **process_env}
        return cls(
            identity_file=absolute_path(env.get(ENV_IDENTITY_FILE)),
            identity=identity or None,
            passphrase_file=absolute_path(env.get(ENV_PASSPHRASE_FILE)),
        )

    @property
    def files(self) -> tuple[Path, ...]:
        """The key files named (kept out of the allowed directories)."""
        return tuple(p for p in (self.identity_file, self.passphrase_file) if p is not None)


@dataclass(frozen=True)
class DecryptedSecrets:
    """The decrypted file: its values (in memory only) and how it was opened."""

    path: Path
    key: AgeKey
    document: dotenv_strict.Document = field(repr=False)

    @property
    def values(self) -> dict[str, str]:
        return self.document.as_dict()

    @property
    def names(self) -> tuple[str, ...]:
        return self.document.names

    @property
    def recorded_recipients(self) -> tuple[str, ...]:
        """The `# recipient: age1...` comments `secrets encrypt` wrote into the plaintext."""
        found = []
        for comment in self.document.comments():
            if comment.startswith(RECIPIENT_COMMENT):
                found.append(comment[len(RECIPIENT_COMMENT) :].strip())
        return tuple(found)


def take_identity(env: MutableMapping[str, str], *, clear_process_environ: bool) -> str | None:
    """Remove `MCP_FILESERVER_AGE_IDENTITY` from `env` (and os.environ); its value."""
    identity = env.pop(ENV_IDENTITY, None)
    if clear_process_environ:
        os.environ.pop(ENV_IDENTITY, None)
    return identity


def absolute_path(raw: str | None) -> Path | None:
    return Path(os.path.abspath(Path(raw).expanduser())) if raw else None


def _read_key_file(path: Path, what: str) -> str:
    """The text of a key file that only its owner may read (checked on the open file)."""
    try:
        # O_NONBLOCK: a FIFO in its place is refused below instead of blocking here.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{what} {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigError(
                f"{what} {path} may be read by others (mode {stat.S_IMODE(info.st_mode):04o}): "
                f"run chmod 600 {path}"
            )
        try:
            data = fh.read()
        except OSError as exc:
            raise ConfigError(f"{what} {path} cannot be read: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None


def parse_identities(text: str, where: str) -> tuple[x25519.Identity, ...]:
    """Identities from age-keygen's format: `AGE-SECRET-KEY-1...` lines, `#` comments."""
    identities = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.upper().startswith(SECRET_KEY_PREFIX):
            raise ConfigError(
                f"{where}: line {number} is not an age identity (AGE-SECRET-KEY-1...); "
                "create one with `mcp-fileserver secrets keygen` or age-keygen"
            )
        try:
            identities.append(x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise ConfigError(
                f"{where}: line {number} is not a valid age identity (damaged or cut?)"
            ) from None
    if not identities:
        raise ConfigError(f"{where} holds no identity (AGE-SECRET-KEY-1...)")
    return tuple(identities)


def load_key(sources: KeySources, *, passphrase_encrypted: bool, path: Path) -> AgeKey:
    """The key that opens `path`, in the documented order, or a ConfigError saying how."""
    if passphrase_encrypted:
        if sources.passphrase_file is None:
            raise ConfigError(
                f"{path} is encrypted with a passphrase: set {ENV_PASSPHRASE_FILE} to a "
                "file holding it"
            )
        text = _read_key_file(sources.passphrase_file, "passphrase file")
        secret = text.rstrip("\r\n")
        if not secret:
            raise ConfigError(f"passphrase file {sources.passphrase_file} is empty")
        return AgeKey(
            f"passphrase file {sources.passphrase_file}", passphrase=secret, secret_texts=(secret,)
        )
    if sources.identity_file is not None:
        text = _read_key_file(sources.identity_file, "identity file")
        where = f"identity file {sources.identity_file}"
        return AgeKey(where, parse_identities(text, where), secret_texts=key_lines(text))
    if sources.identity is not None:
        where = f"{ENV_IDENTITY} (environment, now cleared)"
        identities = parse_identities(sources.identity, ENV_IDENTITY)
        return AgeKey(where, identities, secret_texts=key_lines(sources.identity))
    raise ConfigError(
        f"no key to decrypt {path}: set {ENV_IDENTITY_FILE} to an identity file "
        f"(or {ENV_IDENTITY} to an identity)"
    )


def key_lines(text: str) -> tuple[str, ...]:
    return tuple(
        line.strip() for line in text.splitlines() if line.strip().startswith(SECRET_KEY_PREFIX)
    )


def read_ciphertext(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"encrypted secrets file {path} does not exist: create it with "
            "`mcp-fileserver secrets encrypt`"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"encrypted secrets file {path} is a directory") from None
    except OSError as exc:
        raise ConfigError(f"encrypted secrets file {path} cannot be read: {exc.strerror}") from None
    if not (data.startswith(MAGIC) or data.lstrip().startswith(ARMOR_BEGIN)):
        raise ConfigError(
            f"{path} is not an age-encrypted file: encrypt it with "
            "`mcp-fileserver secrets encrypt` or age"
        )
    return data


def is_passphrase_encrypted(data: bytes) -> bool:
    """Whether the header's recipient is scrypt (age allows it only alone)."""
    binary = _dearmor(data) if not data.startswith(MAGIC) else data
    header = binary.split(b"\n---", 1)[0]
    return any(line.startswith(b"-> scrypt ") for line in header.split(b"\n"))


def _dearmor(data: bytes) -> bytes:
    body = data.strip()
    if not (body.startswith(ARMOR_BEGIN) and body.endswith(ARMOR_END)):
        return b""
    try:
        return base64.b64decode(b"".join(body[len(ARMOR_BEGIN) : -len(ARMOR_END)].split()))
    except binascii.Error:
        return b""


def decrypt(path: Path, sources: KeySources) -> DecryptedSecrets:
    """Read, decrypt and parse the secrets file, all in memory."""
    data = read_ciphertext(path)
    key = load_key(sources, passphrase_encrypted=is_passphrase_encrypted(data), path=path)
    try:
        if key.passphrase is not None:
            plaintext = age_passphrase.decrypt(data, key.passphrase)
        else:
            plaintext = pyrage.decrypt(data, list(key.identities))
    except pyrage.DecryptError as exc:
        reason = next((why for text, why in _DECRYPT_ERRORS if text in str(exc)), _DAMAGED)
        raise ConfigError(f"cannot decrypt {path}: {reason}") from None
    try:
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} decrypts to something that is not UTF-8 text") from None
    try:
        document = dotenv_strict.parse(text)
    except dotenv_strict.DotenvError as exc:
        raise ConfigError(f"{path} (decrypted): {exc}") from None
    return DecryptedSecrets(path, key, document)


def parse_recipients(values: Iterable[str], where: str) -> list[x25519.Recipient]:
    recipients = []
    for value in values:
        try:
            recipients.append(x25519.Recipient.from_str(value.strip()))
        except pyrage.RecipientError:
            raise ConfigError(
                f"{where}: {value.strip()[:80]!r} is not an age recipient (age1...)"
            ) from None
    return recipients


def read_recipients_file(path: Path) -> list[str]:
    """Recipients, one per line, `#` comments: age's `-R` format."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"recipients file {path} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"recipients file {path} is not UTF-8 text") from None
    return [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")]


def with_recipient_comments(document: dotenv_strict.Document, recipients: Iterable[str]) -> str:
    """The plaintext with its `# recipient:` lines replaced by `recipients` (at the top)."""
    inside = {n for e in document.entries for n in range(e.first_line, e.last_line + 1)}
    kept = [
        line
        for number, line in enumerate(document.lines, 1)
        if number in inside or not _is_recipient_comment(line)
    ]
    header = [f"# {RECIPIENT_COMMENT} {r}" for r in recipients]
    return "\n".join([*header, *kept]) + "\n"


def _is_recipient_comment(line: str) -> bool:
    text = line.strip()
    return text.startswith("#") and text[1:].strip().startswith(RECIPIENT_COMMENT)


def encrypt(
    plaintext: str, *, recipients: Iterable[str] = (), passphrase: str | None = None
) -> bytes:
    """Binary age ciphertext for the recipients, or for the passphrase (scrypt)."""
    data = plaintext.encode("utf-8")
    if passphrase is not None:
        return age_passphrase.encrypt(data, passphrase)
    parsed = parse_recipients(recipients, "recipient")
    if not parsed:
        raise ConfigError("give at least one recipient (-r age1..., -R FILE or -i IDENTITY)")
    try:
        return pyrage.encrypt(data, parsed)
    except pyrage.EncryptError as exc:  # pragma: no cover - x25519 recipients cannot fail
        raise ConfigError(f"encryption failed: {exc}") from None


def write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Replace `path` with `data` at once: a crash leaves the old file or the new one."""
    folder = path.parent
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def configured_path(env: Mapping[str, str], configured: str | None, base_dir: Path) -> Path | None:
    """`MCP_FILESERVER_SECRETS_FILE`, else `[secrets] encrypted_file` (relative to the
    config file's folder)."""
    if env.get(ENV_SECRETS_FILE):
        return Path(env[ENV_SECRETS_FILE]).expanduser().absolute()
    if configured:
        path = Path(configured).expanduser()
        return path if path.is_absolute() else base_dir / path
    return None
