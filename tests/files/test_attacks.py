"""The attack suite, over the real MCP protocol (in-memory client), for both mechanisms.

Every case plants a canary outside the allowed root and asserts that it never appears in
anything the client sees; controls beside them prove that legitimate reads still work.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_fileserver.errors import NOT_ALLOWED_MESSAGE
from mcp_fileserver.files.confine import Method
from tests.conftest import in_memory_client, make_settings
from tests.files.helpers import CANARY, SAFE, Workspace, call, dump

HANG_GUARD_S = 20  # a hang fails the test instead of blocking the suite

ESCAPES = [
    # `..` in every position
    "..",
    "../",
    "../outside/canary.txt",
    "./../outside/canary.txt",
    "sub/../../outside/canary.txt",
    "sub/deeper/../../../outside/canary.txt",
    "sub/..//../outside/canary.txt",
    "{root}/../outside/canary.txt",
    "{root}/sub/../../outside/canary.txt",
    "{root}/..",
    # prefix siblings and look-alikes of the root
    "{root}-evil/canary.txt",
    "{root}_backup/canary.txt",
    "{root}'/canary.txt",
    "{root} /canary.txt",
    "{root}\t/canary.txt",
    "{root}x/canary.txt",
    "{root}-evil",
    "'{root}'/../outside/canary.txt",
    '"{root}/../outside/canary.txt"',
    # outside, absolute
    "{outside}/canary.txt",
    "{outside}",
    # symlinks: relative, absolute, chained, directories
    "rel_out",
    "abs_out",
    "chain1",
    "dir_out",
    "dir_out/canary.txt",
    "abs_dir_out/canary.txt",
    "sub/deep_out/canary.txt",
    "sub/deep_out",
    # loops
    "loop1",
    "self/canary.txt",
    # encodings and expansions that must be taken literally
    "~/canary.txt",
    "~",
    "file://{outside}/canary.txt",
    "file://{root}/../outside/canary.txt",
    "%2e%2e/outside/canary.txt",
    "%2E%2E%2Foutside%2Fcanary.txt",
    "{root}/%2e%2e/outside/canary.txt",
    "..%2foutside/canary.txt",
    "..\\outside\\canary.txt",
    # NUL bytes
    "hello.txt\x00../outside/canary.txt",
    "{root}/\x00/../outside/canary.txt",
    # the deny-list
    ".env",
    ".ENV",
    "sub/id_rsa",
    ".ssh/config",
    "env_link",
    "ssh_link/config",
    "{root}/sub/../.env",
]

PATH_TOOLS: list[tuple[str, dict[str, Any]]] = [
    ("read_text_file", {}),
    ("read_text_file", {"head": 1}),
    ("read_media_file", {}),
    ("get_file_info", {}),
    ("list_directory", {}),
    ("directory_tree", {}),
    ("search_files", {"pattern": "*"}),
    ("search_file_contents", {"pattern": CANARY}),
]

WALK_TOOLS = [
    t for t in PATH_TOOLS if t[0] in ("read_text_file", "get_file_info", "list_directory")
]


def plant_attacks(ws: Workspace) -> None:
    root = ws.root
    (root / "rel_out").symlink_to("../outside/canary.txt")
    (root / "abs_out").symlink_to(ws.canary_file)
    (root / "chain1").symlink_to("chain2")
    (root / "chain2").symlink_to("sub/chain3")
    (root / "sub" / "chain3").symlink_to("../rel_out")
    (root / "dir_out").symlink_to("../outside")
    (root / "abs_dir_out").symlink_to(ws.outside)
    (root / "sub" / "deep_out").symlink_to("../../outside")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    (root / "self").symlink_to("self")
    (root / ".env").write_text(f"TOKEN={CANARY}\n")
    (root / "sub" / "id_rsa").write_text(CANARY)
    (root / ".ssh").mkdir()
    (root / ".ssh" / "config").write_text(CANARY)
    (root / "env_link").symlink_to(".env")
    (root / "ssh_link").symlink_to(".ssh")
    # controls: symlinks that stay inside
    (root / "in_rel").symlink_to("sub/notes.txt")
    (root / "in_abs").symlink_to(root / "sub" / "notes.txt")
    (root / "in_dir").symlink_to("sub")


@pytest.fixture
def attacked(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    plant_attacks(ws)
    monkeypatch.setenv("HOME", str(ws.outside))  # so `~` would reach the canary if expanded
    return ws


def settings_for(ws: Workspace, extra_toml: str = ""):
    """The real server's settings; the abuse monitor and rate limits are off because
    this suite deliberately sends hundreds of refused requests in a few seconds."""
    config = ws.base / "attack.toml"
    config.write_text("[monitor]\nenabled = false\n[rate_limit]\nenabled = false\n" + extra_toml)
    return make_settings(allow=[ws.root], log_dir=ws.base / "logs", config=config)


def assert_clean(result: Any, ws: Workspace) -> None:
    seen = dump(result)
    assert CANARY not in seen
    assert str(ws.outside) not in seen
    if result.is_error:
        assert "Traceback" not in seen


async def test_escapes_over_protocol(attacked: Workspace, method: Method) -> None:
    """Every escape through every path tool (openat2); the walk mechanism, already unit
    tested on every escape, gets the three tools that cover open, lstat and listing."""
    ws = attacked
    tools = PATH_TOOLS if method is Method.OPENAT2 else WALK_TOOLS
    async with in_memory_client(settings_for(ws)) as client:
        for template in ESCAPES:
            path = template.format(root=ws.root, outside=ws.outside)
            for tool, extra in tools:
                with anyio.fail_after(HANG_GUARD_S):
                    result = await call(client, tool, {"path": path, **extra})
                assert_clean(result, ws)
                if tool == "get_file_info" and not result.is_error:
                    # lstat semantics: a link inside the root is described as itself,
                    # never followed to its target
                    assert result.structured_content["type"] == "symlink"
                    assert result.structured_content["path"].startswith(f"{ws.root}/")
                    continue
                assert result.is_error, (tool, path, dump(result))
            multi = await call(client, "read_multiple_files", {"paths": [path, "hello.txt"]})
            assert CANARY not in dump(multi)
            bad, good = multi.structured_content["files"]
            assert bad["text"] is None and bad["error"]
            assert good["text"].startswith("hello world")


async def test_not_allowed_is_uniform(attacked: Workspace, method: Method) -> None:
    """Missing, outside, denied, escaping: one message, nothing to tell them apart."""
    ws = attacked
    async with in_memory_client(settings_for(ws)) as client:
        messages = set()
        for path in (
            "missing.txt",
            "sub/missing/deeper.txt",
            "../outside/canary.txt",
            "../outside/missing.txt",
            str(ws.outside / "canary.txt"),
            "/nonexistent/x",
            ".env",
            ".no-such.env",
            "abs_out",
            "dir_out/canary.txt",
            "dir_out/missing",
        ):
            result = await call(client, "read_text_file", {"path": path})
            assert result.is_error
            messages.add(result.content[0].text)
    assert messages == {NOT_ALLOWED_MESSAGE}


async def test_controls_legitimate_reads_work(attacked: Workspace, method: Method) -> None:
    ws = attacked
    async with in_memory_client(settings_for(ws)) as client:
        for path in (
            "sub/notes.txt",
            str(ws.root / "sub" / "notes.txt"),
            "in_rel",
            "in_abs",
            "in_dir/notes.txt",
            "sub/deeper/../notes.txt",
        ):
            result = await call(client, "read_text_file", {"path": path})
            assert not result.is_error, (path, dump(result))
            assert result.structured_content["text"] == SAFE
        listing = await call(client, "list_directory", {"path": "."})
        names = {e["name"]: e["type"] for e in listing.structured_content["entries"]}
        assert names["dir_out"] == "symlink" and names["sub"] == "directory"
        assert ".env" not in names and ".ssh" not in names  # denied entries are omitted
        tree = await call(client, "directory_tree", {"path": ".", "max_depth": 5})
        assert not tree.is_error and ".env" not in dump(tree) and "id_rsa" not in dump(tree)
        found = await call(client, "search_files", {"path": ".", "pattern": "*"})
        assert ".env" not in dump(found) and "canary" not in dump(found)
        grep = await call(client, "search_file_contents", {"path": ".", "pattern": "TOKEN"})
        assert grep.structured_content["matches"] == []
        grep = await call(client, "search_file_contents", {"path": ".", "pattern": "safe"})
        assert len(grep.structured_content["matches"]) == 1  # notes.txt, not via links


async def test_head_zero_or_negative_is_a_validation_error(ws: Workspace) -> None:
    async with in_memory_client(settings_for(ws)) as client:
        for args in ({"head": 0}, {"tail": 0}, {"head": -1}, {"tail": -5}):
            result = await call(client, "read_text_file", {"path": "hello.txt", **args})
            assert result.is_error
            assert "hello world" not in dump(result)
        bad = await call(client, "read_text_file", {"path": "hello.txt", "extra": 1})
        assert bad.is_error  # unknown arguments are refused


async def test_fifo_never_hangs(ws: Workspace, method: Method) -> None:
    os.mkfifo(ws.root / "pipe")
    (ws.root / "link_to_pipe").symlink_to("pipe")
    async with in_memory_client(settings_for(ws)) as client:
        with anyio.fail_after(HANG_GUARD_S):
            for tool in ("read_text_file", "read_media_file"):
                for path in ("pipe", "link_to_pipe"):
                    result = await call(client, tool, {"path": path})
                    assert result.is_error and "not a regular file" in dump(result)
            multi = await call(client, "read_multiple_files", {"paths": ["pipe", "hello.txt"]})
            assert multi.structured_content["files"][0]["error"] == "not a regular file"
            grep = await call(client, "search_file_contents", {"path": ".", "pattern": "hello"})
            assert len(grep.structured_content["matches"]) == 1
            grep = await call(client, "search_file_contents", {"path": "pipe", "pattern": "x"})
            assert grep.is_error
            info = await call(client, "get_file_info", {"path": "pipe"})
            assert info.structured_content["type"] == "other"


async def test_sparse_8gib_file_is_cheap(ws: Workspace) -> None:
    big = ws.root / "huge.log"
    with big.open("wb") as fh:
        fh.write(b"first\n")
        fh.truncate(8 << 30)
        fh.seek((8 << 30) - 6)
        fh.write(b"\nlast\n")
    async with in_memory_client(settings_for(ws)) as client:
        with anyio.fail_after(HANG_GUARD_S):
            head = await call(client, "read_text_file", {"path": "huge.log", "head": 1})
            tail = await call(client, "read_text_file", {"path": "huge.log", "tail": 1})
            whole = await call(client, "read_text_file", {"path": "huge.log"})
            media = await call(client, "read_media_file", {"path": "huge.log"})
            grep = await call(client, "search_file_contents", {"path": ".", "pattern": "last"})
            info = await call(client, "get_file_info", {"path": "huge.log"})
    assert head.structured_content["text"] == "first\n" and head.structured_content["truncated"]
    assert tail.structured_content["text"] == "last\n"
    assert whole.is_error and "read_media_file" in dump(whole)  # NULs: binary
    assert media.is_error  # larger than the media cap
    assert grep.structured_content["matches"] == []  # binary: skipped after one block
    assert info.structured_content["size"] == 8 << 30


async def test_race_swap_directory_for_symlink_over_protocol(ws: Workspace, method: Method) -> None:
    real = ws.root / "race"
    real.mkdir()
    (real / "canary.txt").write_text(SAFE)
    parked = ws.root / "parked"
    parked.symlink_to(ws.outside)
    # A separate process flips the names as fast as it can (no GIL shared with the server).
    flipper = subprocess.Popen(
        [sys.executable, "-c", FLIPPER, str(real), str(parked)], cwd=Path(__file__).parents[2]
    )
    async with in_memory_client(settings_for(ws)) as client:
        try:
            for i in range(200):
                tool = ("read_text_file", "list_directory", "get_file_info")[i % 3]
                path = "race/canary.txt" if tool != "list_directory" else "race"
                result = await call(client, tool, {"path": path})
                assert CANARY not in dump(result)
                assert str(ws.outside) not in dump(result)
        finally:
            flipper.kill()
            flipper.wait()


FLIPPER = """
import sys
from pathlib import Path
from tests.files.helpers import exchange
a, b = Path(sys.argv[1]), Path(sys.argv[2])
while True:
    exchange(a, b)
