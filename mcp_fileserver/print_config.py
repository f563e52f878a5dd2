"""`mcp-fileserver print-config claude [--mode installed|binary|docker]`.

Prints a `claude_desktop_config.json` snippet filled in for this machine: the absolute
path of the command, and the allowed directories, databases and log folder of the
current settings (so `print-config claude --allow ~/Documents` prints what serving with
`--allow ~/Documents` would do). Claude Desktop starts servers with an unspecified
working directory and a minimal environment, so every path is made absolute and every
option is spelled out on the command line.

The Docker constants below are the image's contract (Dockerfile: user, mount points,
entry point); the examples in `config/claude_desktop/` and the tests use them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from mcp_fileserver import __version__
from mcp_fileserver.config import (
    ENV_DB_PREFIX,
    ENV_LOG_DIR,
    CliOptions,
    DatabaseConfig,
    Settings,
)
from mcp_fileserver.errors import ConfigError
from mcp_fileserver.secrets import REFERENCE

PROG = "mcp-fileserver"
MODES = ("installed", "binary", "docker")
CLIENTS = ("claude",)
DEFAULT_SERVER_NAME = "mcp-fileserver"

DOCKER_IMAGE = f"mcp-fileserver:{__version__}"
DOCKER_USER = "10001:10001"
DOCKER_DATA = "/data"
DOCKER_LOGS = "/logs"
DOCKER_DB = "/db"
DOCKER_CONFIG = "/config/config.toml"
DOCKER_ENV_FILE = "/config/server.env"
DOCKER_IMPLIED_ENV_FILE = "/config/.env"  # beside DOCKER_CONFIG, so --config implies it
DOCKER_LOG_VOLUME = "mcp-fileserver-logs"
# `docker run` flags for stdio under the strictest settings (docs/deploy.md explains each).
# Never `-t`: a TTY would mangle the JSON-RPC stream.
DOCKER_NO_NETWORK = ("--network", "none")
DOCKER_STRICT_FLAGS = (
    "-i",
    "--rm",
    "--init",
    "--read-only",
    "--tmpfs",
    "/tmp:rw,noexec,nosuid,size=64m",  # noqa: S108 - a private tmpfs inside the container
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    *DOCKER_NO_NETWORK,
    "--user",
    DOCKER_USER,
)

# Where `make binary` puts the one-folder build, relative to the source checkout.
BINARY_RELATIVE_PATH = Path("dist") / PROG / PROG


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("client", choices=CLIENTS, help="the MCP client to configure")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="how the client starts the server: the installed command, the frozen "
        "executable, or the Docker image (default: binary when run from the frozen "
        "executable, else installed)",
    )
    parser.add_argument(
        "--name",
        default=DEFAULT_SERVER_NAME,
        help=f"the server's key under mcpServers (default {DEFAULT_SERVER_NAME})",
    )
    parser.add_argument(
        "--executable",
        metavar="PATH",
        default=None,
        help="the frozen executable for --mode binary (default: this executable when "
        f"frozen, else {BINARY_RELATIVE_PATH} in the source checkout)",
    )
    parser.add_argument(
        "--image",
        default=DOCKER_IMAGE,
        help=f"the image for --mode docker (default {DOCKER_IMAGE})",
    )


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def running_as_root() -> bool:
    return os.geteuid() == 0


def run(args: argparse.Namespace, settings: Settings, cli: CliOptions) -> int:
    """Print the snippet on stdout; notes for the operator go to stderr."""
    mode = args.mode or ("binary" if is_frozen() else "installed")
    notes: list[str] = []
    if mode == "docker":
        entry = docker_entry(settings, cli, image=args.image, notes=notes)
    else:
        command = binary_command(args.executable) if mode == "binary" else installed_command()
        entry = {"command": command[0], "args": [*command[1:], *server_args(settings, cli)]}
    args_list = entry["args"]
    assert isinstance(args_list, list)
    snippet = {"mcpServers": {args.name: entry}}
    print(json.dumps(snippet, indent=2))
    for variable in sorted(referenced_variables(args_list)):
        notes.append(
            f'${{{variable}}} must be set where the server runs (an "env" entry for '
            f"{args.name} in claude_desktop_config.json, the env file, or /run/secrets/{variable})"
        )
    if mode != "docker" and running_as_root() and not settings.sandbox.allow_root:
        notes.append(ROOT_SNIPPET_NOTE)
    for note in notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    return 0


# The snippet runs as whoever runs the client, which is usually not who ran print-config;
# but a root client would start a server that refuses root, so say it here.
ROOT_SNIPPET_NOTE = (
    "you ran print-config as root: if your MCP client runs as root too, this server will "
    "refuse to start; run the client as an unprivileged user (recommended), or add "
    '"--allow-root" to its args (or set [sandbox] allow_root = true)'
)


def installed_command() -> list[str]:
    """The installed console script, else this interpreter running the package."""
    if is_frozen():
        return [str(Path(sys.executable).absolute())]
    beside = Path(sys.executable).parent / PROG
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside.absolute())]
    found = shutil.which(PROG)
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "mcp_fileserver"]


def binary_command(explicit: str | None) -> list[str]:
    if explicit:
        candidates = [Path(explicit).expanduser()]
    elif is_frozen():
        candidates = [Path(sys.executable)]
    else:
        checkout = Path(__file__).resolve().parents[1]
        candidates = [checkout / BINARY_RELATIVE_PATH, Path.cwd() / BINARY_RELATIVE_PATH]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate.absolute())]
    raise ConfigError(
        f"no frozen executable at {candidates[0]}: build it with `make binary` "
        "or name it with --executable PATH"
    )


def server_args(settings: Settings, cli: CliOptions) -> list[str]:
    """Options that make the server run with these settings from any directory."""
    args: list[str] = []
    if settings.config_file is not None:
        args += ["--config", str(settings.config_file)]
    if _explicit_env_file(settings):
        args += ["--env-file", str(settings.env_file)]
    for directory in settings.allowed_dirs:
        args += ["--allow", str(directory)]
    for name, url in _database_overrides(settings, cli).items():
        args += ["--db", f"{name}={url}"]
    args += ["--log-dir", str(settings.log_dir.absolute())]
    args += _sandbox_args(settings)
    if settings.sandbox.allow_root:
        args.append("--allow-root")
    return args


def docker_entry(
    settings: Settings, cli: CliOptions, *, image: str, notes: list[str]
) -> dict[str, object]:
    """`docker run` with the strict flags, each host path mounted read-only."""
    mounts: list[str] = []
    inner: list[str] = []
    if settings.config_file is not None:
        mounts.append(_volume(settings.config_file, DOCKER_CONFIG, read_only=True))
        inner += ["--config", DOCKER_CONFIG]
    if settings.env_file is not None and _explicit_env_file(settings):
        mounts.append(_volume(settings.env_file, DOCKER_ENV_FILE, read_only=True))
        inner += ["--env-file", DOCKER_ENV_FILE]
    elif settings.env_file is not None:
        mounts.append(_volume(settings.env_file, DOCKER_IMPLIED_ENV_FILE, read_only=True))
    targets = _data_targets(settings.allowed_dirs)
    for host, container in zip(settings.allowed_dirs, targets, strict=True):
        mounts.append(_volume(host, container, read_only=True))
        inner += ["--allow", container]
    overrides = _database_overrides(settings, cli)
    for db in settings.databases:
        if db.engine == "sqlite" and db.path is not None:
            target = f"{DOCKER_DB}/{db.name}{db.path.suffix}"
            mounts.append(_volume(db.path, target, read_only=True))
            inner += ["--db", f"{db.name}=sqlite:///{target}"]
        elif db.name in overrides:
            inner += ["--db", f"{db.name}={overrides[db.name]}"]
    if cli.log_dir or _log_dir_from_environment():
        mounts.append(_volume(settings.log_dir.absolute(), DOCKER_LOGS, read_only=False))
        notes.append(
            f"the container writes the audit log as user {DOCKER_USER}: "
            f"run `chown {DOCKER_USER} {settings.log_dir.absolute()}` once"
        )
    else:
        mounts.append(f"{DOCKER_LOG_VOLUME}:{DOCKER_LOGS}")
    inner += _sandbox_args(settings)

    flags = list(DOCKER_STRICT_FLAGS)
    if any(db.engine != "sqlite" for db in settings.databases):
        at = flags.index(DOCKER_NO_NETWORK[0])
        del flags[at : at + len(DOCKER_NO_NETWORK)]
        notes.append(
            "a database server is configured, so the container keeps a network "
            "(--network none is left out); `localhost` inside the container is the "
            "container itself, and password variables must reach it (docker -e VAR, "
            "or a secret file mounted at /run/secrets/VAR)"
        )
    volume_args = [arg for mount in mounts for arg in ("-v", mount)]
    return {
        "command": "docker",
        "args": ["run", *flags, *volume_args, image, *inner],
    }


def referenced_variables(args: Sequence[str]) -> set[str]:
    return {match.group(1) for arg in args for match in REFERENCE.finditer(arg)}


def _explicit_env_file(settings: Settings) -> bool:
    """An env file that the config file does not already imply (a `.env` beside it)."""
    if settings.env_file is None:
        return False
    if settings.config_file is None:
        return True
    return settings.env_file != settings.config_file.parent / ".env"


def _database_overrides(settings: Settings, cli: CliOptions) -> dict[str, str]:
    """Databases given on the command line or in the process environment, as URLs that
    work from any directory. (Those from the config or env file come with --config.)

    SQLite paths are made absolute; PostgreSQL URLs are repeated as given, which is
    safe: the settings refuse a literal password, so any password is a `${VAR}`.
    """
    raw: dict[str, str] = {
        key[len(ENV_DB_PREFIX) :].lower(): value
        for key, value in sorted(os.environ.items())
        if key.startswith(ENV_DB_PREFIX) and value
    }
    for spec in cli.db:
        name, _, url = spec.partition("=")
        raw[name] = url
    urls: dict[str, str] = {}
    for name, url in raw.items():
        db = settings.database(name)
        if db is not None:
            urls[name] = _portable_url(db, url)
    return urls


def _portable_url(db: DatabaseConfig, given: str) -> str:
    if db.engine == "sqlite" and db.path is not None:
        return f"sqlite:///{db.path}"
    return given


def _sandbox_args(settings: Settings) -> list[str]:
    default_mode = "on"
    return [] if settings.sandbox.mode == default_mode else ["--sandbox", settings.sandbox.mode]


def _log_dir_from_environment() -> bool:
    return bool(os.environ.get(ENV_LOG_DIR))


def _data_targets(directories: Sequence[Path]) -> list[str]:
    """`/data` for one directory; `/data/<name>` (made unique) for several."""
    if len(directories) == 1:
        return [DOCKER_DATA]
    targets: list[str] = []
    for directory in directories:
        base = directory.name or "root"
        candidate, n = base, 2
        while f"{DOCKER_DATA}/{candidate}" in targets:
            candidate, n = f"{base}-{n}", n + 1
        targets.append(f"{DOCKER_DATA}/{candidate}")
    return targets


def _volume(host: Path, container: str, *, read_only: bool) -> str:
    source = str(host.absolute())
    if ":" in source:
        raise ConfigError(
            f"{source} contains ':', which `docker run -v` cannot mount; "
            "move or link it to a path without ':'"
        )
    return f"{source}:{container}{':ro' if read_only else ''}"
