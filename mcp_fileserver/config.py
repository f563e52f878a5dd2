"""One typed, validated, frozen `Settings` object, built once at startup.

Sources, highest precedence first: command line > process environment > env file
(python-dotenv; the explicit `--env-file`, else a `.env` beside the config file, never
searched for upward) > TOML config file > defaults (the pydantic defaults below, mirrored
in `config/defaults.toml`, which a test keeps in step).

Validation fails closed: an unknown key anywhere in the TOML file, a literal password, a
missing or non-directory allowed dir, `/` as a root, or nothing configured at all raises
`ConfigError`, which the CLI turns into one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

import platformdirs
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mcp_fileserver.errors import ConfigError
from mcp_fileserver.files.denylist import effective_patterns
from mcp_fileserver.secrets import (
    MASK,
    EncryptedSource,
    SecretStore,
    has_reference,
    is_pure_reference,
    is_sensitive_key,
)
from mcp_fileserver.secrets_age import (
    KeySources,
    configured_path,
    decrypt,
    key_lines,
    take_identity,
)

ENV_PREFIX = "MCP_FILESERVER_"
ENV_CONFIG = ENV_PREFIX + "CONFIG"
ENV_ALLOWED_DIRS = ENV_PREFIX + "ALLOWED_DIRS"
ENV_LOG_DIR = ENV_PREFIX + "LOG_DIR"
ENV_ENV_FILE = ENV_PREFIX + "ENV_FILE"
ENV_DB_PREFIX = ENV_PREFIX + "DB_"
ENV_SANDBOX = ENV_PREFIX + "SANDBOX"
ENV_ALLOW_ROOT = ENV_PREFIX + "ALLOW_ROOT"
ENV_SECRETS_DIR = ENV_PREFIX + "SECRETS_DIR"
# systemd's LoadCredential=/LoadCredentialEncrypted= put the files here (a secrets dir).
ENV_CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"

DATABASE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")

MiB = 1024 * 1024


class _Section(BaseModel):
    """A TOML table: unknown keys are errors (a typo must not silently weaken security)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FilesSettings(_Section):
    allowed_dirs: tuple[str, ...] = ()
    max_read_bytes: int = Field(1 * MiB, ge=1)
    # Small reads run on the event loop: a worker-thread hop costs more (files/tools.py).
    inline_read_bytes: int = Field(64 * 1024, ge=0)
    max_media_bytes: int = Field(10 * MiB, ge=1)
    max_multi_files: int = Field(50, ge=1, le=1000)
    max_multi_total_bytes: int = Field(8 * MiB, ge=1)
    max_list_entries: int = Field(1000, ge=1)
    max_walk_entries: int = Field(100_000, ge=1)
    walk_timeout_s: float = Field(30.0, gt=0)
    max_search_results: int = Field(1000, ge=1)
    max_search_bytes: int = Field(4096 * MiB, ge=1)
    max_parallel_walks: int = Field(1, ge=1, le=64)
    # Searches read, match and walk in a second process too (scan_worker.py, walk_split.py).
    search_worker: bool = True
    deny_patterns: tuple[str, ...] | None = None
    extra_deny_patterns: tuple[str, ...] = ()

    @property
    def effective_deny_patterns(self) -> tuple[str, ...]:
        return effective_patterns(self.deny_patterns, self.extra_deny_patterns)


# Harmless volatile functions allowed by default (config key `allowed_volatile_functions`
# of [databases.NAME]; `schema.name` allows one schema, a bare name every schema). They
# read clocks, random numbers or sizes; none changes anything.
DEFAULT_ALLOWED_VOLATILE_FUNCTIONS: tuple[str, ...] = (
    "pg_catalog.random",
    "pg_catalog.clock_timestamp",
    "pg_catalog.timeofday",
    "pg_catalog.gen_random_uuid",
    "pg_catalog.pg_relation_size",
    "pg_catalog.pg_table_size",
    "pg_catalog.pg_indexes_size",
    "pg_catalog.pg_total_relation_size",
    "pg_catalog.pg_database_size",
    "pg_catalog.pg_is_in_recovery",
)