"""


async def test_regex_denial_of_service(ws: Workspace) -> None:
    (ws.root / "a.txt").write_text("a" * 200_000 + "\n")
    async with in_memory_client(settings_for(ws)) as client:
        with anyio.fail_after(HANG_GUARD_S):
            for pattern in (r"(a*)*b", r"^(a+)+$", r"(a|a)*c", r"(.*){30}x"):
                result = await call(
                    client,
                    "search_file_contents",
                    {"path": ".", "pattern": pattern, "regex": True},
                )
                assert not result.is_error
            bad = await call(
                client, "search_file_contents", {"path": ".", "pattern": "(", "regex": True}
            )
    assert bad.is_error and "regular expression" in dump(bad)


async def test_loops_in_walks_terminate(ws: Workspace, method: Method) -> None:
    (ws.root / "sub" / "up").symlink_to("..")
    (ws.root / "sub" / "deeper" / "top").symlink_to(ws.root)
    async with in_memory_client(settings_for(ws)) as client:
        with anyio.fail_after(HANG_GUARD_S):
            tree = await call(client, "directory_tree", {"path": ".", "max_depth": 50})
            found = await call(client, "search_files", {"path": ".", "pattern": "*.txt"})
    assert not tree.structured_content["truncated"]
    assert len(found.structured_content["matches"]) == 2  # hello.txt, sub/notes.txt


async def test_multiple_roots_and_relative_paths(ws: Workspace, tmp_path: Path) -> None:
    second = tmp_path / "second"
    second.mkdir()
    (second / "b.txt").write_text("b\n")
    settings = make_settings(
        allow=[ws.root, second], log_dir=ws.base / "logs", config=settings_for(ws).config_file
    )
    async with in_memory_client(settings) as client:
        rel = await call(client, "read_text_file", {"path": "hello.txt"})
        assert rel.is_error and "ambiguous" in dump(rel)
        ok = await call(client, "read_text_file", {"path": str(second / "b.txt")})
        assert ok.structured_content["text"] == "b\n"


async def test_read_multiple_files_limits(ws: Workspace) -> None:
    for i in range(3):
        (ws.root / f"f{i}.txt").write_text("x" * 100)
    settings = settings_for(ws, "[files]\nmax_multi_total_bytes = 150\n")
    async with in_memory_client(settings) as client:
        result = await call(
            client, "read_multiple_files", {"paths": ["f0.txt", "f1.txt", "f2.txt"]}
        )
        files = result.structured_content["files"]
        assert files[0]["text"] == "x" * 100
        assert files[1]["text"] == "x" * 50 and files[1]["truncated"]
        assert "total size limit" in files[2]["error"]
        assert result.structured_content["total_bytes"] == 150
        too_many = await call(client, "read_multiple_files", {"paths": ["f0.txt"] * 51})
        assert too_many.is_error


async def test_media_over_protocol(ws: Workspace) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    (ws.root / "pic.dat").write_bytes(png)
    (ws.root / "sound").write_bytes(b"fLaC" + b"\0" * 32)
    async with in_memory_client(settings_for(ws)) as client:
        image = await call(client, "read_media_file", {"path": "pic.dat"})
        audio = await call(client, "read_media_file", {"path": "sound"})
    assert image.content[0].type == "image" and image.content[0].mime_type == "image/png"
    assert image.structured_content == {
        "path": str(ws.root / "pic.dat"),
        "mime_type": "image/png",
        "size": len(png),
    }
    assert audio.content[0].type == "audio" and audio.content[0].mime_type == "audio/flac"


async def test_progress_notifications(ws: Workspace) -> None:
    for i in range(700):
        (ws.root / "sub" / f"n{i:03d}.txt").write_text("x\n")
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with in_memory_client(settings_for(ws)) as client:
        result = await client.call_tool(
            "search_files", {"path": ".", "pattern": "*.md"}, progress_handler=on_progress
        )
    assert not result.is_error
    assert progress and progress[0] >= 256


async def test_tools_are_read_only_and_typed(ws: Workspace) -> None:
    async with in_memory_client(settings_for(ws)) as client:
        tools = {t.name: t for t in await client.list_tools()}
    expected = {
        "list_allowed_directories",
        "list_directory",
        "directory_tree",
        "read_text_file",
        "read_multiple_files",
        "read_media_file",
        "get_file_info",
        "search_files",
        "search_file_contents",
    }
    assert expected <= set(tools)
    for name in expected:
        tool = tools[name]
        assert tool.annotations.read_only_hint is True
        assert tool.annotations.open_world_hint is False
        assert tool.output_schema and tool.output_schema.get("type") == "object"
        assert tool.input_schema.get("additionalProperties") is False
    params = {n: set(tools[n].input_schema.get("properties", {})) for n in expected}
    assert params["list_directory"] == {"path", "offset", "limit"}
    walk_extras = {"include_ignored", "cursor"}
    assert params["directory_tree"] == {
        "path",
        "max_depth",
        "max_entries",
        "exclude_patterns",
        *walk_extras,
    }
    assert params["read_text_file"] == {"path", "head", "tail"}
    assert params["read_multiple_files"] == {"paths"}
    assert params["search_files"] == {
        "path",
        "pattern",
        "exclude_patterns",
        "max_results",
        *walk_extras,
    }
    assert params["search_file_contents"] == {
        "path",
        "pattern",
        "regex",
        "glob",
        "case_sensitive",
        "max_results",
        *walk_extras,
    }
