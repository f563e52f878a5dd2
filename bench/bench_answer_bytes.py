"""Issue 19: bytes per answer, this server beside the official Node filesystem server.

For the same calls on the same tree, prints the bytes of the text block (what a model
reads, so what it pays in tokens) and of the whole JSON-RPC answer on the wire (text
block + structured content + framing). Both servers are driven by bench/rpc.py.
`search_file_contents` has no Node counterpart (its text block is ripgrep's heading
format).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from common import (
    INSTALLED_COMMAND,
    markdown_table,
    node,
    npm_package_entry,
    ours_env,
    report,
    write_files_config,
)
from rpc import RpcError, Server, child_env

NODE_FS = "@modelcontextprotocol/server-filesystem"
SOURCE = 'def handler(event: dict) -> str:\n    """Say "hi".\\n"""\n    return f"{event!r}"\n'


class CountingServer(Server):
    """A `Server` that remembers the size of the last message it read."""

    last_bytes = 0

    def _read_message(self) -> dict[str, Any]:
        line = self._out.readline()
        self.last_bytes = len(line)
        if not line:
            raise RpcError(f"{self.argv[0]} closed stdout")
        message: dict[str, Any] = json.loads(line)
        return message


def make_tree(root: Path, *, big_files: int, big_kib: int) -> None:
    """A small source tree (3 levels, 400 files) and `big_files` text files of `big_kib`."""
    for a in range(8):
        for b in range(5):
            folder = root / "src" / f"pkg{a}" / f"mod{b}"
            folder.mkdir(parents=True)
            for c in range(10):
                marker = "# TODO(needle): one match per folder\n" if c == 0 else ""
                (folder / f"file{c}.py").write_text(SOURCE * 20 + marker)
    line = 'value = {"key": "text with \\"quotes\\" and\\ttabs"}  # comment\n'
    big = (line * (big_kib * 1024 // len(line) + 1))[: big_kib * 1024]
    (root / "big").mkdir()
    for i in range(big_files):
        (root / "big" / f"b{i:02}.txt").write_text(big)


def text_bytes(result: dict[str, Any]) -> int:
    return sum(len(b.get("text", "").encode()) for b in result.get("content", []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50, help="files for read_multiple_files")
    parser.add_argument("--kib", type=int, default=100, help="size of each of those files")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-answer-") as tmp:
        base = Path(tmp)
        root = base / "root"
        make_tree(root, big_files=args.files, big_kib=args.kib)
        config = write_files_config(base, root)
        big_paths = [str(p) for p in sorted((root / "big").iterdir())]
        one = str(root / "src" / "pkg0" / "mod0" / "file0.py")
        calls: list[tuple[str, str, dict[str, Any], dict[str, Any] | None]] = [
            ("read_text_file (1.7 KB .py)", "read_text_file", {"path": one}, {"path": one}),
            (
                f"read_text_file ({args.kib} KiB)",
                "read_text_file",
                {"path": big_paths[0]},
                {"path": big_paths[0]},
            ),
            (
                f"read_multiple_files ({args.files} x {args.kib} KiB)",
                "read_multiple_files",
                {"paths": big_paths},
                {"paths": big_paths},
            ),
            (
                "list_directory (10 files)",
                "list_directory",
                {"path": str(root / "src/pkg0/mod0")},
                {"path": str(root / "src/pkg0/mod0")},
            ),
            (
                "directory_tree (src, 448 entries)",
                "directory_tree",
                {"path": str(root / "src"), "max_depth": 10, "max_entries": 10000},
                {"path": str(root / "src")},
            ),
            (
                "search_files (*.py, 400 matches)",
                "search_files",
                {"path": str(root / "src"), "pattern": "file*.py"},
                {"path": str(root / "src"), "pattern": "**/file*.py"},
            ),
            ("get_file_info", "get_file_info", {"path": one}, {"path": one}),
            (
                "search_file_contents (40 matches)",
                "search_file_contents",
                {"path": str(root / "src"), "pattern": "TODO(needle)"},
                None,
            ),
        ]
        ours_argv = [str(INSTALLED_COMMAND), "--config", str(config)]
        node_argv = [node(), str(npm_package_entry(NODE_FS, "dist/index.js")), str(root)]
        rows: list[list[object]] = []
        data: dict[str, Any] = {}
        with (
            CountingServer(ours_argv, env=ours_env()) as ours,
            CountingServer(node_argv, env=child_env()) as peer,
        ):
            ours.initialize()
            peer.initialize()
            for label, tool, our_args, node_args in calls:
                mine = ours.call_tool(tool, our_args)
                mine_wire = ours.last_bytes
                if node_args is not None:
                    theirs = peer.call_tool(tool, node_args)
                    node_text, node_wire = text_bytes(theirs), peer.last_bytes
                else:
                    node_text = node_wire = None
                figures = {
                    "ours_text": text_bytes(mine),
                    "ours_wire": mine_wire,
                    "node_text": node_text,
                    "node_wire": node_wire,
                }
                data[label] = figures
                rows.append(
                    [
                        label,
                        f"{figures['ours_text']:,}",
                        "n/a" if node_text is None else f"{node_text:,}",
                        _ratio(figures["ours_text"], node_text),
                        f"{mine_wire:,}",
                        "n/a" if node_wire is None else f"{node_wire:,}",
                        _ratio(mine_wire, node_wire),
                    ]
                )
        header = [
            "call",
            "text block, ours",
            "text block, Node",
            "ratio",
            "wire, ours",
            "wire, Node",
            "ratio",
        ]
        text_total = args.files * args.kib * 1024
        body = (
            markdown_table(header, rows)
            + f"\n\nread_multiple_files returns {text_total:,} bytes of file text. "
            "Bytes are counted on the answer's JSON-RPC line (UTF-8)."
        )
        report(
            "Bytes per answer, beside the Node filesystem server (issue 19)",
            "python bench/bench_answer_bytes.py",
            body,
            {"calls": data},
        )


def _ratio(value: int, baseline: int | None) -> str:
    return "n/a" if not baseline else f"{value / baseline:.2f}x"


if __name__ == "__main__":
    main()
