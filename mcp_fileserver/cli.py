"""Command line: `mcp-fileserver [serve]`, `check`, `secrets ...`, `--version`.

With no subcommand the server speaks MCP over stdio. Every option has an environment
twin (see config.py); the command line wins. Configuration errors print one line on
stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mcp_fileserver import __version__, print_config, secrets_cli
from mcp_fileserver.config import CliOptions, Settings, load_settings
from mcp_fileserver.errors import ConfigError

PROG = "mcp-fileserver"


def _add_config_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The configuration options, accepted before or after the subcommand."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--config",
        # --config-file / -c: the MCP Inspector's CLI takes --config for itself.
        "--config-file",
        "-c",
        dest="config",
        metavar="FILE",
        default=default(None),
        help="TOML configuration file (env MCP_FILESERVER_CONFIG); also --config-file or -c, "
        "which pass through clients that take --config themselves (the MCP Inspector)",
    )
    parser.add_argument(
        "--allow",
        metavar="DIR",
        action="append",
        default=default([]),
        help="allow reading beneath DIR; repeatable; replaces configured dirs "
        "(env MCP_FILESERVER_ALLOWED_DIRS, os.pathsep-separated)",
    )
    parser.add_argument(
        "--db",
        metavar="NAME=URL",
        action="append",
        default=default([]),
        help="a database: sqlite:///file.db, postgresql://user@host/db, "
        "mariadb://user@host/db or mysql://user@host/db; "
        "repeatable (env MCP_FILESERVER_DB_<NAME>=URL)",
    )
    parser.add_argument(
        "--log-dir",
        metavar="DIR",
        default=default(None),
        help="audit log folder (env MCP_FILESERVER_LOG_DIR)",
    )
    parser.add_argument(
        "--env-file",
        metavar="FILE",
        default=default(None),
        help="dotenv file (env MCP_FILESERVER_ENV_FILE); default: .env beside the config file",
    )
    parser.add_argument(
        "--sandbox",
        choices=("off", "on", "require"),
        default=default(None),
        help="kernel sandbox after startup (env MCP_FILESERVER_SANDBOX)",
    )
    parser.add_argument(
        "--allow-root",
        action="store_true",
        default=default(False),
        help="permit running as root (not recommended; env MCP_FILESERVER_ALLOW_ROOT=1)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A security-first, read-only MCP server for files and SQL databases. "
        "With no command it serves MCP over stdio.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_config_options(parser, suppress=False)
    parser.set_defaults(handler=cmd_serve)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve MCP over stdio (the default)")
    _add_config_options(serve, suppress=True)
    serve.set_defaults(handler=cmd_serve)

    check = sub.add_parser(
        "check", help="validate the configuration and print the effective settings, secrets masked"
    )
    _add_config_options(check, suppress=True)
    check.set_defaults(handler=cmd_check)

    printer = sub.add_parser(
        "print-config",
        help="print a ready claude_desktop_config.json snippet for this machine "
        "(absolute paths, the allowed directories of the options given)",
    )
    print_config.add_arguments(printer)
    _add_config_options(printer, suppress=True)
    printer.set_defaults(handler=cmd_print_config)

    verify = sub.add_parser(
        "verify-log",
        help="check the audit log's hash chain (all files, rotated and compressed); "
        "exit 1 naming the first bad record",
    )
    verify.add_argument(
        "dir", nargs="?", metavar="DIR", help="audit log folder (default: the configured one)"
    )
    verify.add_argument(
        "--hmac-key-env",
        metavar="VAR",
        help="environment variable holding the HMAC key (default: [audit] hmac_key)",
    )
    verify.add_argument(
        "--checkpoints",
        metavar="FILE",
        help="captured stderr or syslog holding 'audit checkpoint' lines: each must be "
        "found in the chain with its hash (detects a cut tail, a deleted file, a rewrite)",
    )
    verify.add_argument(
        "--checkpoint-pubkey",
        metavar="HEX",
        help="Ed25519 public key (printed at start): every checkpoint must be signed by it",
    )
    _add_config_options(verify, suppress=True)
    verify.set_defaults(handler=cmd_verify_log)

    secrets_cli.add_parser(sub)
    return parser


def cli_options(args: argparse.Namespace) -> CliOptions:
    return CliOptions(
        config=args.config,
        allow=tuple(args.allow),
        db=tuple(args.db),
        log_dir=args.log_dir,
        env_file=args.env_file,
        sandbox=args.sandbox,
        allow_root=args.allow_root,
    )


def fail(message: str, code: int = 2) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def with_settings(
    run: Callable[[argparse.Namespace, Settings], int],
) -> Callable[[argparse.Namespace], int]:
    """Load the settings or turn a `ConfigError` into one stderr line and exit code 2."""

    def handler(args: argparse.Namespace) -> int:
        try:
            settings = load_settings(cli_options(args))
        except ConfigError as exc:
            if args.handler is cmd_serve:
                _record_config_error(args, str(exc))
            return fail(str(exc), ConfigError.exit_code)
        return run(args, settings)

    return handler


def _record_config_error(args: argparse.Namespace, message: str) -> None:
    """A `config_error` audit record, when the log folder is known without the config:
    given by --log-dir / MCP_FILESERVER_LOG_DIR, or the default one if it already exists."""
    from mcp_fileserver.audit.lifecycle import record_config_error
    from mcp_fileserver.config import ENV_LOG_DIR, default_log_dir

    explicit = args.log_dir or os.environ.get(ENV_LOG_DIR)
    folder = Path(explicit).expanduser().absolute() if explicit else default_log_dir()
    if explicit or folder.is_dir():
        record_config_error(folder, message)


def cmd_verify_log(args: argparse.Namespace) -> int:
    from mcp_fileserver.audit.verify import verify_folder

    settings: Settings | None = None
    try:
        settings = load_settings(cli_options(args))
    except ConfigError as exc:
        if args.dir is None:
            return fail(f"{exc} (or name the folder: verify-log DIR)", ConfigError.exit_code)
    folder = Path(args.dir) if args.dir else settings.log_dir  # type: ignore[union-attr]
    key = settings.hmac_key if settings else None
    if args.hmac_key_env:
        key = os.environ.get(args.hmac_key_env)
        if not key:
            return fail(f"--hmac-key-env: {args.hmac_key_env} is not set")
    checkpoints: list[tuple[int, str]] = []
    if args.checkpoints:
        from mcp_fileserver.audit.checkpoint import parse_checkpoints

        try:
            text = Path(args.checkpoints).read_text(encoding="utf-8", errors="replace")
            found = parse_checkpoints(text, args.checkpoint_pubkey)
        except (OSError, ValueError) as exc:
            return fail(f"--checkpoints: {exc}")
        here = str(folder.expanduser().absolute())
        found = [c for c in found if c.folder in ("", here)]
        if args.checkpoint_pubkey and not all(c.valid for c in found):
            print(f"FAIL: {sum(not c.valid for c in found)} checkpoint(s) not signed by that key")
            return 1
        checkpoints = [(c.seq, c.hash) for c in found]
        if not checkpoints:
            return fail(f"--checkpoints: no checkpoint of {here} in {args.checkpoints}")
    verdict = verify_folder(folder, key, checkpoints)
    for note in verdict.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    print(verdict.summary())
    return 0 if verdict.ok else 1


@with_settings
def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_fileserver.startup_gc import collector_paused

    with collector_paused():  # the framework's import: see startup_gc.py
        from mcp_fileserver.runner import serve

    try:
        return serve(settings)
    except ConfigError as exc:  # e.g. root without --allow-root, `--sandbox require` unmet
        if settings.audit.enabled:
            from mcp_fileserver.audit.lifecycle import record_config_error

            record_config_error(settings.log_dir, str(exc), settings.audit, settings.hmac_key)
        return fail(str(exc), ConfigError.exit_code)


@with_settings
def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from mcp_fileserver.sandbox import plan_sandbox

    print(
        json.dumps(
            settings.describe() | {"sandbox_plan": plan_sandbox(settings).as_dict()}, indent=2
        )
    )
    from mcp_fileserver.sql.check import database_findings

    findings = database_findings(settings)
    for finding in findings:
        print(f"{PROG}: {finding.level}: {finding.text}", file=sys.stderr)
    if any(finding.level == "error" for finding in findings):
        print(f"{PROG}: configuration refused", file=sys.stderr)
        return 1
    print(f"{PROG}: configuration OK", file=sys.stderr)
    return 0


@with_settings
def cmd_print_config(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return print_config.run(args, settings, cli_options(args))
    except ConfigError as exc:
        return fail(str(exc), ConfigError.exit_code)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))