class DatabaseSection(_Section):
    url: str
    password: str | None = None
    description: str = ""
    # 10,000 rows: a real analysis result; max_result_bytes still caps the size.
    max_rows: int = Field(10_000, ge=1, le=1_000_000)
    max_result_bytes: int = Field(1 * MiB, ge=1)
    timeout_s: float = Field(5.0, gt=0, le=3600)
    # PostgreSQL only (docs/sql.md): volatile functions a query may call. PostgreSQL,
    # MariaDB and MySQL: whether a role with more than read privileges is accepted
    # (warned about) rather than refused.
    allowed_volatile_functions: tuple[str, ...] = DEFAULT_ALLOWED_VOLATILE_FUNCTIONS
    allow_privileged_role: bool = False
    # Calls one database runs at once, each on its own connection; more wait (within
    # their own timeout_s) without holding a thread the file tools or other databases need.
    max_concurrent_queries: int = Field(4, ge=1, le=64)


class AuditSettings(_Section):
    enabled: bool = True
    log_dir: str | None = None
    rotation_bytes: int = Field(10 * MiB, ge=1024)
    retention_files: int = Field(20, ge=1)
    retention_days: int | None = Field(None, ge=1)
    compression: Literal["none", "gz", "bz2", "xz", "zip"] = "gz"
    fail_open: bool = False
    hmac_key: str | None = None
    max_value_chars: int = Field(256, ge=16)
    # A record's arguments beyond this size are kept as size, SHA-256 and a preview.
    max_record_bytes: int = Field(16 * 1024, ge=4096, le=MiB)
    # Checkpoints (seq, hash, time) outside the folder: stderr, syslog, signed with a key.
    checkpoint_every: int = Field(1000, ge=1)
    checkpoint_interval_s: float = Field(300.0, gt=0)
    checkpoint_syslog: bool = True
    checkpoint_key: str | None = None


class MonitorSettings(_Section):
    enabled: bool = True
    violation_threshold: int = Field(10, ge=1)
    window_s: float = Field(60.0, gt=0)
    lockout_s: float = Field(300.0, ge=0)
    # Audit bytes one client may cause within window_s before a `security_alert`.
    audit_bytes_alert: int = Field(16 * MiB, ge=1024)


class RateLimitSettings(_Section):
    enabled: bool = True
    per_tool_per_s: float = Field(50.0, gt=0)
    per_tool_burst: int = Field(100, ge=1)
    total_per_s: float = Field(100.0, gt=0)
    total_burst: int = Field(200, ge=1)
    # A call over the rate waits up to this long for its token instead of failing.
    max_wait_s: float = Field(1.0, ge=0, le=2)


class SandboxSettings(_Section):
    mode: Literal["off", "on", "require"] = "on"
    allow_root: bool = False


class ProtocolSettings(_Section):
    # The largest JSON-RPC message accepted from the client; a longer line is answered
    # with an error and dropped as it arrives, never held whole (stdio.py).
    max_message_bytes: int = Field(8 * MiB, ge=64 * 1024)
    # When stdin ends, how long requests already read may still run and be answered
    # before the server stops (stdio.py); a cancelled request is not waited for.
    eof_drain_s: float = Field(60.0, gt=0, le=3600)


class SecretsSettings(_Section):
    dir: str = "/run/secrets"
    # An age-encrypted dotenv file (secrets_age.py); env MCP_FILESERVER_SECRETS_FILE.
    encrypted_file: str | None = None


class ConfigFile(_Section):
    """The whole TOML file."""

    files: FilesSettings = FilesSettings()
    databases: dict[str, DatabaseSection] = Field(default_factory=dict)
    audit: AuditSettings = AuditSettings()
    monitor: MonitorSettings = MonitorSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    sandbox: SandboxSettings = SandboxSettings()
    protocol: ProtocolSettings = field(default_factory=ProtocolSettings)
    secrets: SecretsSettings = SecretsSettings()

    @model_validator(mode="after")
    def _database_names(self) -> ConfigFile:
        for name in self.databases:
            _check_database_name(name)
        return self


