"""Issue 19 §4: a trailing slash after a file, special files that must not even be opened,
and an allowed directory moved or removed after startup."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mcp_fileserver.errors import InvalidRequest, NotAllowed, PolicyViolation
from mcp_fileserver.files.confine import Method
from mcp_fileserver.files.service import FileService
from tests.conftest import in_memory_client, make_settings
from tests.files.helpers import CANARY, Workspace, call, dump

# Every tool that takes a path, with the arguments that make it read `path`.
PATH_TOOLS: list[tuple[str, dict[str, Any]]] = [
    ("read_text_file", {}),
    ("read_media_file", {}),
    ("get_file_info", {}),
    ("list_directory", {}),
    ("directory_tree", {}),
    ("search_files", {"pattern": "*"}),
    ("search_file_contents", {"pattern": "hello"}),
]


def _service(root: Path, method: Method) -> FileService:
    return FileService.from_settings(
        make_settings(allow=[root], log_dir=root.parent / "logs"), method
    )


@pytest.mark.parametrize("suffix", ["/", "/.", "//"])
async def test_a_trailing_slash_after_a_file_is_refused_by_every_tool(
    ws: Workspace, method: Method, suffix: str
) -> None:
    settings = make_settings(allow=[ws.root], log_dir=ws.base / "logs")
    async with in_memory_client(settings) as client:
        for tool, extra in PATH_TOOLS:
            for path in (f"hello.txt{suffix}", f"{ws.root}/hello.txt{suffix}"):
                result = await call(client, tool, {"path": path, **extra})
                assert result.is_error, (tool, path, dump(result))
                assert "hello world" not in dump(result)
        many = await call(client, "read_multiple_files", {"paths": [f"hello.txt{suffix}"]})
        assert many.structured_content["files"][0]["text"] is None
        # A directory with a trailing slash is still a directory.
        listing = await call(client, "list_directory", {"path": f"sub{suffix}"})
        assert not listing.is_error and "notes.txt" in dump(listing)


def test_a_trailing_slash_follows_a_link_to_a_directory_like_the_os(
    ws: Workspace, method: Method
) -> None:
    (ws.root / "to_sub").symlink_to("sub")
    (ws.root / "to_file").symlink_to("hello.txt")
    s = _service(ws.root, method)
    assert s.get_file_info("to_sub").type == "symlink"
    assert s.get_file_info("to_sub/").type == "directory"  # lstat("link/") resolves it
    with pytest.raises(InvalidRequest, match="not a directory"):
        s.read_text_file("to_file/")
    with pytest.raises(InvalidRequest, match="not a directory"):
        s.read_text_file("hello.txt/")
    assert s.read_text_file("hello.txt").text.startswith("hello world")


def _writer_waiting_on(fifo: Path) -> tuple[threading.Thread, threading.Event]:
    """A writer blocked in open(O_WRONLY) until some reader opens the FIFO: whoever
    opens it (even non-blocking, even to refuse it) releases the writer."""
    released = threading.Event()

    def wait_for_reader() -> None:
        fd = os.open(fifo, os.O_WRONLY)
        released.set()
        os.close(fd)

    thread = threading.Thread(target=wait_for_reader, daemon=True)
    thread.start()
    time.sleep(0.2)  # let it block in open() before anyone looks at the FIFO
    return thread, released


@pytest.mark.skipif(not hasattr(os, "O_PATH"), reason="O_PATH is Linux-only")
def test_special_files_are_refused_without_being_opened(ws: Workspace, method: Method) -> None:
    fifo = ws.root / "sub" / "fifo"
    os.mkfifo(fifo)
    thread, released = _writer_waiting_on(fifo)
    s = _service(ws.root, method)
    try:
        for attempt in (
            lambda: s.read_text_file("sub/fifo"),
            lambda: s.read_media_file("sub/fifo"),
            lambda: s.list_directory("sub/fifo"),
            lambda: s.search_file_contents("sub/fifo", "x"),
        ):
            with pytest.raises((PolicyViolation, InvalidRequest)):
                attempt()
        assert s.get_file_info("sub/fifo").type == "other"
        assert not released.wait(0.3), "the FIFO was opened: a blocked writer was released"
    finally:
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # release the writer
        thread.join(5)


def test_a_device_is_refused_as_a_device(ws: Workspace, method: Method) -> None:
    device = ws.root / "null"
    try:
        os.mknod(device, 0o600 | 0o020000, os.makedev(1, 3))  # a character device
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    s = _service(ws.root, method)
    for attempt in (lambda: s.read_text_file("null"), lambda: s.search_file_contents("null", "x")):
        with pytest.raises(PolicyViolation) as info:
            attempt()
        assert info.value.detail == "device"


def test_a_moved_root_keeps_serving_what_was_allowed(ws: Workspace, method: Method) -> None:
    """The allowed directory is held by descriptor: moved, it is still served under its
    configured name; a new directory created at that name is never served (whoever
    controls the parent must not be able to redirect the server)."""
    s = _service(ws.root, method)
    moved = ws.base / "moved-away"
    ws.root.rename(moved)
    (ws.root / "sub").mkdir(parents=True)
    (ws.root / "hello.txt").write_text(CANARY)
    (ws.root / "sub" / "new.txt").write_text(CANARY)
    assert s.read_text_file("hello.txt").text.startswith("hello world")
    text = s.read_text_file(f"{ws.root}/sub/notes.txt")
    assert text.path == f"{ws.root}/sub/notes.txt"  # shown under the configured name
    assert [e.name for e in s.list_directory("sub").entries] == ["deeper", "notes.txt"]
    assert {m.path for m in s.search_file_contents(".", "second").matches} == {
        f"{ws.root}/hello.txt",
        f"{ws.root}/sub/deeper/leaf.md",
    }
    with pytest.raises(NotAllowed):
        s.read_text_file("sub/new.txt")


def test_a_removed_root_serves_nothing(ws: Workspace, method: Method) -> None:
    s = _service(ws.root, method)
    shutil.rmtree(ws.root)
    ws.root.mkdir()
    (ws.root / "hello.txt").write_text(CANARY)
    with pytest.raises(NotAllowed):
        s.read_text_file("hello.txt")
    # openat2 sees that the root was removed; the walk finds it empty: never the new one.
    with contextlib.suppress(NotAllowed):
        assert s.search_file_contents(".", CANARY).matches == []


async def test_a_moved_root_through_the_protocol(ws: Workspace) -> None:
    settings = make_settings(allow=[ws.root], log_dir=ws.base / "logs")
    async with in_memory_client(settings) as client:
        ws.root.rename(ws.base / "moved-away")
        result = await call(client, "read_text_file", {"path": f"{ws.root}/hello.txt"})
    assert not result.is_error and result.content[0].text.startswith("hello world")
