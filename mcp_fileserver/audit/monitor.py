"""The security monitor: suspicious argument patterns, violation counting, lockouts.

Pure logic over plain data (the policy layer wires it to calls, the recorder to the
audit log). Two separate things:

- a *finding* is an argument that looks like an attack (`scan`). It becomes a
  `security_alert` record and nothing else: it never refuses a call and never counts
  towards a lockout, because ordinary work looks like that too (a search for `../` or a
  code fence, a query for `tag = '#python'`);
- a *violation* is a call a tool actually refused on policy grounds (outside the roots,
  deny-listed, a write in SQL: `Refusal.violation`). `violation_threshold` violations of
  one tool within `window_s` seconds raise an incident and lock that tool for
  `lockout_s` seconds.

Each argument is judged as what it is (`kind_of`): a path is scanned for traversal,
system folders, shell syntax and deny-listed names; SQL for injection shapes, with its
string literals and quoted identifiers taken out first (they are data); a search
pattern, a glob or a bound parameter is data and is not scanned at all.

Counters exist only for the tools the server has, fixed at construction: no client can
add, evict or alias one.

The patterns are plain regular expressions without nested quantifiers (linear time on
any input), compiled once; a combined pre-filter keeps the common, clean call to one
search per string.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mcp_fileserver.config import MonitorSettings
from mcp_fileserver.files.denylist import DenyList

_I = re.IGNORECASE

# Checked in every string argument.
PATH_PATTERNS: dict[str, re.Pattern[str]] = {
    "path_traversal": re.compile(
        r"(?:^|[\\/])\.\.(?:[\\/]|$)|%2e%2e|\.\.%2f|\.\.%5c|%252e|\.\.;", _I
    ),
    "null_byte": re.compile(r"\x00|%00"),
    "system_path": re.compile(
        r"(?:^|[\s'\"=(,.])(?:/proc|/sys|/dev|/boot|/root|/etc|/run/secrets|/var/run/secrets)"
        r"(?:[\\/]|$|[\s'\")])|^[a-z]:[\\/](?:windows|system32)",
        _I,
    ),
    "home_dotfile": re.compile(r"(?:^|[\\/])~[\\/]?\.|\$HOME|%USERPROFILE%", _I),
}
# Checked in strings that are not SQL (SQL uses `||` and `;` legitimately).
SHELL_PATTERNS: dict[str, re.Pattern[str]] = {
    "shell_metacharacters": re.compile(
        r"\$\(|`|\$\{|(?:;|&&|\|\|?|\n)\s*(?:rm|curl|wget|nc|ncat|bash|sh|zsh|python\d?|perl|"
        r"ruby|chmod|chown|cat|echo|id|whoami|uname|sudo|su|kill|nohup)\b|>\s*/|<\(",
        _I,
    ),
}
# Checked in arguments whose name says they hold SQL.
SQL_PATTERNS: dict[str, re.Pattern[str]] = {
    # Scanned with string literals replaced by `S` (see `sql_code`): `OR 'a'='a'` is
    # `OR S=S`, and a quote that is left over is an unterminated literal.
    "sql_tautology": re.compile(
        r"\bor\s+S\s*=\s*S\b|'\s*or\s+\d+\s*=\s*\d+|"
        r"\bor\s+(?P<lhs>\d+)\s*=\s*(?P=lhs)\b|\bor\s+true\b",
        _I,
    ),
    "sql_stacked_write": re.compile(
        r";\s*(?:drop|delete|insert|update|alter|create|truncate|grant|revoke|attach|detach|"
        r"pragma|vacuum|copy|replace|merge|call|do|set|reset|load)\b",
        _I,
    ),
    "sql_comment_truncation": re.compile(r"'\s*(?:--|#|/\*)"),
    "sql_union_probe": re.compile(r"\bunion\s+(?:all\s+)?select\s+(?:null|\d+)\s*,", _I),
    "sql_time_delay": re.compile(
        r"\b(?:pg_sleep|sleep|benchmark|randomblob)\s*\(|\bwaitfor\s+delay\b", _I
    ),
    "sql_file_or_program_access": re.compile(
        r"\b(?:load_extension|pg_read_file|pg_read_binary_file|pg_ls_dir|pg_stat_file|"
        r"lo_import|lo_export|readfile|writefile|load_file|dblink|edit)\s*\(|"
        r"\binto\s+(?:out|dump)file\b|\bcopy\b[^;]{0,200}?\b(?:program|from\s+S\b|to\s+S\b)|"
        r"\battach\s+(?:database\s+)?S\b",
        _I,
    ),
    "sql_credential_catalog": re.compile(r"\b(?:pg_shadow|pg_authid|pg_user_mapping)\b", _I),
}
SQL_KEYS = frozenset({"sql", "query", "statement", "statements", "queries"})
# Arguments that are data to match or bind, never a path or a command.
DATA_KEYS = frozenset(
    {"pattern", "patterns", "glob", "exclude_patterns", "params", "parameters", "table"}
)
Kind = Literal["path", "sql", "data"]

# SQL string literals ('it''s', E'..', $tag$..$tag$) and quoted identifiers.
_SQL_QUOTED = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(?P<tag>[A-Za-z_]?\w*)\$.*?\$(?P=tag)\$", re.S
)


def kind_of(name: str) -> Kind:
    """What an argument holds, by its name (nested names inherit the outer kind)."""
    lowered = name.lower()
    if lowered in SQL_KEYS:
        return "sql"
    if lowered in DATA_KEYS:
        return "data"
    return "path"


def sql_code(sql: str) -> str:
    """`sql` with every string literal and quoted identifier replaced by `S`: what is
    left is the statement's own code, which is what injection patterns describe."""
    if "'" not in sql and '"' not in sql and "$" not in sql:
        return sql
    return _SQL_QUOTED.sub("S", sql)


