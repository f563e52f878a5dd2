"""Where the built artifacts are, and what to do when one is missing.

Locally a missing artifact, or one older than the sources it is built from (several
people edit this tree; testing a stale build reports bugs already fixed), skips its
tests with the command that builds it. In CI (`CI=true`, set by .ci/run, which builds
everything first) either is a failure: the end-to-end tests of the binary and the image
must never silently not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from mcp_fileserver.print_config import BINARY_RELATIVE_PATH, DOCKER_IMAGE

REPO = Path(__file__).resolve().parents[2]
ENV_BINARY = "MCP_FILESERVER_BINARY"
ENV_ONEFILE = "MCP_FILESERVER_ONEFILE_BINARY"
ENV_IMAGE = "MCP_FILESERVER_IMAGE"
ONEFILE_RELATIVE_PATH = Path("dist") / "onefile" / "mcp-fileserver"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(problem: str, how: str) -> None:
    """Skip (locally) or fail (in CI) because an artifact is absent or stale."""
    if in_ci():
        pytest.fail(f"in CI, {problem}: {how}", pytrace=False)
    pytest.skip(f"{problem}: {how}")


def sources_mtime(*extra: str) -> float:
    """The newest modification time of what the artifacts are built from."""
    paths = [*(REPO / "mcp_fileserver").rglob("*.py"), REPO / "pyproject.toml"]
    paths += [*(REPO / "config" / "pyinstaller").iterdir(), *(REPO / e for e in extra)]
    return max(p.stat().st_mtime for p in paths if p.is_file())


def frozen_binary() -> Path:
    path = Path(os.environ.get(ENV_BINARY) or REPO / BINARY_RELATIVE_PATH).absolute()
    if not (path.is_file() and os.access(path, os.X_OK)):
        missing(f"{path} is not built", f"run `make binary` or set {ENV_BINARY}")
    elif not os.environ.get(ENV_BINARY) and path.stat().st_mtime < sources_mtime():
        missing(f"{path} is older than the sources", "run `make binary`")
    return path


def onefile_binary() -> Path:
    path = Path(os.environ.get(ENV_ONEFILE) or REPO / ONEFILE_RELATIVE_PATH).absolute()
    # Optional everywhere, CI included: .ci/run builds only the one-folder bundle (the
    # one-file build has the same analysis, only its packaging differs).
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip(f"{path} is not built: run `make binary-onefile` or set {ENV_ONEFILE}")
    if not os.environ.get(ENV_ONEFILE) and path.stat().st_mtime < sources_mtime():
        pytest.skip(f"{path} is older than the sources: run `make binary-onefile`")
    return path


def docker_image() -> str:
    image = os.environ.get(ENV_IMAGE) or DOCKER_IMAGE
    if shutil.which("docker") is None:
        missing("there is no docker command", "install Docker, then run `make docker`")
    probe = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        missing(f"the image {image} is not built", f"run `make docker` or set {ENV_IMAGE}")
    if not os.environ.get(ENV_IMAGE) and image_created(image) < sources_mtime("Dockerfile"):
        missing(f"the image {image} is older than the sources", "run `make docker`")
    return image


def image_created(image: str) -> float:
    created = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Created}}", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # RFC 3339 with nanoseconds; fromisoformat takes at most microseconds.
    created = re.sub(r"(\.\d{6})\d*", r"\1", created).replace("Z", "+00:00")
    return datetime.fromisoformat(created).timestamp()