@dataclass(frozen=True)
class DatabaseConfig:
    """One configured database, its URL parsed and its password resolved."""

    name: str
    engine: Literal["sqlite", "postgresql", "mariadb", "mysql"]
    description: str
    max_rows: int
    max_result_bytes: int
    timeout_s: float
    max_concurrent_queries: int = 4
    path: Path | None = None  # sqlite
    host: str | None = None  # postgresql, mariadb, mysql
    port: int | None = None
    user: str | None = None
    dbname: str | None = None
    password: str | None = field(default=None, repr=False)
    options: tuple[tuple[str, str], ...] = ()
    driver: str | None = None  # mariadb, mysql: "mariadbconnector" or "pymysql"
    allowed_volatile_functions: tuple[str, ...] = DEFAULT_ALLOWED_VOLATILE_FUNCTIONS
    allow_privileged_role: bool = False

    @property
    def display_url(self) -> str:
        """The URL for operators (`check`), password masked. Never shown to MCP clients."""
        if self.engine == "sqlite":
            return f"sqlite:///{self.path}"
        auth = self.user or ""
        if self.password:
            auth += ":***"
        query = "&".join(f"{k}={MASK if is_sensitive_key(k) else v}" for k, v in self.options)
        port = f":{self.port}" if self.port else ""
        at = "@" if auth else ""
        return f"{self.engine}://{auth}{at}{self.host or ''}{port}/{self.dbname or ''}" + (
            f"?{query}" if query else ""
        )


@dataclass(frozen=True)
class CliOptions:
    """What the command line said; None / empty means "not given"."""

    config: str | None = None
    allow: tuple[str, ...] = ()
    db: tuple[str, ...] = ()
    log_dir: str | None = None
    env_file: str | None = None
    sandbox: Literal["off", "on", "require"] | None = None
    allow_root: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything the server needs, validated; built by `load_settings`."""

    allowed_dirs: tuple[Path, ...]
    files: FilesSettings
    databases: tuple[DatabaseConfig, ...]
    audit: AuditSettings
    log_dir: Path
    monitor: MonitorSettings
    rate_limit: RateLimitSettings
    sandbox: SandboxSettings
    secrets: SecretStore = field(repr=False, compare=False)
    protocol: ProtocolSettings = field(default_factory=ProtocolSettings)
    config_file: Path | None = None
    env_file: Path | None = None
    hmac_key: str | None = field(default=None, repr=False)
    checkpoint_key: str | None = field(default=None, repr=False)  # Ed25519 private key

    @property
    def deny_patterns(self) -> tuple[str, ...]:
        return self.files.effective_deny_patterns

    def database(self, name: str) -> DatabaseConfig | None:
        return next((db for db in self.databases if db.name == name), None)

    def describe(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets masked (for `check` and audit)."""
        data: dict[str, Any] = {
            "config_file": str(self.config_file) if self.config_file else None,
            "env_file": str(self.env_file) if self.env_file else None,
            "allowed_dirs": [str(p) for p in self.allowed_dirs],
            "files": self.files.model_dump(mode="json")
            | {"deny_patterns": list(self.deny_patterns)},
            "databases": [
                {
                    "name": db.name,
                    "engine": db.engine,
                    "url": db.display_url,
                    "description": db.description,
                    "max_rows": db.max_rows,
                    "max_result_bytes": db.max_result_bytes,
                    "timeout_s": db.timeout_s,
                    "allowed_volatile_functions": list(db.allowed_volatile_functions),
                    "allow_privileged_role": db.allow_privileged_role,
                    "max_concurrent_queries": db.max_concurrent_queries,
                }
                for db in self.databases
            ],
            "audit": self.audit.model_dump(mode="json")
            | {
                "log_dir": str(self.log_dir),
                "hmac_key": "***" if self.hmac_key else None,
                "checkpoint_key": "***" if self.checkpoint_key else None,
            },
            "monitor": self.monitor.model_dump(mode="json"),
            "rate_limit": self.rate_limit.model_dump(mode="json"),
            "sandbox": self.sandbox.model_dump(mode="json"),
            "protocol": self.protocol.model_dump(mode="json"),
            "secrets": self.secrets.describe(),
        }
        data["files"].pop("allowed_dirs", None)
        data["files"].pop("extra_deny_patterns", None)
        # Any resolved value that found its way in (a URL option from ${VAR}...) is masked.
        return _mask_strings(data, self.secrets) if not self.secrets.empty else data


def _mask_strings(node: Any, secrets: SecretStore) -> Any:
    if isinstance(node, str):
        return secrets.mask(node)
    if isinstance(node, dict):
        return {key: _mask_strings(value, secrets) for key, value in node.items()}
    if isinstance(node, list):
        return [_mask_strings(item, secrets) for item in node]
    return node


