"""The hashed lockfiles (config/lock/, `make lock`) match pyproject.toml, and the check
that `make install` runs (.ci/lockcheck.py) catches each way they can drift apart."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]


def lockcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lockcheck", REPO / ".ci" / "lockcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """pyproject.toml and config/lock/ in a scratch folder, to be edited."""
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    shutil.copytree(REPO / "config" / "lock", tmp_path / "config" / "lock")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_lock_matches_pyproject() -> None:
    assert lockcheck().problems(REPO) == []


def test_every_pin_carries_hashes() -> None:
    for lock in (REPO / "config" / "lock").glob("*.txt"):
        text = lock.read_text()
        pins = [line for line in text.splitlines() if "==" in line and not line[0].isspace()]
        assert pins, lock
        assert text.count("--hash=sha256:") >= len(pins), lock


def test_a_new_dependency_needs_a_new_lock(copy: Path) -> None:
    edit(
        copy / "pyproject.toml",
        "dependencies = [\n",
        'dependencies = [\n  "no-such-package-here>=1.2",\n',
    )
    assert lockcheck().problems(copy) == [
        f"config/lock/{name}.txt lacks no-such-package-here>=1.2"
        for name in ("dev", "freeze", "runtime")
    ]


def test_a_raised_bound_needs_a_new_lock(copy: Path) -> None:
    first = tomllib.loads((copy / "pyproject.toml").read_text())["project"]["dependencies"][0]
    name = Requirement(first).name
    edit(copy / "pyproject.toml", f'"{first}"', f'"{name}>=9999"')
    found = lockcheck().problems(copy)
    assert any(p.startswith(f"config/lock/freeze.txt pins {name}==") for p in found), found


def test_a_dropped_dependency_needs_a_new_lock(copy: Path) -> None:
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(re.sub(r'\n\s*"google-re2[^"]*",', "", pyproject.read_text()))
    found = lockcheck().problems(copy)
    assert "config/lock/runtime.txt still pins google-re2, which pyproject.toml dropped" in found


def test_a_new_dev_tool_needs_only_the_dev_lock(copy: Path) -> None:
    edit(copy / "pyproject.toml", "dev = [\n", 'dev = [\n  "no-such-dev-tool>=1",\n')
    assert lockcheck().problems(copy) == ["config/lock/dev.txt lacks no-such-dev-tool>=1"]


def test_the_command_names_the_fix(copy: Path) -> None:
    edit(
        copy / "pyproject.toml",
        "dependencies = [\n",
        'dependencies = [\n  "no-such-package-here",\n',
    )
    (copy / ".ci").mkdir()
    shutil.copy(REPO / ".ci" / "lockcheck.py", copy / ".ci")
    result = subprocess.run(
        [sys.executable, str(copy / ".ci" / "lockcheck.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1].endswith("run `make lock` and commit config/lock/")
