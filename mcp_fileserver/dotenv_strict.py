"""A strict dotenv reader and writer for the encrypted secrets file.

python-dotenv (used for the plain `.env`) forgives: a line it cannot parse is skipped
and a repeated name silently wins. For a file of secrets that hides mistakes, so this
reader refuses both, naming the line number but never the line (it may hold a value).

Grammar, one entry per line: `NAME=value`, optionally `export NAME=value`, spaces around
`=` allowed. A value is bare (up to an inline ` #` comment, surrounding blanks removed),
'single-quoted' (literal, `\\'` for a quote) or "double-quoted" (`\\n`, `\\r`, `\\t`, `\\"`,
`\\\\` escapes); quoted values may span lines. Blank lines and `#` comments are kept by
`replace` so that `secrets set` changes one entry and nothing else. Values are literal:
no `${...}` expansion happens inside this file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENTRY = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*")
_BARE = re.compile(r"(.*?)[ \t]*(?:[ \t]#.*)?")
_DOUBLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_AFTER_QUOTE = re.compile(r"[ \t]*(?:#.*)?")


class DotenvError(ValueError):
    """The text is not strict dotenv; the message names a line, never its content."""


@dataclass(frozen=True)
class Entry:
    name: str
    value: str = field(repr=False)
    first_line: int  # 1-based, inclusive
    last_line: int


@dataclass(frozen=True)
class Document:
    """The parsed file: its entries in order, and its lines (for in-place edits)."""

    entries: tuple[Entry, ...]
    lines: tuple[str, ...] = field(repr=False)

    def as_dict(self) -> dict[str, str]:
        return {entry.name: entry.value for entry in self.entries}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(entry.name for entry in self.entries)

    def comments(self) -> tuple[str, ...]:
        """The text of every `#` comment line outside entries (for recorded recipients)."""
        inside = {n for e in self.entries for n in range(e.first_line, e.last_line + 1)}
        return tuple(
            line.strip()[1:].strip()
            for number, line in enumerate(self.lines, 1)
            if number not in inside and line.strip().startswith("#")
        )


def parse(text: str) -> Document:
    """Parse strict dotenv, or raise `DotenvError` naming the first bad line."""
    if "\x00" in text:
        raise DotenvError("contains a NUL byte; it is not a text file")
    lines = tuple(text.replace("\r\n", "\n").split("\n"))
    if lines and lines[-1] == "":
        lines = lines[:-1]
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    index = 0
    while index < len(lines):
        number = index + 1
        line = lines[index]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        head = _ENTRY.match(line)
        if head is None:
            raise DotenvError(f"line {number} is not NAME=value")
        name = head.group(1)
        rest = line[head.end() :]
        if rest[:1] in ("'", '"'):
            value, index = _quoted(lines, index, head.end(), number)
        else:
            bare = _BARE.fullmatch(rest)
            if bare is None:  # pragma: no cover - the pattern matches any single line
                raise DotenvError(f"line {number} is not NAME=value")
            value = bare.group(1)
        if name in seen:
            raise DotenvError(
                f"line {number}: {name} is already defined on line {seen[name]}; "
                "keep one definition"
            )
        seen[name] = number
        entries.append(Entry(name, value, number, index + 1))
        index += 1
    return Document(tuple(entries), lines)


def _quoted(lines: tuple[str, ...], index: int, start: int, number: int) -> tuple[str, int]:
    """The value of a quoted entry starting at `lines[index][start]`; its last line index."""
    quote = lines[index][start]
    text = lines[index][start + 1 :]
    out: list[str] = []
    while True:
        position = 0
        while position < len(text):
            char = text[position]
            if char == "\\" and position + 1 < len(text):
                following = text[position + 1]
                if quote == '"' and following in _DOUBLE_ESCAPES:
                    out.append(_DOUBLE_ESCAPES[following])
                    position += 2
                    continue
                if quote == "'" and following in ("'", "\\"):
                    out.append(following)
                    position += 2
                    continue
            if char == quote:
                if not _AFTER_QUOTE.fullmatch(text[position + 1 :]):
                    raise DotenvError(f"line {index + 1}: unexpected text after the closing quote")
                return "".join(out), index
            out.append(char)
            position += 1
        index += 1
        if index >= len(lines):
            raise DotenvError(f"line {number}: the quote opened here is never closed")
        out.append("\n")
        text = lines[index]


def format_entry(name: str, value: str) -> str:
    """One `NAME=value` entry that `parse` reads back exactly (and python-dotenv too)."""
    if not NAME.fullmatch(name):
        raise DotenvError("a name is letters, digits and '_', not starting with a digit")
    if "\x00" in value:
        raise DotenvError("a value cannot contain a NUL byte")
    if not any(c in value for c in "'\\\n\r"):
        return f"{name}='{value}'"
    escaped = "".join(
        {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c, c) for c in value
    )
    return f'{name}="{escaped}"'


def replace(document: Document, name: str, value: str) -> str:
    """The document's text with `name` set to `value`: replaced in place, else appended."""
    new = format_entry(name, value)
    lines = list(document.lines)
    for entry in document.entries:
        if entry.name == name:
            lines[entry.first_line - 1 : entry.last_line] = [new]
            break
    else:
        lines.append(new)
    return "\n".join(lines) + "\n"
