"""What the project really provides, read from its sources, and checks of a Claude
Desktop server entry against it (used for the examples and for `print-config`)."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp_fileserver import cli, print_config
from tests.packaging.artifacts import REPO

DOCKERFILE = REPO / "Dockerfile"
SPEC = REPO / "config" / "pyinstaller" / "mcp-fileserver.spec"
MAKEFILE = REPO / "Makefile"

# The strict `docker run` flags of issue 5, written out literally: the image, the examples,
# print-config and docs/deploy.md must all agree with this line.
STRICT_RUN = [
    "-i",
    "--rm",
    "--init",
    "--read-only",
    "--tmpfs",
    "/tmp:rw,noexec,nosuid,size=64m",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--network",
    "none",
    "--user",
    "10001:10001",
]

# `docker run` options an example may use, and whether each takes a value.
DOCKER_RUN_OPTIONS = {
    "-i": False,
    "--interactive": False,
    "--rm": False,
    "--init": False,
    "--read-only": False,
    "--tmpfs": True,
    "--cap-drop": True,
    "--security-opt": True,
    "--network": True,
    "--user": True,
    "-v": True,
    "--volume": True,
    "-e": True,
    "--env": True,
    "--name": True,
}
TTY_OPTIONS = {"-t", "--tty", "-it", "-ti"}


def console_script_name() -> str:
    with (REPO / "pyproject.toml").open("rb") as fh:
        scripts = tomllib.load(fh)["project"]["scripts"]
    (name,) = [k for k, v in scripts.items() if v == "mcp_fileserver.cli:main"]
    return name


def spec_app_name() -> str:
    match = re.search(r'^APP_NAME = "([^"]+)"$', SPEC.read_text(), re.M)
    assert match, "the spec must define APP_NAME"
    return match.group(1)


def dockerfile_instruction(keyword: str) -> list[str]:
    """The arguments of each `KEYWORD ...` line of the final stage (continuations joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    final_stage = text.rsplit("\nFROM ", 1)[1]
    return [
        line.split(None, 1)[1].strip()
        for line in final_stage.splitlines()
        if line.split(None, 1)[:1] == [keyword] and len(line.split(None, 1)) == 2
    ]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in dockerfile_instruction("ENV"):
        for pair in line.split():
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def parse_server_args(args: list[str]) -> argparse.Namespace:
    """Parse with the real command line parser; a bad option fails the test."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return cli.build_parser().parse_args(args)
    except SystemExit as exc:
        raise AssertionError(f"{args} is not a valid command line: {stderr.getvalue()}") from exc


@dataclass
class DockerRun:
    options: list[tuple[str, str | None]] = field(default_factory=list)
    image: str = ""
    command: list[str] = field(default_factory=list)

    def values(self, option: str) -> list[str]:
        return [v for k, v in self.options if k == option and v is not None]

    def flags(self) -> list[str]:
        """The options flattened back, in order (for comparing with STRICT_RUN)."""
        out: list[str] = []
        for key, value in self.options:
            out += [key] if value is None else [key, value]
        return out


def split_docker_run(args: list[str]) -> DockerRun:
    assert args[:1] == ["run"], f"docker args must start with run: {args}"
    run = DockerRun()
    i = 1
    while i < len(args) and args[i].startswith("-"):
        option = args[i]
        assert option not in TTY_OPTIONS, "never -t for stdio: a TTY corrupts JSON-RPC"
        assert option in DOCKER_RUN_OPTIONS, f"unexpected docker run option {option}"
        if DOCKER_RUN_OPTIONS[option]:
            run.options.append((option, args[i + 1]))
            i += 2
        else:
            run.options.append((option, None))
            i += 1
    assert i < len(args), "no image in docker run"
    run.image, run.command = args[i], args[i + 1 :]
    return run


def check_serve_args(args: list[str]) -> argparse.Namespace:
    """Arguments that make the server serve, with absolute paths (Claude Desktop's working
    directory is unspecified)."""
    parsed = parse_server_args(args)
    assert parsed.handler is cli.cmd_serve, f"{args} would not serve"
    for value in [*parsed.allow, parsed.config, parsed.log_dir, parsed.env_file]:
        if value:
            assert Path(value).is_absolute(), f"{value} must be absolute"
    for spec in parsed.db:
        name, _, url = spec.partition("=")
        assert name and url, spec
        if url.startswith("sqlite:"):
            assert url.startswith("sqlite:////"), f"{spec}: SQLite path must be absolute"
    assert parsed.allow or parsed.config or parsed.db, "nothing to serve"
    return parsed


def check_installed_entry(entry: dict[str, Any]) -> argparse.Namespace:
    command = Path(entry["command"])
    assert command.is_absolute(), "the command must be an absolute path"
    if command.name == console_script_name():
        return check_serve_args(entry["args"])
    assert entry["args"][:2] == ["-m", "mcp_fileserver"], entry
    return check_serve_args(entry["args"][2:])


def check_binary_entry(entry: dict[str, Any]) -> argparse.Namespace:
    command = Path(entry["command"])
    name = spec_app_name()
    assert command.is_absolute(), "the command must be an absolute path"
    # The one-folder layout of the spec: <folder APP_NAME>/<executable APP_NAME>.
    assert (command.parent.name, command.name) == (name, name), command
    return check_serve_args(entry["args"])


def check_docker_entry(entry: dict[str, Any], *, network: bool = False) -> DockerRun:
    assert entry["command"] == "docker"
    run = split_docker_run(entry["args"])
    expected = list(STRICT_RUN)
    if network:
        at = expected.index("--network")
        del expected[at : at + 2]
    flags = run.flags()
    assert flags[: len(expected)] == expected, f"strict flags expected first: {flags}"
    (user,) = dockerfile_instruction("USER")
    assert run.values("--user") == [user]
    env = dockerfile_env()
    mounts = [v.split(":") for v in run.values("-v")]
    for parts in mounts:
        assert len(parts) in (2, 3), parts
        assert Path(parts[1]).is_absolute(), parts
    targets = {parts[1]: parts for parts in mounts}
    assert env["MCP_FILESERVER_LOG_DIR"] in targets, "the audit log folder must be mounted"
    assert targets[env["MCP_FILESERVER_LOG_DIR"]][2:] == [], "the log mount must be writable"
    for parts in mounts:
        if parts[1] != env["MCP_FILESERVER_LOG_DIR"]:
            assert parts[2:] == ["ro"], f"{parts}: everything but the log is read-only"
            source = parts[0]
            assert source.startswith("/"), f"{parts}: mount a host path, not a volume"
    assert run.image.split(":")[0] == print_config.DOCKER_IMAGE.split(":")[0]
    parsed = check_serve_args(run.command)
    for directory in parsed.allow:
        assert any(directory == t or directory.startswith(t + "/") for t in targets), (
            f"--allow {directory} is not mounted"
        )
    for spec in parsed.db:
        url = spec.partition("=")[2]
        if url.startswith("sqlite:"):
            assert url.removeprefix("sqlite:///") in targets, f"{spec} is not mounted"
    return run


CHECKS = {
    "installed": check_installed_entry,
    "binary": check_binary_entry,
    "docker": check_docker_entry,
}


def single_entry(config: dict[str, Any]) -> dict[str, Any]:
    servers = config["mcpServers"]
    assert list(servers) == [print_config.DEFAULT_SERVER_NAME], servers
    entry = servers[print_config.DEFAULT_SERVER_NAME]
    assert set(entry) <= {"command", "args", "env"}, entry
    assert all(isinstance(a, str) for a in entry["args"])
    return entry
