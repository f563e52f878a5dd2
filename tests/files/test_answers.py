"""What a model reads: each file tool's text block is the text itself (one line per entry
or match for listings), never the structured result as JSON; the structured content stays
complete and valid against the tool's output schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastmcp import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_fileserver.files import answers, models
from tests.audit.helpers import SECRET, audit_settings
from tests.conftest import in_memory_client, make_settings
from tests.files.helpers import call

TRICKY = 'quotes " and \\ backslashes\n\ttabs, unicode é, {"json": true}\n'


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "root"
    (base / "src" / "pkg").mkdir(parents=True)
    (base / "src" / "pkg" / "mod.py").write_text("def f():\n    return 'needle'\n")
    (base / "src" / "main.py").write_text("import pkg  # needle\n")
    (base / "tricky.txt").write_text(TRICKY)
    (base / "big.txt").write_text("x" * 5000 + "\n")
    (base / "line\nbreak.txt").write_text("fake\n")
    return base


def _text(result: Any) -> str:
    (block,) = result.content
    assert block.type == "text"
    return str(block.text)


async def _schemas(client: Client) -> dict[str, dict[str, Any]]:
    return {t.name: t.output_schema for t in await client.list_tools() if t.output_schema}


async def test_text_blocks_are_what_a_model_reads(root: Path, tmp_path: Path) -> None:
    settings = make_settings(allow=[root], log_dir=tmp_path / "logs")
    async with in_memory_client(settings) as client:
        schemas = await _schemas(client)
        calls: dict[str, dict[str, Any]] = {
            "read_text_file": {"path": "tricky.txt"},
            "read_multiple_files": {"paths": ["tricky.txt", "src/main.py", "nope.txt"]},
            "list_directory": {"path": "."},
            "directory_tree": {"path": "."},
            "search_files": {"path": ".", "pattern": "*.py"},
            "search_file_contents": {"path": ".", "pattern": "needle"},
            "get_file_info": {"path": "tricky.txt"},
            "list_allowed_directories": {},
        }
        results = {tool: await call(client, tool, args) for tool, args in calls.items()}
    for tool, result in results.items():
        assert not result.is_error, tool
        assert set(schemas) >= set(calls)
        jsonschema.validate(result.structured_content, schemas[tool])
        assert not _text(result).lstrip().startswith("{"), tool  # not the JSON again

    assert _text(results["read_text_file"]) == TRICKY  # the file itself, byte for byte
    assert results["read_text_file"].structured_content["text"] == TRICKY
    assert _text(results["read_multiple_files"]) == (
        f"==> tricky.txt <==\n{TRICKY}\n"
        "==> src/main.py <==\nimport pkg  # needle\n\n"
        "==> nope.txt <== [error: not found or not allowed]\n"
    )
    assert _text(results["list_directory"]).splitlines() == [
        "big.txt  5001",
        '"line\\nbreak.txt"  5',  # a name cannot pass for two lines
        "src/",
        "tricky.txt  " + str(len(TRICKY.encode())),
    ]
    assert _text(results["directory_tree"]).splitlines() == [
        "big.txt  5001",
        '"line\\nbreak.txt"  5',
        "src/",
        "  main.py  21",
        "  pkg/",
        "    mod.py  29",
        "tricky.txt  " + str(len(TRICKY.encode())),
    ]
    assert _text(results["search_files"]).splitlines() == [
        f"{root}/src/main.py",
        f"{root}/src/pkg/mod.py",
    ]
    assert _text(results["search_file_contents"]).splitlines() == [
        f"{root}/src/main.py",
        "1:import pkg  # needle",
        "",
        f"{root}/src/pkg/mod.py",
        "2:    return 'needle'",
    ]
    info = _text(results["get_file_info"]).splitlines()
    assert info[:3] == [f"path: {root}/tricky.txt", "type: file", f"size: {len(TRICKY.encode())}"]
    assert _text(results["list_allowed_directories"]) == str(root)


async def test_cut_answers_say_so_in_one_line(root: Path, tmp_path: Path) -> None:
    for i in range(5):
        (root / "src" / f"extra{i}.py").write_text("needle\n")
    settings = make_settings(allow=[root], log_dir=tmp_path / "logs")
    async with in_memory_client(settings) as client:
        head = await call(client, "read_text_file", {"path": "big.txt", "head": 1})
        page = await call(client, "list_directory", {"path": "src", "limit": 2})
        found = await call(
            client, "search_file_contents", {"path": ".", "pattern": "needle", "max_results": 2}
        )
        tree = await call(client, "directory_tree", {"path": ".", "max_entries": 2})
    assert _text(head) == "x" * 5000 + "\n"  # the whole first line: nothing is missing
    assert _text(page).splitlines()[-1] == "[entries 1-2 of 7; next page: offset=2]"
    assert _text(found).splitlines()[-1].startswith("[stopped by max_results: 2 matches")
    assert (
        _text(tree)
        .splitlines()[-1]
        .startswith("[stopped by max_entries after 2 entries; continue with cursor=")
    )


def test_a_truncated_read_has_a_header() -> None:
    cut = models.TextFile(path="/r/a.txt", text="abc", truncated=True, size=10)
    assert answers.text_file(cut) == "[partial: 3 of 10 bytes shown]\nabc"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain.txt", "plain.txt"),
        ("a b", "a b"),
        ("two\nlines", '"two\\nlines"'),
        ("cr\rhere", '"cr\\rhere"'),
        ("sep\u2028x", '"sep\u2028x"'),
        (" lead", '" lead"'),
        ("trail ", '"trail "'),
        ('"quoted"', '"\\"quoted\\""'),
        ("at@", '"at@"'),
        ("", '""'),
    ],
)
def test_names_that_could_pass_for_structure_are_quoted(raw: str, shown: str) -> None:
    assert answers.name(raw) == shown
    assert "\n" not in answers.name(raw)


async def test_many_files_are_sent_once_in_the_text_block(tmp_path: Path) -> None:
    """50 files of 20 KB: the text block carries each file once, unescaped."""
    root = tmp_path / "root"
    root.mkdir()
    body = 'line "quoted" \\ back\n' * 1000
    for i in range(50):
        (root / f"f{i:02}.txt").write_text(body)
    settings = make_settings(allow=[root], log_dir=tmp_path / "logs")
    async with in_memory_client(settings) as client:
        result = await call(
            client, "read_multiple_files", {"paths": [f"f{i:02}.txt" for i in range(50)]}
        )
    text = _text(result)
    total = 50 * len(body)
    assert total <= len(text) <= total + 50 * 40  # the text plus one header line per file
    assert result.structured_content["total_bytes"] == total


async def test_secrets_are_masked_in_the_text_and_the_structured_content(
    tmp_path: Path,
) -> None:
    """A file holding a loaded secret is refused whole and skipped by searches (issue 14:
    no masked copy leaves); a secret in a name the server shows is masked in both parts."""
    settings = audit_settings(tmp_path)
    root = settings.allowed_dirs[0]
    (root / "leak.txt").write_text(f"password={SECRET}\n")
    (root / f"named-{SECRET}.txt").write_text("password=none\n")
    async with in_memory_client(settings) as client:
        read = await call(client, "read_text_file", {"path": "leak.txt"})
        many = await call(client, "read_multiple_files", {"paths": ["leak.txt"]})
        found = await call(client, "search_file_contents", {"path": ".", "pattern": "password"})
        listing = await call(client, "list_directory", {"path": "."})
    assert read.is_error and _text(read) == "not found or not allowed"
    for result in (read, many, found, listing):
        assert SECRET not in _text(result)
        assert SECRET not in json.dumps(result.structured_content)
    assert "leak.txt" not in {
        m["path"].rsplit("/", 1)[-1] for m in found.structured_content["matches"]
    }
    for result in (found, listing):
        assert not result.is_error
        assert "named-***.txt" in _text(result)
        assert "named-***.txt" in json.dumps(result.structured_content)


async def test_a_tree_as_deep_as_the_walk_allows_is_one_valid_answer(tmp_path: Path) -> None:
    """The tree is flat: 256 directory levels are not 256 levels of JSON nesting, which
    the client's schema validation (and serde_json, 128) would refuse."""
    root = tmp_path / "root"
    deepest = root.joinpath(*["d"] * 300)
    deepest.mkdir(parents=True)
    settings = make_settings(allow=[root], log_dir=tmp_path / "logs")
    async with in_memory_client(settings) as client:
        result = await call(
            client, "directory_tree", {"path": ".", "max_depth": 256, "max_entries": 1000}
        )
    assert not result.is_error, _text(result)
    tree = result.structured_content["tree"]
    assert len(tree) == 256 and tree[-1]["path"] == "/".join(["d"] * 256)
    assert tree[-1]["expanded"] is False and tree[-2]["expanded"] is True
    lines = _text(result).splitlines()
    assert lines[-1] == "  " * 255 + "d/"


