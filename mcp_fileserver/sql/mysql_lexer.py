"""Split MySQL/MariaDB text the way the server does: code, strings, identifiers, comments.

The guard must never let a parser and the server disagree about where a comment or a
string starts and ends: DBHub's `/*! ... */` bypass was exactly that (the parser dropped
a comment the server executed). So this lexer, not sqlglot, reads the raw text, by the
server's rules (sql_lex.cc):

- `'...'` and `"..."` are strings (`"` is an identifier under ANSI_QUOTES), a doubled
  quote is a quote, a backslash escapes the next character (unless NO_BACKSLASH_ESCAPES);
  `` `...` `` is an identifier (a doubled backtick is a backtick, no backslash escapes);
- `#` comments run to the next `\\n` (MariaDB) or `\\r` (MySQL, by DBHub's tests): a
  bare `\\r` in one is refused; `--` starts a comment only when followed by a space,
  a control character or the end, else it is two minus signs;
- `/* ... */` comments do not nest; `/*!`, `/*!50000`, `/*M!`, `/*M!100000` are
  *executable* comments (the server runs their content) and `/*+ ... */` holds optimizer
  hints (MySQL's `MAX_EXECUTION_TIME(0)` or `SET_VAR(...)` would lift the statement's
  time limit): each is refused outright, never parsed.

Refused as well, because two readers could split the text differently: a quoted text
whose boundaries depend on the server's SQL mode (a backslash before a quote, with and
without NO_BACKSLASH_ESCAPES; `"` under ANSI_QUOTES) unless every other mode leaves a
quote open (then the server refuses the text in that mode), `/*` inside a comment, `--` glued
to the next character, ODBC escapes (`{fn ...}`), and any control or non-ASCII
whitespace character outside quotes.

The result is a normalised text for sqlglot: comments become one space, strings are
re-quoted with `'`, and each PyMySQL placeholder (`%s`, `%(name)s`, in code only) becomes
`?`, so sqlglot never decides a comment or a string boundary itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class LexRefusal(Exception):
    """The text is refused before parsing; `violation` when it is an attack pattern."""

    def __init__(self, reason: str, *, violation: bool, unterminated: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.violation = violation
        self.unterminated = unterminated  # a quote or comment left open: a syntax error


class Kind(Enum):
    CODE = "code"
    QUOTED = "quoted"  # a string or an identifier in double quotes
    STRING = "string"  # single quotes
    IDENTIFIER = "identifier"  # backticks
    COMMENT = "comment"
    PLACEHOLDER = "placeholder"


@dataclass(frozen=True)
class Piece:
    kind: Kind
    start: int
    end: int


@dataclass(frozen=True)
class Lexed:
    pieces: tuple[Piece, ...]
    normalised: str  # what sqlglot parses
    placeholders: tuple[str | None, ...]  # None for `%s`, else the name of `%(name)s`
    quote_ends: tuple[int, ...]  # where each string and identifier closes, in `normalised`


# Characters the server skips as white space between tokens (my_isspace in every
# character set the server accepts for a connection).
_SPACE = frozenset(" \t\n\r\x0b\x0c")
# A run of characters that start nothing: skipped in one step (the rest, one by one).
_PLAIN = re.compile(r"[A-Za-z0-9_ \t\n\r.,;=<>*+()@$!?:&|^~\[\]]+")
_NAMED_PLACEHOLDER = re.compile(r"%\(([A-Za-z_][A-Za-z0-9_]*)\)s")


def lex(sql: str) -> Lexed:
    """Split `sql` as the server would, in every SQL mode, or raise `LexRefusal`."""
    pieces = _pieces(sql, backslash_escapes=True, ansi_quotes=False)
    if "\\" in sql or '"' in sql:
        for backslash, ansi in ((False, False), (True, True), (False, True)):
            try:
                other = _pieces(sql, backslash_escapes=backslash, ansi_quotes=ansi)
            except LexRefusal as exc:
                if exc.unterminated:
                    continue  # the server refuses the text in that mode: a syntax error
                raise
            if other != pieces:
                raise LexRefusal(
                    "a quoted text reads differently under the server's SQL modes "
                    "(NO_BACKSLASH_ESCAPES, ANSI_QUOTES); write a quote inside a string "
                    "as two quotes, not with a backslash",
                    violation=False,
                )
    return _normalise(sql, pieces)


def _pieces(sql: str, *, backslash_escapes: bool, ansi_quotes: bool) -> tuple[Piece, ...]:
    pieces: list[Piece] = []
    n = len(sql)
    i = 0
    code_start = 0

    def flush(upto: int) -> None:
        if upto > code_start:
            pieces.append(Piece(Kind.CODE, code_start, upto))

    while i < n:
        plain = _PLAIN.match(sql, i)
        if plain:
            i = plain.end()
            if i >= n:
                break
        c = sql[i]
        if c in "'\"`":
            flush(i)
            end = _quoted_end(
                sql, i, backslash=backslash_escapes and c != "`" and not (ansi_quotes and c == '"')
            )
            kind = {"'": Kind.STRING, '"': Kind.QUOTED, "`": Kind.IDENTIFIER}[c]
            pieces.append(Piece(kind, i, end))
            i = code_start = end
        elif c == "#" or (c == "-" and sql.startswith("--", i)):
            if c == "-" and i + 2 < n and not _is_space_or_control(sql[i + 2]):
                raise LexRefusal(
                    "`--` followed by a non-space character is read as two minus signs by "
                    "the server but as a comment elsewhere; put a space after `--` for a "
                    "comment, or write `- -`",
                    violation=True,
                )
            flush(i)
            end = sql.find("\n", i)
            end = n if end < 0 else end
            bare_cr = sql.find("\r", i, end)
            if 0 <= bare_cr < end - 1:  # CRLF and a last `\r` end the comment either way
                raise LexRefusal(
                    "a carriage return inside a -- or # comment, not before a newline: "
                    "servers disagree on where the comment ends",
                    violation=True,
                )
            pieces.append(Piece(Kind.COMMENT, i, end))
            i = code_start = end
        elif c == "/" and sql.startswith("/*", i):
            flush(i)
            end = _block_comment_end(sql, i)
            pieces.append(Piece(Kind.COMMENT, i, end))
            i = code_start = end
        elif c == "%" and (sql.startswith("%s", i) or sql.startswith("%(", i)):
            length = _placeholder_length(sql, i)
            if length:
                flush(i)
                _check_placeholder_stands_alone(sql, i, i + length)
                pieces.append(Piece(Kind.PLACEHOLDER, i, i + length))
                i = code_start = i + length
            else:
                i += 1
        elif c in "{}":
            raise LexRefusal(
                "ODBC escapes ({ ... }) are refused: the server runs the expression inside",
                violation=True,
            )
        elif c not in _SPACE and (c < " " or c == "\x7f" or c.isspace()):
            raise LexRefusal(
                f"the character U+{ord(c):04X} outside quotes is read differently by the "
                "server and the guard; use plain spaces and newlines",
                violation=True,
            )
        else:
            i += 1
    flush(n)
    return tuple(pieces)


def _quoted_end(sql: str, start: int, *, backslash: bool) -> int:
    quote = sql[start]
    i = start + 1
    n = len(sql)
    while i < n:
        c = sql[i]
        if c == "\\" and backslash:
            i += 2
        elif c == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
            else:
                return i + 1
        else:
            i += 1
    raise LexRefusal(
        "the query has an unterminated quoted text", violation=False, unterminated=True
    )


def _block_comment_end(sql: str, start: int) -> int:
    opener = sql[start + 2 : start + 4]
    if opener.startswith("!") or opener.upper() == "M!":
        raise LexRefusal(
            "executable comments (/*! ... */, /*M! ... */) are refused: the server runs "
            "their content",
            violation=True,
        )
    if opener.startswith("+"):
        raise LexRefusal(
            "optimizer hints (/*+ ... */) are refused: they can lift the statement's limits",
            violation=True,
        )
    end = sql.find("*/", start + 2)
    if end < 0:
        raise LexRefusal(
            "the query has an unterminated /* comment", violation=False, unterminated=True
        )
    if sql.find("/*", start + 2, end) >= 0:
        raise LexRefusal(
            "a /* inside a comment is refused: servers disagree on nested comments",
            violation=True,
        )
    return end + 2


def _is_space_or_control(c: str) -> bool:
    return c in _SPACE or c < " " or c == "\x7f"


def _placeholder_length(sql: str, start: int) -> int:
    if sql.startswith("%s", start):
        return 2
    match = _NAMED_PLACEHOLDER.match(sql, start)
    return match.end() - start if match else 0


def _check_placeholder_stands_alone(sql: str, start: int, end: int) -> None:
    before = sql[start - 1] if start else " "
    after = sql[end] if end < len(sql) else " "
    if _is_word_char(before) or _is_word_char(after) or before in "'\"`" or after in "'\"`":
        raise LexRefusal(
            "a placeholder (%s) must stand alone, not glued to a name or a quote",
            violation=False,
        )


def _is_word_char(c: str) -> bool:
    """A character of an unquoted MySQL identifier (any non-ASCII one included)."""
    return not c.isascii() or c.isalnum() or c in "_$"


def _normalise(sql: str, pieces: tuple[Piece, ...]) -> Lexed:
    out: list[str] = []
    names: list[str | None] = []
    ends: list[int] = []
    length = 0
    for piece in pieces:
        text = sql[piece.start : piece.end]
        if piece.kind is Kind.COMMENT:
            out.append(" ")
        elif piece.kind is Kind.PLACEHOLDER:
            match = _NAMED_PLACEHOLDER.fullmatch(text)
            names.append(match.group(1) if match else None)
            out.append("?")
        elif piece.kind is Kind.QUOTED:
            if out and out[-1].endswith("'"):
                out.append(" ")  # 'a'"b" is two strings: never let them read as 'a''b'
                length += 1
            out.append(_single_quoted(text[1:-1]))
        elif piece.kind is Kind.STRING and out and out[-1].endswith("'"):
            out.append(" ")
            length += 1
            out.append(text)
        else:
            out.append(text)
        length += len(out[-1])
        if piece.kind in (Kind.QUOTED, Kind.STRING, Kind.IDENTIFIER):
            ends.append(length - 1)
    return Lexed(
        pieces=pieces,
        normalised="".join(out),
        placeholders=tuple(names),
        quote_ends=tuple(ends),
    )


def _single_quoted(body: str) -> str:
    """A double-quoted string's body as the same string in single quotes."""
    out = ["'"]
    i = 0
    while i < len(body):
        if body[i] == "\\":
            out.append(body[i : i + 2])
            i += 2
            continue
        if body.startswith('""', i):
            out.append('"')
            i += 2
            continue
        out.append("''" if body[i] == "'" else body[i])
        i += 1
    out.append("'")
    return "".join(out)
