"""Test helpers for the file tools: a planted workspace with canaries outside the root."""

from __future__ import annotations

import ctypes
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastmcp import Client

from mcp_fileserver.files.models import DirectoryTree
from mcp_fileserver.files.service import FileService

CANARY = "CANARY-" + uuid.uuid4().hex  # never appears in any answer
SAFE = "safe content inside the root\n"


@dataclass(frozen=True)
class Workspace:
    base: Path
    root: Path  # the allowed directory (real path)
    outside: Path  # a directory beside the root holding canary.txt

    @property
    def canary_file(self) -> Path:
        return self.outside / "canary.txt"


def plant_canary(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "canary.txt"
    path.write_text(f"{CANARY}\n")
    return path


def make_workspace(base: Path) -> Workspace:
    """root/ with ordinary content, outside/ and prefix-sibling directories with canaries."""
    base = base.resolve()
    root = base / "root"
    outside = base / "outside"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "sub" / "notes.txt").write_text(SAFE)
    (root / "sub" / "deeper" / "leaf.md").write_text("# leaf\nsecond line\n")
    (root / "hello.txt").write_text("hello world\nsecond line\nthird line\n")
    plant_canary(outside)
    for sibling in ("root-evil", "root_backup", "root'", "root ", "root\t", "rootx"):
        plant_canary(base / sibling)
    return Workspace(base=base, root=root, outside=outside)


def tree_model(service: FileService, path: str, **kwargs: Any) -> DirectoryTree:
    """The service's plain-data tree, validated against the tool's output model."""
    return DirectoryTree.model_validate(service.directory_tree(path, **kwargs))


def dump(result: Any) -> str:
    """Everything a client could see in a tool result, as one string."""
    parts: list[str] = []
    for block in getattr(result, "content", None) or []:
        parts.append(getattr(block, "text", None) or getattr(block, "data", "") or "")
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        parts.append(json.dumps(structured))
    return "\n".join(parts)


async def call(client: Client, tool: str, args: dict[str, Any]) -> Any:
    return await client.call_tool(tool, args, raise_on_error=False)


_libc = ctypes.CDLL(None, use_errno=True)
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> None:
    """Atomically swap two names (renameat2 RENAME_EXCHANGE): no moment without either."""
    rc = _libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
