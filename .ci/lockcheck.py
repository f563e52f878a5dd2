"""Do the lockfiles in config/lock/ still match pyproject.toml? Offline, in milliseconds.

Run by `make install` (with the virtualenv's Python, after the lock is installed) and by the
test suite. Every requirement pyproject.toml declares for a lockfile's set must be pinned
there at a version it allows, and every pin that was there only because pyproject.toml asked
for it must still be asked for. Exit 1 with one line per problem and the command that fixes
them. (`pip check` after the install covers the transitive requirements.)
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PROJECT = "mcp-fileserver"
DIRECT = f"{PROJECT} (pyproject.toml)"
# Each lockfile and the extras it holds besides the runtime dependencies (see .ci/lock).
LOCKS: dict[str, tuple[str, ...]] = {
    "dev.txt": ("dev", "freeze"),
    "freeze.txt": ("freeze",),
    "runtime.txt": (),
}
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)")


def declared(project: dict[str, Any], extras: tuple[str, ...]) -> list[Requirement]:
    """The runtime dependencies plus those of `extras`, self-references expanded."""
    wanted, seen = list(extras), set()
    requirements = [Requirement(r) for r in project.get("dependencies", [])]
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in project.get("optional-dependencies", {}).get(extra, []):
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == PROJECT:
                wanted.extend(requirement.extras)
            else:
                requirements.append(requirement)
    return requirements


def pins(lock: Path) -> tuple[dict[str, str], set[str]]:
    """Name -> pinned version, and the names pinned only because pyproject.toml asked."""
    versions: dict[str, str] = {}
    direct_only: set[str] = set()
    current: str | None = None
    vias: list[str] = []

    def close() -> None:
        if current and vias and all(v == DIRECT or v.startswith("-c ") for v in vias):
            direct_only.add(current)

    for line in lock.read_text().splitlines():
        match = PIN.match(line)
        if match:
            close()
            current, vias = canonicalize_name(match[1]), []
            versions[current] = match[2]
            continue
        comment = line.strip().removeprefix("#").strip()
        if comment.startswith("via "):
            vias.append(comment.removeprefix("via ").strip())
        elif line.startswith("    #   "):
            vias.append(comment)
    close()
    return versions, direct_only


def problems(repo: Path = REPO) -> list[str]:
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    found: list[str] = []
    for name, extras in LOCKS.items():
        lock = repo / "config" / "lock" / name
        if not lock.is_file():
            found.append(f"config/lock/{name} is missing")
            continue
        versions, direct_only = pins(lock)
        wanted = declared(project, extras)
        for requirement in wanted:
            key = canonicalize_name(requirement.name)
            if key not in versions:
                found.append(f"config/lock/{name} lacks {requirement}")
            elif not requirement.specifier.contains(versions[key], prereleases=True):
                found.append(
                    f"config/lock/{name} pins {key}=={versions[key]}, "
                    f"pyproject.toml asks {requirement}"
                )
        asked = {canonicalize_name(r.name) for r in wanted}
        for stale in sorted(direct_only - asked):
            found.append(f"config/lock/{name} still pins {stale}, which pyproject.toml dropped")
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(f"lockcheck: {problem}", file=sys.stderr)
    if found:
        print(
            "lockcheck: pyproject.toml and config/lock/ disagree: run `make lock` "
            "and commit config/lock/",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