_AWKWARD = st.sampled_from(['"', " ", "/", "@", "\n", "\x00", "\x7f", "\x85", "\u2028", "\u2029",
                            "é", "\u2027", "\u202a", "€", "\udc80", "a", "."])  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(_AWKWARD, max_size=6) | st.text(max_size=6), max_size=8))
def test_names_of_a_page_are_each_name(texts: list[str]) -> None:
    """The page-wide check (one byte scan for line breaks) decides as `name` does,
    whatever the names hold: controls, U+0085, U+2028/9 and their UTF-8 neighbours,
    quotes, spaces, markers, lone surrogates."""
    assert answers.names(texts) == [answers.name(t) for t in texts]


def test_a_page_of_search_matches_reads_one_line_per_match() -> None:
    matches = [
        {"path": "/r/a.py", "type": "file"},
        {"path": "/r/pkg", "type": "directory"},
        {"path": "/r/link", "type": "symlink"},
        {"path": "/r/odd\u2028name", "type": "file"},
        {"path": "/r/ends in space ", "type": "file"},
    ]
    text = answers.file_search({"matches": matches, "stopped_by": None})
    assert text.split("\n") == [
        "/r/a.py", "/r/pkg/", "/r/link@", '"/r/odd\u2028name"', '"/r/ends in space "',
    ]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(
                st.text(_AWKWARD, min_size=1, max_size=4).filter(lambda n: "/" not in n),
                min_size=1,
                max_size=4,
            ),
            st.sampled_from(["file", "directory", "symlink", "other"]),
            st.integers(0, 10**12),
        ),
        max_size=8,
    )
)
def test_a_tree_reads_one_indented_entry_per_line(
    entries: list[tuple[list[str], str, int]],
) -> None:
    """The page-wide tree text is, line for line, each entry's indent and `_entry`."""
    tree = [{"path": "/".join(parts), "type": kind, "size": size} for parts, kind, size in entries]
    text = answers.directory_tree({"tree": tree, "stopped_by": None, "entries": len(tree)})
    expected = [
        "  " * (len(parts) - 1) + answers._entry(parts[-1], kind, size)  # type: ignore[arg-type]
        for parts, kind, size in entries
    ]
    assert text == ("\n".join(expected) or "[empty directory]")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(_AWKWARD, max_size=4) | st.text(max_size=4),
            st.sampled_from(["file", "directory", "symlink", "other"]),
            st.integers(0, 10**12),
        ),
        max_size=8,
    )
)
def test_a_listing_page_reads_one_entry_per_line(entries: list[tuple[str, str, int]]) -> None:
    listing = models.DirectoryListing(
        path="/r",
        entries=[
            models.DirectoryEntry(name=n, type=k, size=s, modified="2026-01-01T00:00:00Z")  # type: ignore[arg-type]
            for n, k, s in entries
        ],
        offset=0,
        total=len(entries),
        next_offset=None,
    )
    expected = [answers._entry(n, k, s) for n, k, s in entries]  # type: ignore[arg-type]
    assert answers.directory_listing(listing) == ("\n".join(expected) or "[empty directory]")