def _prefilter(patterns: Mapping[str, re.Pattern[str]]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns.values()), _I)


# Every path and shell pattern needs one of these characters, `..`, or a system folder
# where `system_path` looks for one (at the start or after a space, quote, `=`, `(`, `,`
# or `.`, not as any component: `src/dev/app.py` is an ordinary path). For ASCII text a
# string with none of them cannot match, and skips the combined patterns, whose
# backtracking costs about 10 us on an ordinary path, on every call
# (tests/audit/test_policies.py checks the claim against the patterns themselves).
# The gate is three checks, not one alternation: a character class alone, a substring
# test and a pattern that starts with a literal `/` each take sre's fast scan, where the
# alternation tried every branch at every position (1.25 us against 0.48 us on a
# 40-character path). The folder names are matched on the lowered text, and the
# character before the `/` by a lookbehind placed after it, which keeps the `/` first.
_GATE_CHARS = re.compile(r"[%\x00~$:`;&|\n<>]")
_GATE_SYSTEM_FOLDER = re.compile(
    r"/(?<![^\s'\"=(,.]/)(?:proc|sys|dev|boot|root|etc|run/secrets|var/run/secrets)"
)


def plainly_clean(text: str) -> bool:
    """True only if no path or shell pattern can match `text` (a fast pre-check)."""
    return (
        text.isascii()
        and ".." not in text
        and _GATE_CHARS.search(text) is None
        and _GATE_SYSTEM_FOLDER.search(text.lower()) is None
    )


_ANY_PATH = _prefilter(PATH_PATTERNS)
_ANY_SHELL = _prefilter(SHELL_PATTERNS)
_ANY_SQL = _prefilter(SQL_PATTERNS)


@dataclass(frozen=True)
class Finding:
    pattern: str
    field: str  # where: "path", "paths[2]", "options.query"...


@dataclass(frozen=True)
class Incident:
    tool: str
    violations: int
    window_s: float
    locked_until: float | None  # wall-clock epoch seconds, None when lockout_s is 0


