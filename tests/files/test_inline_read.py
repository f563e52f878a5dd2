"""Issue 15 §2: small reads skip the worker-thread hop, large ones still take it.

`[files] inline_read_bytes`: a text file up to that size is read on the event loop (and
`get_file_info` answered there); a larger one is only opened there, then read in a worker
thread; 0 sends every file operation to a worker thread. The answer is the same either way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mcp_fileserver.config import FilesSettings, Settings
from mcp_fileserver.errors import NotAllowed
from mcp_fileserver.files.confine import Confinement
from mcp_fileserver.files.denylist import DenyList
from mcp_fileserver.files.secret_content import SecretContent
from mcp_fileserver.files.service import FileService
from tests.conftest import in_memory_client, make_settings
from tests.files.helpers import CANARY, Workspace, call, dump

SECRET = "s3cret-Value-0123456789"


def config_with(ws: Workspace, tmp_path: Path, files_extra: str = "") -> Settings:
    config = tmp_path / "c.toml"
    config.write_text(f"[files]\nallowed_dirs = [{str(ws.root)!r}]\n{files_extra}\n")
    return make_settings(config=config, log_dir=tmp_path / "audit")


@pytest.fixture
def threads_used(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """(service method, whether it ran on the test's event-loop thread) for each call."""
    seen: list[tuple[str, bool]] = []
    loop_thread = threading.get_ident()

    def spy(name: str) -> None:
        original: Callable[..., Any] = getattr(FileService, name)

        def wrapper(self: FileService, *args: Any, **kwargs: Any) -> Any:
            seen.append((name, threading.get_ident() == loop_thread))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(FileService, name, wrapper)

    for name in ("read_text_file", "read_text_file_within", "get_file_info"):
        spy(name)
    return seen


async def test_a_small_file_is_read_without_a_thread_hop(
    ws: Workspace, tmp_path: Path, threads_used: list[tuple[str, bool]]
) -> None:
    (ws.root / "small.txt").write_text("hello\n" * 100)
    async with in_memory_client(config_with(ws, tmp_path)) as client:
        result = await call(client, "read_text_file", {"path": str(ws.root / "small.txt")})
        info = await call(client, "get_file_info", {"path": str(ws.root / "small.txt")})
    assert not result.is_error and result.structured_content["text"] == "hello\n" * 100
    assert not info.is_error and info.structured_content["size"] == 600
    assert threads_used == [("read_text_file_within", True), ("get_file_info", True)]


async def test_a_file_over_the_limit_is_read_in_a_worker_thread_whole(
    ws: Workspace, tmp_path: Path, threads_used: list[tuple[str, bool]]
) -> None:
    body = "".join(f"line {i:06}\n" for i in range(10_000))  # 120,000 bytes
    (ws.root / "large.txt").write_text(body)
    async with in_memory_client(config_with(ws, tmp_path, "inline_read_bytes = 65536")) as client:
        whole = await call(client, "read_text_file", {"path": str(ws.root / "large.txt")})
        tail = await call(client, "read_text_file", {"path": "large.txt", "tail": 2})
    assert whole.structured_content == {
        "path": str(ws.root / "large.txt"),
        "text": body,
        "truncated": False,
        "size": len(body),
    }
    assert tail.structured_content["text"] == "line 009998\nline 009999\n"
    # Opened on the loop, found too large, then read in full in a worker thread.
    one_call = [
        ("read_text_file_within", True),
        ("read_text_file", False),
        ("read_text_file_within", False),  # what read_text_file runs, in the thread
    ]
    assert threads_used == one_call * 2


async def test_zero_sends_every_file_operation_to_a_worker_thread(
    ws: Workspace, tmp_path: Path, threads_used: list[tuple[str, bool]]
) -> None:
    (ws.root / "small.txt").write_text("hello\n")
    async with in_memory_client(config_with(ws, tmp_path, "inline_read_bytes = 0")) as client:
        result = await call(client, "read_text_file", {"path": "small.txt"})
        info = await call(client, "get_file_info", {"path": "small.txt"})
    assert result.structured_content["text"] == "hello\n"
    assert info.structured_content["size"] == 6
    assert all(not on_loop for _, on_loop in threads_used)
    assert [name for name, _ in threads_used][::2] == ["read_text_file", "get_file_info"]


async def test_the_inline_path_is_confined_like_the_thread_path(
    ws: Workspace, tmp_path: Path
) -> None:
    escapes = [str(ws.canary_file), "../outside/canary.txt", str(ws.root / ".." / "outside")]
    (ws.root / "link").symlink_to(ws.canary_file)
    async with in_memory_client(config_with(ws, tmp_path)) as client:
        for path in escapes:
            for tool in ("read_text_file", "get_file_info"):
                result = await call(client, tool, {"path": path})
                assert result.is_error, (tool, path)
                assert CANARY not in dump(result)
        followed = await call(client, "read_text_file", {"path": "link"})
        described = await call(client, "get_file_info", {"path": "link"})
    assert followed.is_error and CANARY not in dump(followed)
    # A symlink is described as itself, never as what it points to outside.
    assert described.structured_content["mode"].startswith("l")
    assert str(ws.outside) not in dump(described)


def service_with_secret(ws: Workspace) -> FileService:
    confinement = Confinement((ws.root,), DenyList(()), None)
    return FileService(confinement, FilesSettings(), SecretContent([SECRET]))


def test_an_oversized_file_is_not_scanned_or_read_inline(ws: Workspace) -> None:
    """Over `max_size` the answer is None before the secret scan (which reads the whole
    file) or the read: the work done on the event loop stays bounded."""
    service = service_with_secret(ws)
    (ws.root / "big.txt").write_text("x" * 5000 + SECRET)
    assert service.read_text_file_within("big.txt", max_size=4096) is None
    with pytest.raises(NotAllowed):
        service.read_text_file_within("big.txt", max_size=1 << 20)
    (ws.root / "small.txt").write_text("a\nb\n")
    found = service.read_text_file_within("small.txt", max_size=4096, tail=1)
    assert found is not None and found.text == "b\n"
    assert found == service.read_text_file("small.txt", tail=1)


def test_the_limit_is_a_validated_setting() -> None:
    assert FilesSettings().inline_read_bytes == 64 * 1024
    assert FilesSettings(inline_read_bytes=0).inline_read_bytes == 0
    with pytest.raises(ValueError, match="inline_read_bytes"):
        FilesSettings(inline_read_bytes=-1)