def default_log_dir() -> Path:
    return Path(platformdirs.user_state_dir("mcp-fileserver", appauthor=False)) / "logs"


def load_settings(cli: CliOptions, environ: Mapping[str, str] | None = None) -> Settings:
    """Merge every source into one validated `Settings`, or raise `ConfigError`."""
    process_env = dict(os.environ if environ is None else environ)
    # First of all, whatever fails next: an age identity leaves the environment here.
    identity = take_identity(process_env, clear_process_environ=environ is None)

    config_path = _pick(cli.config, process_env.get(ENV_CONFIG))
    config_file = Path(config_path).expanduser().absolute() if config_path else None
    raw = _read_toml(config_file) if config_file else {}
    base_dir = config_file.parent if config_file else Path.cwd()

    env_file = _locate_env_file(cli.env_file or process_env.get(ENV_ENV_FILE), config_file)
    file_env = _read_env_file(env_file) if env_file else {}
    key_sources = KeySources.from_env(process_env, file_env, identity)
    # The environment outranks the env file for every lookup, options and ${VAR} alike.
    env = {**{k: v for k, v in file_env.items() if v is not None}, **process_env}

    _refuse_literal_secrets(raw, where=str(config_file))
    try:
        parsed = ConfigFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, config_file)) from None

    secrets_dir = Path(env.get(ENV_SECRETS_DIR) or parsed.secrets.dir).expanduser()
    credentials = process_env.get(ENV_CREDENTIALS_DIRECTORY)
    store = SecretStore(
        process_env,
        file_env,
        secrets_dir,
        credentials_dir=Path(credentials) if credentials else None,
        encrypted=_decrypt_secrets(env, parsed.secrets, base_dir, key_sources),
    )
    if key_sources.identity:
        store.add_all(key_lines(key_sources.identity))

    allowed_raw: Sequence[str]
    if cli.allow:
        allowed_raw, allowed_base = cli.allow, Path.cwd()
    elif env.get(ENV_ALLOWED_DIRS):
        allowed_raw = [p for p in env[ENV_ALLOWED_DIRS].split(os.pathsep) if p]
        allowed_base = Path.cwd()
    else:
        allowed_raw, allowed_base = parsed.files.allowed_dirs, base_dir
    allowed_dirs = _resolve_allowed_dirs(allowed_raw, allowed_base)
    _refuse_served_key_files(key_sources, allowed_dirs)

    databases = _collect_databases(parsed, cli, env, store, base_dir)
    if not allowed_dirs and not databases:
        raise ConfigError(
            "nothing to serve: give at least one allowed directory (--allow DIR, "
            f"{ENV_ALLOWED_DIRS}, or [files] allowed_dirs) or a database (--db NAME=URL)"
        )

    log_dir_raw = _pick(cli.log_dir, env.get(ENV_LOG_DIR), parsed.audit.log_dir)
    log_dir = _resolve_path(log_dir_raw, base_dir) if log_dir_raw else default_log_dir()

    hmac_key = None
    if parsed.audit.hmac_key:
        hmac_key = store.resolve(parsed.audit.hmac_key, where="[audit] hmac_key")
    checkpoint_key = None
    if parsed.audit.checkpoint_key:
        checkpoint_key = store.resolve(parsed.audit.checkpoint_key, where="[audit] checkpoint_key")

    sandbox = parsed.sandbox
    sandbox_mode = _pick(cli.sandbox, env.get(ENV_SANDBOX))
    if sandbox_mode is not None:
        if sandbox_mode not in ("off", "on", "require"):
            raise ConfigError(f"{ENV_SANDBOX} must be off, on or require, not {sandbox_mode!r}")
        sandbox = sandbox.model_copy(update={"mode": sandbox_mode})
    if cli.allow_root or _truthy(env.get(ENV_ALLOW_ROOT)):
        sandbox = sandbox.model_copy(update={"allow_root": True})

    return Settings(
        allowed_dirs=allowed_dirs,
        files=parsed.files,
        databases=databases,
        audit=parsed.audit,
        log_dir=log_dir,
        monitor=parsed.monitor,
        rate_limit=parsed.rate_limit,
        sandbox=sandbox,
        secrets=store,
        protocol=parsed.protocol,
        config_file=config_file,
        env_file=env_file,
        hmac_key=hmac_key,
        checkpoint_key=checkpoint_key,
    )


