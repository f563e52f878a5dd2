"""Pure units: redaction rules, monitor patterns and lockout, token buckets."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_fileserver.audit import monitor as monitor_module
from mcp_fileserver.audit import ratelimit as ratelimit_module
from mcp_fileserver.audit.monitor import SecurityMonitor
from mcp_fileserver.audit.ratelimit import RateLimiter
from mcp_fileserver.audit.redact import Redactor, is_sensitive_key
from mcp_fileserver.config import MonitorSettings, RateLimitSettings
from mcp_fileserver.errors import RateLimited
from mcp_fileserver.files.denylist import DEFAULT_DENY_PATTERNS
from mcp_fileserver.secrets import SecretStore

SECRET = "correct-horse-battery"


def redactor(max_chars: int = 64) -> Redactor:
    store = SecretStore({"DB_PASS": SECRET}, secrets_dir=None)
    store.resolve("${DB_PASS}", where="test")
    return Redactor(store, max_chars)


# -- redaction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["password", "db_password", "PASSWD", "api_key", "apiKey", "X-Auth-Token", "token",
     "clientSecret", "private_key", "Authorization", "credentials", "session_id", "cookie"],
)  # fmt: skip
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key", ["path", "paths", "query", "keyword", "monkey", "author", "pattern", "head", "sql"]
)
def test_ordinary_keys(key: str) -> None:
    assert not is_sensitive_key(key)


def test_sensitive_keys_masked_at_any_depth() -> None:
    args = {"a": {"b": [{"password": {"nested": "x"}}, {"token": 3}]}, "path": "p"}
    assert redactor().arguments(args) == {
        "a": {"b": [{"password": "***"}, {"token": "***"}]},
        "path": "p",
    }


def test_secret_masked_before_shortening() -> None:
    """Cutting first could leave half a secret behind; masking first never does."""
    r = redactor(max_chars=16)
    value = "x" * 10 + SECRET + "y" * 50
    cleaned = r.text(value)
    assert SECRET[:6] not in cleaned and cleaned.startswith("x" * 10 + "***")
    assert cleaned.endswith(f"...[+{len('x' * 10 + '***' + 'y' * 50) - 16} chars]")


def test_secret_in_keys_and_odd_values() -> None:
    cleaned = redactor().arguments(
        {f"k{SECRET}": float("nan"), "big": list(range(100)), "obj": object()}
    )
    text = json.dumps(cleaned, allow_nan=False)
    assert SECRET not in text
    assert cleaned["big"][-1] == "...[+50 items]"


@given(st.text(max_size=40), st.text(max_size=40))
@settings(max_examples=200, deadline=None)
def test_a_known_secret_never_survives(prefix: str, suffix: str) -> None:
    assert SECRET not in redactor(max_chars=16).text(prefix + SECRET + suffix)


# -- monitor ---------------------------------------------------------------------------


def scan(args: dict) -> set[str]:
    monitor = SecurityMonitor(MonitorSettings(), DEFAULT_DENY_PATTERNS)
    return {f.pattern for f in monitor.scan(args)}


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        ({"path": "../../etc/passwd"}, "path_traversal"),
        ({"path": "a/..\\..\\b"}, "path_traversal"),
        ({"path": "%2e%2e/secret"}, "path_traversal"),
        ({"path": "/proc/self/environ"}, "system_path"),
        ({"path": "/etc/shadow"}, "system_path"),
        ({"path": "notes\x00.txt"}, "null_byte"),
        ({"path": "home/u/.ssh/id_rsa"}, "sensitive_file"),
        ({"path": "config/.env"}, "sensitive_file"),
        ({"path": "~/.aws/credentials"}, "home_dotfile"),
        ({"path": "x; rm -rf /"}, "shell_metacharacters"),
        ({"path": "$(id)"}, "shell_metacharacters"),
        ({"sql": "SELECT * FROM u WHERE name = '' OR '1'='1'"}, "sql_tautology"),
        ({"query": "SELECT 1; DROP TABLE users"}, "sql_stacked_write"),
        ({"query": "SELECT * FROM u WHERE n = admin'-- "}, "sql_comment_truncation"),
        ({"query": "SELECT a FROM t UNION SELECT NULL, NULL"}, "sql_union_probe"),
        ({"query": "SELECT pg_sleep(10)"}, "sql_time_delay"),
        ({"query": "SELECT pg_read_file('/etc/passwd')"}, "sql_file_or_program_access"),
        ({"query": "COPY t FROM PROGRAM 'id'"}, "sql_file_or_program_access"),
        ({"query": "ATTACH DATABASE '/tmp/x.db' AS x"}, "sql_file_or_program_access"),
        ({"query": "SELECT * FROM pg_authid"}, "sql_credential_catalog"),
        ({"paths": ["ok.txt", {"deep": "../x"}]}, "path_traversal"),
    ],
)
def test_suspicious_patterns(args: dict, pattern: str) -> None:
    assert pattern in scan(args)


@pytest.mark.parametrize(
    "args",
    [
        {"path": "notes/2024/report.md"},
        {"path": "src/app/main.py", "head": 10},
        {"pattern": "**/*.py", "exclude_patterns": ["node_modules", ".git"]},
        {"path": "docs/..hidden-but-fine.txt"},
        {"query": "SELECT name, count(*) FROM books GROUP BY name ORDER BY 2 DESC LIMIT 5"},
        {"query": "SELECT a || b FROM t WHERE c = 'x' AND d = 1"},
        {"query": "SELECT * FROM sqlite_master"},
        {"database": "app", "query": "WITH x AS (SELECT 1) SELECT * FROM x"},
    ],
)
def test_ordinary_arguments_raise_nothing(args: dict) -> None:
    assert scan(args) == set()


_GATE_TOKENS = [
    *"/\\.~$:;&|<>`%\x00\n \t'\"=(,)ab",
    *["..", "proc", "sys", "dev", "boot", "root", "etc", "run", "secrets", "var", "PROC"],
    *["Etc", "2e", "2f", "5c", "25", "00", "HOME", "USERPROFILE", "c:", "windows", "rm"],
    *["bash", "curl", "id", "{", "(", "/Sys", "/ROOT"],
]
# Strings near the gate's edges (tokens that make or miss a pattern) and plain ASCII text.
_GATE_TEXT = st.one_of(
    st.lists(st.sampled_from(_GATE_TOKENS), max_size=12).map("".join),
    st.text(alphabet=st.characters(max_codepoint=127), max_size=40),
)
_PATH_AND_SHELL = {**monitor_module.PATH_PATTERNS, **monitor_module.SHELL_PATTERNS}


@given(_GATE_TEXT)
@settings(max_examples=3000, deadline=None)
def test_the_clean_fast_path_never_hides_a_pattern(text: str) -> None:
    """`plainly_clean` lets a string skip the path and shell patterns: it may only say so
    of a string that none of them matches."""
    if monitor_module.plainly_clean(text):
        assert not [name for name, rx in _PATH_AND_SHELL.items() if rx.search(text)]


# The gate as one alternation, as it was first written: the split gate must answer the same.
_ONE_ALTERNATION_GATE = re.compile(
    r"[%\x00~$:`;&|\n<>]|\.\.|"
    r"(?:^|[\s'\"=(,.])/(?:proc|sys|dev|boot|root|etc|run/secrets|var/run/secrets)",
    re.IGNORECASE,
)


@given(_GATE_TEXT)
@settings(max_examples=3000, deadline=None)
def test_the_split_gate_answers_as_one_alternation(text: str) -> None:
    assert monitor_module.plainly_clean(text) == (_ONE_ALTERNATION_GATE.search(text) is None)


@given(
    st.sampled_from(sorted(_PATH_AND_SHELL)).flatmap(
        lambda name: st.from_regex(_PATH_AND_SHELL[name], alphabet=st.characters(max_codepoint=127))
    )
)
@settings(max_examples=3000, deadline=None)
def test_every_string_a_pattern_matches_takes_the_full_scan(text: str) -> None:
    assert not monitor_module.plainly_clean(text)


@pytest.mark.parametrize("text", ["/\u017fys/x", "/etc\u0131/x", "caf\u00e9/../x"])
def test_non_ascii_text_always_takes_the_full_scan(text: str) -> None:
    assert not monitor_module.plainly_clean(text)


def test_lockout_after_threshold_within_window(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(monitor_module.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(monitor_module.time, "time", lambda: 1_700_000_000 + clock[0])
    monitor = SecurityMonitor(
        MonitorSettings(violation_threshold=3, window_s=10, lockout_s=60), (), (), ("read", "other")
    )
    assert monitor.violation("read") is None
    clock[0] += 11  # the first violation leaves the window
    assert monitor.violation("read") is None
    assert monitor.violation("read") is None
    incident = monitor.violation("read")
    assert incident is not None and incident.violations == 3
    assert incident.locked_until == 1_700_000_000 + clock[0] + 60
    assert monitor.locked_until("read") == incident.locked_until
    assert monitor.locked_until("other") is None
    clock[0] += 60
    assert monitor.locked_until("read") is None


def test_lockout_zero_only_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    monitor = SecurityMonitor(MonitorSettings(violation_threshold=1, lockout_s=0), (), (), ["t"])
    incident = monitor.violation("t")
    assert incident is not None and incident.locked_until is None
    assert monitor.locked_until("t") is None


# -- rate limits -------------------------------------------------------------------------


def test_token_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(ratelimit_module.time, "monotonic", lambda: clock[0])
    limiter = RateLimiter(
        RateLimitSettings(
            per_tool_per_s=2, per_tool_burst=2, total_per_s=100, total_burst=3, max_wait_s=0
        ),
        ("a", "b", "c"),
    )
    assert limiter.reserve("a") == 0
    assert limiter.reserve("a") == 0
    with pytest.raises(RateLimited, match=r"retry in 0\.5 s"):
        limiter.reserve("a")
    assert limiter.reserve("b") == 0  # own bucket; the total has one token left
    with pytest.raises(RateLimited, match="in total"):
        limiter.reserve("c")
    clock[0] += 0.5  # a refused call consumed nothing: one token each again
    assert limiter.reserve("a") == 0


def test_a_short_excess_waits_and_a_flood_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(ratelimit_module.time, "monotonic", lambda: clock[0])
    settings = RateLimitSettings(per_tool_per_s=10, per_tool_burst=5, max_wait_s=1.0)
    limiter = RateLimiter(settings, ("a",))
    waits = [limiter.reserve("a") for _ in range(15)]
    assert waits[:5] == [0] * 5
    # the next ten wait 0.1 s more each, up to the bound
    assert waits[5:] == pytest.approx([0.1 * n for n in range(1, 11)])
    with pytest.raises(RateLimited, match=r"too many calls to a .*retry in 0\.1 s"):
        limiter.reserve("a")
    clock[0] += 0.1
    assert limiter.reserve("a") == pytest.approx(1.0)


def test_unknown_names_have_one_bucket_of_their_own() -> None:
    settings = RateLimitSettings(per_tool_burst=3, total_burst=4, max_wait_s=0)
    limiter = RateLimiter(settings, ("read",))
    for n in range(3):
        limiter.reserve(f"invented{n}")
    with pytest.raises(RateLimited, match=r"\(unknown tools\)"):
        limiter.reserve("yet-another")
    # neither the real tool's bucket nor the total was touched
    assert [limiter.reserve("read") for _ in range(3)] == [0, 0, 0]


def test_system_paths_inside_an_allowed_root_are_not_probes() -> None:
    monitor = SecurityMonitor(MonitorSettings(), (), ("/etc/myapp", "/root/project"))
    assert monitor.scan({"path": "/etc/myapp/settings.ini"}) == []
    assert monitor.scan({"path": "/root/project/src/main.py"}) == []
    assert {f.pattern for f in monitor.scan({"path": "/etc/myapp/../passwd"})} == {"path_traversal"}
    assert {f.pattern for f in monitor.scan({"path": "/etc/myappx/a"})} == {"system_path"}
    assert {f.pattern for f in monitor.scan({"path": "/root/.ssh/id_rsa"})} >= {"system_path"}
