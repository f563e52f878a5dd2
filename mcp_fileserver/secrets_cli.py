"""`mcp-fileserver secrets keygen|encrypt|set|list|check`: the encrypted secrets file.

No subcommand prints a value. Plaintext only ever exists in memory (or in the dotenv file
the user gives `encrypt`); `set` re-encrypts in place atomically. Bad input exits with
code 2 and one line on stderr, like every configuration error.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import platformdirs
from pyrage import x25519

from mcp_fileserver import dotenv_strict
from mcp_fileserver.config import (
    ENV_CONFIG,
    ENV_ENV_FILE,
    SecretsSettings,
    _locate_env_file,
    _read_env_file,
    _read_toml,
)
from mcp_fileserver.errors import ConfigError
from mcp_fileserver.secrets_age import (
    ENV_IDENTITY_FILE,
    ENV_PASSPHRASE_FILE,
    ENV_SECRETS_FILE,
    DecryptedSecrets,
    KeySources,
    absolute_path,
    configured_path,
    decrypt,
    encrypt,
    load_key,
    read_recipients_file,
    with_recipient_comments,
    write_atomic,
)

PROG = "mcp-fileserver"
IDENTITY_FILE_NAME = "age-identity.txt"


def default_identity_path() -> Path:
    """Where `keygen` writes by default: the user's config folder for mcp-fileserver."""
    folder = platformdirs.user_config_dir("mcp-fileserver", appauthor=False)
    return Path(folder) / IDENTITY_FILE_NAME


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `secrets` command group."""
    group = sub.add_parser(
        "secrets", help="the age-encrypted secrets file: keygen, encrypt, set, list, check"
    )
    group.set_defaults(handler=lambda _args: _usage(group))
    commands = group.add_subparsers(dest="secrets_command", metavar="COMMAND")

    keygen = commands.add_parser(
        "keygen", help="write a new age identity file (mode 0600) and print its recipient"
    )
    keygen.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help=f"where to write it (default: {default_identity_path()}); never overwritten",
    )
    keygen.set_defaults(handler=_guarded(cmd_keygen))

    enc = commands.add_parser(
        "encrypt", help="encrypt a dotenv file (NAME=value lines) to an .age file"
    )
    enc.add_argument("input", metavar="DOTENV", help="the plaintext dotenv file, or - for stdin")
    enc.add_argument("-o", "--output", metavar="FILE", help="the .age file (default: DOTENV.age)")
    _add_recipient_options(enc)
    enc.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help="encrypt with the passphrase in FILE (age scrypt) instead of recipients",
    )
    enc.set_defaults(handler=_guarded(cmd_encrypt))

    setter = commands.add_parser(
        "set",
        help="add or replace one value, read from stdin without echo; re-encrypts in place",
    )
    setter.add_argument("name", metavar="NAME")
    _add_file_options(setter)
    _add_recipient_options(setter, for_set=True)
    setter.set_defaults(handler=_guarded(cmd_set))

    lister = commands.add_parser("list", help="decrypt and print the names (never the values)")
    _add_file_options(lister)
    lister.set_defaults(handler=_guarded(cmd_list))

    check = commands.add_parser("check", help="decrypt and validate; print the names and the key")
    _add_file_options(check)
    check.set_defaults(handler=_guarded(cmd_check))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    print(f"{PROG}: error: choose a command: keygen, encrypt, set, list, check", file=sys.stderr)
    return 2


def _add_file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--file",
        metavar="FILE",
        help=f"the encrypted file (default: ${ENV_SECRETS_FILE}, else [secrets] encrypted_file "
        "of --config)",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="TOML configuration file (env MCP_FILESERVER_CONFIG)"
    )
    parser.add_argument(
        "--env-file", metavar="FILE", help="dotenv file (default: .env beside the config file)"
    )
    parser.add_argument(
        "-i",
        "--identity",
        metavar="FILE",
        help=f"age identity file (default: ${ENV_IDENTITY_FILE})",
    )
    parser.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help=f"passphrase file for a passphrase-encrypted file (default: ${ENV_PASSPHRASE_FILE})",
    )


def _add_recipient_options(parser: argparse.ArgumentParser, *, for_set: bool = False) -> None:
    kept = " (default: the recipients recorded in the file)" if for_set else ""
    parser.add_argument(
        "-r",
        "--recipient",
        metavar="AGE1...",
        action="append",
        default=[],
        help=f"encrypt for this recipient; repeatable{kept}",
    )
    parser.add_argument(
        "-R",
        "--recipients-file",
        metavar="FILE",
        action="append",
        default=[],
        help="encrypt for the recipients in FILE (one per line); repeatable",
    )
    if not for_set:
        parser.add_argument(
            "-i",
            "--identity",
            metavar="FILE",
            action="append",
            default=[],
            help="encrypt for this identity file's own recipient; repeatable",
        )


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A `ConfigError` (or an OS error writing a file) becomes one line and exit 2."""

    def handler(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except ConfigError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return ConfigError.exit_code
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted; nothing was changed", file=sys.stderr)
            return 130

    return handler


def _note(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def cmd_keygen(args: argparse.Namespace) -> int:
    path = absolute_path(args.output) or default_identity_path()
    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"# created: {created}\n# public key: {recipient}\n{identity}\n"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; choose another -o FILE") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)  # whatever the umask
        fh.write(text)
    _note(f"wrote the identity to {path} (mode 0600); keep it out of the allowed directories")
    _note(f"set {ENV_IDENTITY_FILE}={path} for the server; its public recipient is:")
    print(recipient)
    return 0


def _recipients(args: argparse.Namespace) -> list[str]:
    found = list(args.recipient)
    for file in args.recipients_file:
        found += read_recipients_file(Path(file).expanduser())
    for file in getattr(args, "identity", None) or []:
        keys = KeySources(identity_file=absolute_path(file))
        key = load_key(keys, passphrase_encrypted=False, path=Path(file))
        found += key.recipients
    return list(dict.fromkeys(found))


def _read_passphrase(path: str) -> str:
    keys = KeySources(passphrase_file=absolute_path(path))
    key = load_key(keys, passphrase_encrypted=True, path=Path(path))
    assert key.passphrase is not None
    return key.passphrase


def cmd_encrypt(args: argparse.Namespace) -> int:
    if args.input == "-":
        if not args.output:
            raise ConfigError("reading stdin: name the output with -o FILE")
        text = sys.stdin.read()
        where = "stdin"
    else:
        source = Path(args.input).expanduser()
        try:
            text = source.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{source} does not exist") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{source} is not UTF-8 text") from None
        except OSError as exc:
            raise ConfigError(f"{source} cannot be read: {exc.strerror}") from None
        where = str(source)
    output = Path(args.output).expanduser() if args.output else Path(f"{args.input}.age")
    try:
        document = dotenv_strict.parse(text)
    except dotenv_strict.DotenvError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    recipients = _recipients(args)
    if args.passphrase_file:
        if recipients:
            raise ConfigError("give recipients or --passphrase-file, not both (age allows one)")
        data = encrypt(text, passphrase=_read_passphrase(args.passphrase_file))
        whom = "the passphrase"
    else:
        data = encrypt(with_recipient_comments(document, recipients), recipients=recipients)
        whom = f"{len(recipients)} recipient{'s' if len(recipients) != 1 else ''}"
    _write(output, data, mode=_mode_of(output, default=0o644))
    _note(f"encrypted {len(document.entries)} names for {whom} to {output}")
    if args.input != "-":
        _note(f"the plaintext {args.input} is still there: delete it once you have checked")
    return 0


def _write(path: Path, data: bytes, *, mode: int) -> None:
    try:
        write_atomic(path, data, mode=mode)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


def _mode_of(path: Path, *, default: int) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return default & ~umask


def _open(args: argparse.Namespace) -> DecryptedSecrets:
    """Decrypt the file the options (or the environment, or the config) name."""
    process_env = dict(os.environ)
    config = args.config or process_env.get(ENV_CONFIG)
    config_file = Path(config).expanduser().absolute() if config else None
    env_file = _locate_env_file(args.env_file or process_env.get(ENV_ENV_FILE), config_file)
    file_env = _read_env_file(env_file) if env_file else {}
    keys = KeySources.take(process_env, file_env, clear_process_environ=True)
    if args.identity:
        keys = KeySources(identity_file=absolute_path(args.identity))
    if args.passphrase_file:
        keys = KeySources(
            identity_file=keys.identity_file,
            identity=keys.identity,
            passphrase_file=absolute_path(args.passphrase_file),
        )
    if args.file:
        path = Path(os.path.abspath(Path(args.file).expanduser()))
    else:
        section = SecretsSettings()
        if config_file is not None:
            raw = _read_toml(config_file).get("secrets", {})
            try:
                section = SecretsSettings.model_validate(raw)
            except ValueError:
                raise ConfigError(f"config file {config_file}: invalid [secrets] table") from None
        env = {**{k: v for k, v in file_env.items() if v}, **process_env}
        base = config_file.parent if config_file else Path.cwd()
        found = configured_path(env, section.encrypted_file, base)
        if found is None:
            raise ConfigError(
                f"which file? give -f FILE, set {ENV_SECRETS_FILE}, or [secrets] "
                "encrypted_file in --config"
            )
        path = found
    return decrypt(path, keys)


def cmd_list(args: argparse.Namespace) -> int:
    for name in _open(args).names:
        print(name)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    opened = _open(args)
    for name in opened.names:
        print(name)
    count = len(opened.names)
    _note(f"{opened.path}: OK, {count} name{'s' if count != 1 else ''}, key: {opened.key.source}")
    return 0


def _read_value(name: str) -> str:
    if sys.stdin.isatty():
        value = getpass.getpass(f"{name} (not echoed): ", stream=sys.stderr)
    else:
        value = sys.stdin.read()
        value = value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")
    if not value:
        raise ConfigError(f"no value for {name} on stdin; nothing was changed")
    return value


def cmd_set(args: argparse.Namespace) -> int:
    name = args.name
    if not dotenv_strict.NAME.fullmatch(name):
        raise ConfigError(
            f"{name!r} is not a NAME: letters, digits and '_', not starting with a digit"
        )
    opened = _open(args)
    value = _read_value(name)
    text = dotenv_strict.replace(opened.document, name, value)
    if opened.key.passphrase is not None:
        data = encrypt(text, passphrase=opened.key.passphrase)
        whom = "the same passphrase"
    else:
        recipients = _recipients(args) or list(opened.recorded_recipients)
        if not recipients:
            recipients = list(opened.key.recipients)
            _note(
                "the file records no recipients: re-encrypting for the identity used only "
                "(pass -r for every recipient to keep others' access)"
            )
        data = encrypt(
            with_recipient_comments(dotenv_strict.parse(text), recipients), recipients=recipients
        )
        whom = f"{len(recipients)} recipient{'s' if len(recipients) != 1 else ''}"
    verb = "replaced" if name in opened.names else "added"
    _write(opened.path, data, mode=_mode_of(opened.path, default=0o644))
    _note(f"{verb} {name} in {opened.path} (encrypted for {whom})")
    return 0
