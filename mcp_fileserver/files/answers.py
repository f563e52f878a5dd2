"""What a model reads: the text block of each file tool's answer.

The structured content (the output models) is complete and schema-valid for programs;
the text block is written for a model at the fewest tokens: a file's own text, one
line per entry or match, and a bracketed note only where something is missing (a cut,
a next page, an error). Nothing here is JSON, so a file is never read through escaped
newlines and quotes. Plain functions of the models: no MCP here.

Names come from the disk, so a name that could pass for another line or a marker (a
newline or other control character, a leading quote or space, a trailing space, `/`
or `@`) is written as a JSON string: one entry is always one line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from mcp_fileserver.files import models
from mcp_fileserver.files.walk import MAX_WALK_DEPTH

_MARKERS = {"directory": "/", "symlink": "@", "file": "", "other": ""}


_BREAKS = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")  # control characters, line breaks
# Every byte but those that begin a `_BREAKS` character in UTF-8: the controls (one
# byte each), 0xC2 (U+0085) and 0xE2 (U+2028, U+2029, and many that are not breaks).
_NO_BREAK_BYTES = bytes(b for b in range(0x20, 0x100) if b not in (0x7F, 0xC2, 0xE2))


def name(text: str) -> str:
    """`text` as is, or JSON-quoted when it could be misread as structure."""
    if not text or text[0] in '" ' or text[-1] in " /@" or _BREAKS.search(text):
        return json.dumps(text, ensure_ascii=False)
    return text


def names(texts: list[str]) -> list[str]:
    """`name` of each text, at a fraction of its cost for a page of them: one byte scan
    over all of them rules out any line break (a regex pass per name was most of the
    cost of a 1,000-path text block); then only the ends of each are checked."""
    joined = " ".join(texts).encode("utf-8", "surrogatepass")
    if joined.translate(None, _NO_BREAK_BYTES):  # a byte that may start one: check each
        return [name(t) for t in texts]
    return [
        t if t and t[0] not in '" ' and t[-1] not in " /@" else json.dumps(t, ensure_ascii=False)
        for t in texts
    ]


def _entry(label: str, kind: models.EntryType, size: int) -> str:
    """`name/` a directory, `name@` a symlink (ls -F), `name  123` a file with its size."""
    line = name(label) + _MARKERS[kind]
    if kind == "file":
        return f"{line}  {size}"
    if kind == "other":
        return f"{line}  (special file)"
    return line


def allowed_directories(result: models.AllowedDirectories) -> str:
    return "\n".join(name(d) for d in result.directories) or "[no allowed directories]"


def text_file(result: models.TextFile) -> str:
    """The file's own text; a one-line header only when it is not the whole file."""
    if not result.truncated:
        return result.text
    shown = len(result.text.encode("utf-8"))
    return f"[partial: {shown} of {result.size} bytes shown]\n{result.text}"


def multiple_files(result: models.MultipleFiles) -> str:
    """Each file under a `==> path <==` header, as `head` prints several files."""
    parts: list[str] = []
    for one in result.files:
        header = f"==> {name(one.path)} <=="
        if one.error is not None:
            parts.append(f"{header} [error: {one.error}]\n")
            continue
        text = one.text or ""
        if one.truncated:
            header += f" [partial: {len(text.encode('utf-8'))} of {one.size} bytes shown]"
        body = text if not text or text.endswith("\n") else text + "\n"
        parts.append(f"{header}\n{body}")
    return "\n".join(parts)


def directory_listing(result: models.DirectoryListing) -> str:
    """One entry per line, as `_entry` writes it, for a page of up to 1,000 (one
    `names` pass for the page)."""
    entries = result.entries
    labels = names([e.name for e in entries])
    lines = [
        f"{label}  {e.size}" if e.type == "file" else f"{label}{_NOT_FILE[e.type]}"
        for e, label in zip(entries, labels, strict=True)
    ]
    if result.next_offset is not None:
        lines.append(
            f"[entries {result.offset + 1}-{result.offset + len(result.entries)} of "
            f"{result.total}; next page: offset={result.next_offset}]"
        )
    return "\n".join(lines) or "[empty directory]"


def directory_tree(result: Mapping[str, Any]) -> str:
    """One line per entry, indented two spaces per level below the tree's root. Takes
    the tree as plain data of `models.DirectoryTree` (service.directory_tree builds no
    model per entry). Written for trees of 100,000 entries: one `names` pass, then one
    f-string per entry (a call of `_entry` per entry cost half again as much)."""
    tree = result["tree"]
    labels = names([e["path"].rpartition("/")[2] for e in tree])
    try:
        lines = [
            f"{_INDENTS[e['path'].count('/')]}{label}  {e['size']}"
            if e["type"] == "file"
            else f"{_INDENTS[e['path'].count('/')]}{label}{_NOT_FILE[e['type']]}"
            for e, label in zip(tree, labels, strict=True)
        ]
    except IndexError:  # deeper than any walk goes: indent the long way
        lines = [
            "  " * e["path"].count("/") + _entry(e["path"].rpartition("/")[2], e["type"], e["size"])
            for e in tree
        ]
    if result["stopped_by"] is not None:
        lines.append(
            f"[stopped by {result['stopped_by']} after {result['entries']} entries"
            + _continue(result.get("next_cursor"))
        )
    return "\n".join(lines) or "[empty directory]"


# The indent of each depth a walk reaches, and what follows a name that is not a file.
_INDENTS = ["  " * depth for depth in range(MAX_WALK_DEPTH + 1)]
_NOT_FILE = {"directory": "/", "symlink": "@", "other": "  (special file)"}


def _continue(cursor: str | None) -> str:
    """The end of a cut answer's footer: how to continue it."""
    return f"; continue with cursor={cursor}]" if cursor else "]"


def file_info(result: models.FileInfo) -> str:
    fields = result.model_dump()
    fields["path"] = name(result.path)
    return "\n".join(f"{key}: {value}" for key, value in fields.items() if value is not None)


def file_search(result: Mapping[str, Any]) -> str:
    """One path per line (`/` after a directory). Takes the plain data of
    `models.FileSearch` (service.search_files_data builds no model per match)."""
    matches = result["matches"]
    shown = names([m["path"] for m in matches])
    lines = [
        path if m["type"] == "file" else path + _MARKERS[m["type"]]
        for path, m in zip(shown, matches, strict=True)
    ]
    if result["stopped_by"] is not None:
        lines.append(
            f"[stopped by {result['stopped_by']}: {len(matches)} matches in "
            f"{result['entries_visited']} entries visited" + _continue(result["next_cursor"])
        )
    return "\n".join(lines) or "[no matches]"


def content_search(result: models.ContentSearch) -> str:
    """ripgrep's heading format: a file's path, then `line:text` for each match in it."""
    lines: list[str] = []
    current: str | None = None
    for m in result.matches:
        if m.path != current:
            if current is not None:
                lines.append("")
            lines.append(name(m.path))
            current = m.path
        lines.append(f"{m.line}:{m.text}")
    if result.stopped_by is not None:
        lines.append(
            f"[stopped by {result.stopped_by}: {len(result.matches)} matches in "
            f"{result.files_scanned} files scanned" + _continue(result.next_cursor)
        )
    return "\n".join(lines) or "[no matches]"