def _decrypt_secrets(
    env: Mapping[str, str], section: SecretsSettings, base_dir: Path, keys: KeySources
) -> EncryptedSource | None:
    """The encrypted secrets file, decrypted in memory, or None when none is configured."""
    path = configured_path(env, section.encrypted_file, base_dir)
    if path is None:
        return None
    decrypted = decrypt(path, keys)
    return EncryptedSource(
        decrypted.path, decrypted.key.source, decrypted.values, decrypted.key.secret_texts
    )


def _refuse_served_key_files(keys: KeySources, allowed_dirs: Sequence[Path]) -> None:
    """A key file beneath an allowed directory could be read by the file tools."""
    for path in keys.files:
        real = path.resolve()
        for root in allowed_dirs:
            if real == root or root in real.parents:
                raise ConfigError(
                    f"key file {path} is inside the allowed directory {root}, where the "
                    "file tools could read it: move it out"
                )


def _pick(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except PermissionError:
        raise ConfigError(f"config file {path} is not readable (permission denied)") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _locate_env_file(explicit: str | None, config_file: Path | None) -> Path | None:
    if explicit:
        path = Path(explicit).expanduser().absolute()
        if not path.is_file():
            raise ConfigError(f"env file {path} does not exist or is not a file")
        return path
    if config_file is not None:
        beside = config_file.parent / ".env"
        if beside.is_file():
            return beside
    return None


def _read_env_file(path: Path) -> dict[str, str | None]:
    try:
        with path.open(encoding="utf-8") as fh:
            return dict(dotenv_values(stream=fh))
    except OSError as exc:
        raise ConfigError(f"env file {path} cannot be read: {exc.strerror}") from None


def _refuse_literal_secrets(node: Any, *, where: str, trail: str = "") -> None:
    """A credential-looking key must hold a `${VAR}` reference, never the value itself."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{trail}.{key}" if trail else str(key)
            # A credential-named key (secrets.is_sensitive_key) may only hold `${VAR}`.
            if isinstance(value, str) and is_sensitive_key(str(key)):
                if not is_pure_reference(value):
                    raise ConfigError(
                        f"{where}: {here} holds a literal secret; put the value in an "
                        f"environment variable, the env file or /run/secrets and write "
                        f'{key} = "${{VAR}}" instead'
                    )
            elif isinstance(value, str) and key == "url":
                _refuse_literal_url_password(value, where=f"{where}: {here}")
            else:
                _refuse_literal_secrets(value, where=where, trail=here)
    elif isinstance(node, list):
        for item in node:
            _refuse_literal_secrets(item, where=where, trail=trail)


def _refuse_literal_url_password(url: str, *, where: str) -> None:
    """A URL may carry a credential only as `${VAR}`: the password of its userinfo and
    every query parameter whose name denotes one (`password`, `sslpassword`...)."""
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        password = userinfo.split(":", 1)[1]
        if password and not is_pure_reference(unquote(password)):
            raise ConfigError(
                f"{where} contains a literal password; write it as "
                "scheme://user:${VAR}@host/db and define VAR in the environment, "
                "the env file or /run/secrets"
            )
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if is_sensitive_key(key) and value and not is_pure_reference(value):
            raise ConfigError(
                f"{where} contains a literal secret in its query ({key}=...); write it as "
                f"{key}=${{VAR}} and define VAR in the environment, the env file or "
                "/run/secrets"
            )


def _describe_validation_error(exc: ValidationError, config_file: Path | None) -> str:
    err = exc.errors()[0]
    location = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        message = f"unknown key {location!r}"
    else:
        message = f"{location}: {err['msg']}"
    extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"config file {config_file}: {message}{extra}"


def _resolve_path(raw: str, base: Path) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else base / path


def _resolve_allowed_dirs(raw_dirs: Sequence[str], base: Path) -> tuple[Path, ...]:
    resolved: list[Path] = []
    for raw in raw_dirs:
        if not raw:
            raise ConfigError("an allowed directory is empty")
        path = _resolve_path(raw, base)
        try:
            real = path.resolve(strict=True)
        except (FileNotFoundError, RuntimeError):
            raise ConfigError(f"allowed directory {raw} does not exist") from None
        except OSError as exc:
            raise ConfigError(
                f"allowed directory {raw} cannot be resolved: {exc.strerror}"
            ) from None
        if not real.is_dir():
            raise ConfigError(f"allowed directory {raw} is not a directory")
        if real == Path(real.anchor):
            raise ConfigError(
                f"allowed directory {raw} is the filesystem root; allow specific folders instead"
            )
        if real not in resolved:
            resolved.append(real)
    return tuple(resolved)


def _check_database_name(name: str) -> None:
    if not DATABASE_NAME.fullmatch(name):
        raise ValueError(
            f"database name {name!r}: use letters, digits, '_' or '-', starting with a letter"
        )


def _collect_databases(
    parsed: ConfigFile,
    cli: CliOptions,
    env: Mapping[str, str],
    store: SecretStore,
    base_dir: Path,
) -> tuple[DatabaseConfig, ...]:
    sections: dict[str, tuple[DatabaseSection, Path]] = {
        name: (section, base_dir) for name, section in parsed.databases.items()
    }
    # Environment, then command line: later sources replace a database's URL.
    overrides: list[tuple[str, str, str]] = [
        (key[len(ENV_DB_PREFIX) :].lower(), value, f"${key}")
        for key, value in sorted(env.items())
        if key.startswith(ENV_DB_PREFIX) and value
    ]
    for spec in cli.db:
        name, eq, url = spec.partition("=")
        if not eq or not name or not url:
            raise ConfigError(f"--db {spec!r}: expected NAME=URL")
        overrides.append((name, url, "--db"))
    for name, url, source in overrides:
        try:
            _check_database_name(name)
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        _refuse_literal_url_password(url, where=f"{source} {name}")
        previous = sections.get(name)
        section = (
            previous[0].model_copy(update={"url": url}) if previous else DatabaseSection(url=url)
        )
        sections[name] = (section, Path.cwd())
    return tuple(
        _parse_database(name, section, store, base) for name, (section, base) in sections.items()
    )


def _parse_database(
    name: str, section: DatabaseSection, store: SecretStore, base_dir: Path
) -> DatabaseConfig:
    where = f"database {name}"
    common: dict[str, Any] = {
        "name": name,
        "description": section.description,
        "max_rows": section.max_rows,
        "max_result_bytes": section.max_result_bytes,
        "timeout_s": section.timeout_s,
        "allowed_volatile_functions": section.allowed_volatile_functions,
        "allow_privileged_role": section.allow_privileged_role,
        "max_concurrent_queries": section.max_concurrent_queries,
    }
    url = section.url
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ConfigError(
            f"{where}: URL must look like sqlite:///file.db, postgresql://..., mariadb://... "
            "or mysql://..."
        )
    if scheme == "sqlite":
        if has_reference(url):
            url = store.resolve(url, where=where, secret=False)  # a file path
            rest = url.partition("://")[2]
        if not rest.startswith("/") or rest in ("/", "//"):
            raise ConfigError(
                f"{where}: SQLite URLs are sqlite:///relative.db or sqlite:////abs.db"
            )
        raw_path = unquote(rest[1:].split("?", 1)[0])
        if raw_path in (":memory:", ""):
            raise ConfigError(f"{where}: an in-memory SQLite database has nothing to read")
        path = _resolve_path(raw_path, base_dir)
        if not path.is_file():
            raise ConfigError(f"{where}: SQLite file {path} does not exist")
        return DatabaseConfig(engine="sqlite", path=path.resolve(), **common)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parts = urlsplit(url)
        password, port = _password_and_port(parts, section, store, where)
        dbname = unquote(parts.path.lstrip("/")) or None
        options = tuple(
            (k, store.resolve(v, where=where, secret=is_sensitive_key(k)))
            for k, v in parse_qsl(parts.query)
        )
        if not parts.hostname:
            raise ConfigError(f"{where}: a PostgreSQL URL needs a host")
        return DatabaseConfig(
            engine="postgresql",
            host=parts.hostname,
            port=port or 5432,
            user=unquote(parts.username) if parts.username else None,
            dbname=dbname,
            password=password,
            options=options,
            **common,
        )
    if scheme in MYSQL_SCHEMES:
        engine, driver = MYSQL_SCHEMES[scheme]
        return _parse_mysql(url, engine, driver, section, store, where, common)
    raise ConfigError(
        f"{where}: unsupported URL scheme {scheme!r} (use sqlite, postgresql, mariadb or mysql)"
    )


def _password_and_port(
    parts: SplitResult, section: DatabaseSection, store: SecretStore, where: str
) -> tuple[str | None, int | None]:
    """A server URL's password (its `${VAR}` in the URL, else the section's `password`
    key, resolved) and port (None when the URL names none)."""
    password = parts.password
    if password is not None:
        password = store.resolve(unquote(password), where=where)
    elif section.password is not None:
        password = store.resolve(section.password, where=where)
    try:
        return password, parts.port
    except ValueError:
        raise ConfigError(f"{where}: the port in the URL is not a number") from None


# MariaDB and MySQL (sql/mysql.py): the URL scheme names the engine shown by
# list_databases (the server's flavour, MariaDB or MySQL, is read again at connect) and
# the driver (sql/mysql_drivers.py): MariaDB Connector/Python (C) unless `+pymysql`.
MysqlDriver = Literal["mariadbconnector", "pymysql"]
MYSQL_SCHEMES: dict[str, tuple[Literal["mariadb", "mysql"], MysqlDriver]] = {
    "mariadb": ("mariadb", "mariadbconnector"),
    "mariadb+mariadbconnector": ("mariadb", "mariadbconnector"),
    "mariadb+pymysql": ("mariadb", "pymysql"),
    "mysql": ("mysql", "mariadbconnector"),
    "mysql+mariadbconnector": ("mysql", "mariadbconnector"),
    "mysql+pymysql": ("mysql", "pymysql"),
}
MYSQL_DEFAULT_PORT = 3306
# The URL query parameters a MariaDB/MySQL URL may carry: the TLS options (both drivers
# map them, sql/mysql_drivers.py; ssl_key_password only with +pymysql), a UNIX socket
# instead of TCP, and the connect timeout. Anything else is a configuration error (a
# driver would fail on it only at the first call).
MYSQL_OPTIONS = frozenset(
    {
        "ssl_ca",
        "ssl_cert",
        "ssl_key",
        "ssl_key_password",
        "ssl_verify_cert",
        "ssl_verify_identity",
        "unix_socket",
        "connect_timeout",
    }
)
MYSQL_BOOLEAN_OPTIONS = frozenset({"ssl_verify_cert", "ssl_verify_identity"})


def _parse_mysql(
    url: str,
    engine: Literal["mariadb", "mysql"],
    driver: MysqlDriver,
    section: DatabaseSection,
    store: SecretStore,
    where: str,
    common: dict[str, Any],
) -> DatabaseConfig:
    parts = urlsplit(url)
    password, port = _password_and_port(parts, section, store, where)
    options: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in MYSQL_OPTIONS:
            raise ConfigError(
                f"{where}: unknown URL parameter {key!r} for {engine} (accepted: "
                + ", ".join(sorted(MYSQL_OPTIONS))
                + ")"
            )
        resolved = store.resolve(value, where=where, secret=is_sensitive_key(key))
        if key in MYSQL_BOOLEAN_OPTIONS and resolved.lower() not in _BOOLEAN_WORDS:
            raise ConfigError(f"{where}: {key} must be true or false, not {resolved!r}")
        if key == "ssl_key_password" and driver != "pymysql":
            raise ConfigError(
                f"{where}: ssl_key_password needs the PyMySQL driver: write {engine}+pymysql://"
            )
        if key == "connect_timeout" and not resolved.isdigit():
            raise ConfigError(f"{where}: connect_timeout must be a number of seconds")
        options.append((key, resolved))
    dbname = unquote(parts.path.lstrip("/")) or None
    if not dbname:
        raise ConfigError(
            f"{where}: a {engine} URL names its database: {engine}://user@host:port/dbname"
        )
    if not parts.hostname and "unix_socket" not in dict(options):
        raise ConfigError(f"{where}: a {engine} URL needs a host or ?unix_socket=/path")
    return DatabaseConfig(
        engine=engine,
        driver=driver,
        host=parts.hostname or "localhost",
        port=port or MYSQL_DEFAULT_PORT,
        user=unquote(parts.username) if parts.username else None,
        dbname=dbname,
        password=password,
        options=tuple(options),
        **common,
    )


_BOOLEAN_WORDS = frozenset({"true", "false", "1", "0", "yes", "no", "on", "off"})
