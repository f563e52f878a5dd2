"""Ready to publish: `python -m build` makes a wheel and an sdist that pass `twine check`,
carry only what they should, install into a fresh environment from the hashed lock and
serve a real stdio session; `uv tool install` from a checkout gives a working command.

The builds run without isolation on the pinned backend (hatchling is in the dev lock); the
fresh environments take their dependencies from config/lock/runtime.txt through uv, which
needs the package index (or uv's cache), as CI has.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from mcp_fileserver import __version__
from tests.packaging import session
from tests.packaging.artifacts import in_ci

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = REPO / "config" / "lock" / "runtime.txt"
UV = Path(sys.executable).parent / "uv"


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=300, check=False, **kwargs
    )
    assert result.returncode == 0, f"{argv[:4]} failed:\n{result.stdout}\n{result.stderr}"
    return result


def uv() -> Path:
    if not UV.is_file():
        reason = f"{UV} is missing: run `make install` (uv is a dev dependency)"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    return UV


def uv_env(base: Path) -> dict[str, str]:
    """uv confined to `base`: its tools and their commands, never a Python download."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCP_FILESERVER_", "UV_"))}
    env |= {
        "UV_TOOL_DIR": str(base / "tools"),
        "UV_TOOL_BIN_DIR": str(base / "bin"),
        "UV_PYTHON_DOWNLOADS": "never",
        # The platform's trust store, as pip uses: behind a TLS-inspecting proxy its CA is
        # there, not in uv's bundled roots.
        "UV_SYSTEM_CERTS": "1",
        "VIRTUAL_ENV": "",
    }
    return env


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel); `python -m build` builds the wheel from the sdist, which proves the
    sdist holds everything a build needs."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)])
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def test_twine_check_passes(dists: tuple[Path, Path]) -> None:
    result = run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dists)])
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_names_and_versions(dists: tuple[Path, Path]) -> None:
    sdist, wheel = dists
    assert sdist.name == f"mcp_fileserver-{__version__}.tar.gz"
    assert wheel.name == f"mcp_fileserver-{__version__}-py3-none-any.whl"


def test_the_wheel_holds_the_package_only(dists: tuple[Path, Path]) -> None:
    names = zipfile.ZipFile(dists[1]).namelist()
    dist_info = f"mcp_fileserver-{__version__}.dist-info/"
    assert all(n.startswith(("mcp_fileserver/", dist_info)) for n in names), names
    assert "mcp_fileserver/__main__.py" in names
    assert f"{dist_info}entry_points.txt" in names


def test_the_sdist_leaves_out_local_state(dists: tuple[Path, Path]) -> None:
    with tarfile.open(dists[0]) as archive:
        names = [n.split("/", 1)[1] for n in archive.getnames() if "/" in n]
    assert "pyproject.toml" in names and "config/lock/runtime.txt" in names
    local = (".venv/", "node_modules/", "dist/", "build/", ".git/", "__pycache__/")
    assert not [n for n in names if any(part in f"{n}/" for part in local)]
    assert not [n for n in names if n.endswith((".env", ".crt", ".pem", ".db"))]


async def test_the_wheel_installs_into_a_fresh_environment_and_serves(
    dists: tuple[Path, Path], tmp_path: Path
) -> None:
    env_dir = tmp_path / "env"
    run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)])
    python = str(env_dir / "bin" / "python")
    uv_args = {"env": uv_env(tmp_path), "cwd": str(tmp_path)}
    install = [str(uv()), "pip", "install", "--python", python, "--quiet"]
    run([*install, "--require-hashes", "-r", str(RUNTIME_LOCK)], **uv_args)
    run([*install, "--no-deps", str(dists[1])], **uv_args)
    run([str(uv()), "pip", "check", "--python", python], **uv_args)
    await serve_a_session(env_dir / "bin" / "mcp-fileserver", tmp_path / "ws")


async def test_uv_tool_install_from_a_checkout_serves(tmp_path: Path) -> None:
    """The README's `uv tool install .` (with the lock as constraints), run as documented."""
    install = [str(uv()), "tool", "install", "--python", sys.executable]
    run([*install, "-c", str(RUNTIME_LOCK), str(REPO)], env=uv_env(tmp_path), cwd=str(tmp_path))
    command = tmp_path / "bin" / "mcp-fileserver"
    version = run([str(command), "--version"])
    assert version.stdout.strip() == f"mcp-fileserver {__version__}"
    await serve_a_session(command, tmp_path / "ws")


async def serve_a_session(command: Path, base: Path) -> None:
    """Every tool once, the attacks refused, the audit log written."""
    base.mkdir()
    ws = session.Workspace(base)
    args = ["--allow", str(ws.root), "--db", f"app=sqlite:///{ws.db}", "--log-dir", str(ws.logs)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    if os.geteuid() == 0:
        env["MCP_FILESERVER_ALLOW_ROOT"] = "1"
    transport = StdioTransport(
        command=str(command), args=args, env=env, cwd=str(base), keep_alive=False
    )
    async with Client(transport) as client:
        called = await session.exercise(client, str(ws.root))
    session.check_audit(ws, called)