class SecurityMonitor:
    def __init__(
        self,
        settings: MonitorSettings,
        deny_patterns: tuple[str, ...],
        allowed_roots: tuple[str, ...] = (),
        tools: Iterable[str] = (),
    ) -> None:
        self.settings = settings
        self._deny = DenyList(deny_patterns)
        # A path inside an allowed root is not a probe of a system folder, even when the
        # user allowed /etc/myapp or runs as root with roots under /root.
        self._roots = tuple(r.rstrip("/") + "/" for r in allowed_roots)
        self._violations: dict[str, deque[float]] = {name: deque() for name in tools}
        self._locked: dict[str, tuple[float, float]] = {}  # tool -> (monotonic, wall) end

    # -- scanning -----------------------------------------------------------------------

    def scan(self, arguments: Mapping[str, Any] | None) -> list[Finding]:
        """Findings in the arguments: alerts only, never a reason to refuse or count."""
        findings: list[Finding] = []
        if not arguments:
            return findings
        for key, value in arguments.items():
            name = str(key)
            kind = kind_of(name)
            if kind == "data":
                continue
            if isinstance(value, str):  # the usual shape, without the generic walk
                self._scan_text(name or "value", value, kind, findings)
            else:
                for field, text, inner in _strings(value, name, kind, 1):
                    self._scan_text(field, text, inner, findings)
        return findings

    def _scan_text(self, field: str, text: str, kind: Kind, out: list[Finding]) -> None:
        if kind == "sql":
            code = sql_code(text)
            if _ANY_SQL.search(code):
                for name, pattern in SQL_PATTERNS.items():
                    if pattern.search(code):
                        out.append(Finding(name, field))
            return
        if not plainly_clean(text):
            if _ANY_PATH.search(text):
                for name, pattern in PATH_PATTERNS.items():
                    if pattern.search(text) and not (
                        name == "system_path" and self._inside_roots(text)
                    ):
                        out.append(Finding(name, field))
            if _ANY_SHELL.search(text):
                out.append(Finding("shell_metacharacters", field))
        if len(text) <= 4096 and self._deny.denies_components(text):
            out.append(Finding("sensitive_file", field))

    def _inside_roots(self, text: str) -> bool:
        candidate = text.strip()
        return any((candidate + "/").startswith(root) for root in self._roots)

    # -- violations and lockouts ----------------------------------------------------------

    def locked_until(self, tool: str) -> float | None:
        """Wall-clock end of this tool's lockout, or None if it is not locked."""
        entry = self._locked.get(tool)
        if entry is None:
            return None
        if time.monotonic() >= entry[0]:
            del self._locked[tool]
            return None
        return entry[1]

    def violation(self, tool: str) -> Incident | None:
        """Count one violation of `tool`; an incident (and a lockout of that same tool)
        when the threshold is reached. A name the server has no tool of is never
        counted (it is refused before it reaches a tool)."""
        window = self._violations.get(tool)
        if window is None:
            return None
        now = time.monotonic()
        window.append(now)
        while window and window[0] <= now - self.settings.window_s:
            window.popleft()
        if len(window) < self.settings.violation_threshold:
            return None
        count = len(window)
        window.clear()
        until = None
        if self.settings.lockout_s > 0:
            until = time.time() + self.settings.lockout_s
            self._locked[tool] = (now + self.settings.lockout_s, until)
        return Incident(tool, count, self.settings.window_s, until)


def _strings(value: Any, field: str, kind: Kind, depth: int) -> Iterator[tuple[str, str, Kind]]:
    if depth > 8:
        return
    if isinstance(value, str):
        yield field or "value", value, kind
    elif isinstance(value, Mapping):
        for key, item in value.items():
            name = str(key)
            inner = kind if kind != "path" else kind_of(name)
            if inner == "data":
                continue
            yield from _strings(item, f"{field}.{name}" if field else name, inner, depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value[:1000]):
            yield from _strings(item, f"{field}[{index}]", kind, depth + 1)
