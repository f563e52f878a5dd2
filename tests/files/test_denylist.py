"""The deny-list hides real secret stores and nothing else: both sides by a table of
cases on a real tree; and its fast matchers agree with a plain reading of the rules
(`fnmatch`, `.gitignore` syntax: `!` exceptions, `/` for directories, last match wins)."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_fileserver.errors import NotAllowed
from mcp_fileserver.files.confine import Method
from mcp_fileserver.files.denylist import DEFAULT_DENY_PATTERNS, DenyList, effective_patterns
from mcp_fileserver.files.service import FileService
from tests.conftest import make_settings
from tests.files.helpers import tree_model

DENY = DenyList(DEFAULT_DENY_PATTERNS)

# Real secret stores: refused to read, left out of listings, trees and searches.
HIDDEN = [
    ".env",
    ".env.production",
    "deploy/prod.env",
    ".envrc",
    ".ssh/id_rsa",
    ".ssh/config",
    "keys/id_rsa",
    "keys/id_ed25519.pub",
    "keys/id_rsa_work",
    "tls/server.pem",
    "tls/server.key",
    "certs/store.p12",
    ".aws/credentials",
    ".aws/config",
    "backup/credentials",
    "gcp/credentials.json",
    "gcp/client_secret_1234.apps.googleusercontent.com.json",
    "gcloud/application_default_credentials.json",
    ".netrc",
    ".pgpass",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".kube/config",
    "clusters/kubeconfig",
    "config/secrets.yaml",
    "config/secrets.json",
    "vault/passwords.kdbx",
    ".docker/config.json",
    ".gnupg/pubring.kbx",
    "etc/shadow",
]

# Ordinary source code and documentation that merely sounds like a secret.
VISIBLE = [
    "secrets.py",
    "lib/secrets.pyi",
    "src/credentials/__init__.py",
    "src/credentials/store.py",
    "tests/test_credentials.py",
    "pkg/credentials.go",
    "web/secrets.ts",
    "docs/keys.md",
    "docs/secrets.md",
    "docs/ssh-keys.rst",
    "tools/id_rsa_parser.py",
    ".env.example",
    "ui/shadow/index.ts",
    "deploy/secrets/README.md",
    "config/settings.yaml",
    "keyboard/layout.txt",
    "environment.py",
]


def _tree(base: Path) -> Path:
    root = base / "root"
    for rel in (*HIDDEN, *VISIBLE):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"contents of {rel}\n")
    return root


@pytest.fixture
def service(tmp_path: Path) -> FileService:
    root = _tree(tmp_path)
    return FileService.from_settings(
        make_settings(allow=[root], log_dir=tmp_path / "logs"), Method.OPENAT2
    )


@pytest.mark.parametrize("rel", HIDDEN)
def test_secret_stores_are_refused(service: FileService, rel: str) -> None:
    with pytest.raises(NotAllowed):
        service.read_text_file(rel)
    with pytest.raises(NotAllowed):
        service.get_file_info(rel)


@pytest.mark.parametrize("rel", VISIBLE)
def test_source_and_docs_are_served(service: FileService, rel: str) -> None:
    assert service.read_text_file(rel).text == f"contents of {rel}\n"
    assert service.get_file_info(rel).type == "file"


def test_walks_list_exactly_the_visible_files(service: FileService) -> None:
    tree = tree_model(service, ".", max_depth=10, max_entries=10_000)
    files = {e.path for e in tree.tree if e.type == "file"}
    assert files == set(VISIBLE)
    found = service.search_file_contents(".", "contents of")
    root = service.confinement.roots[0].text
    assert {m.path.removeprefix(root + "/") for m in found.matches} == set(VISIBLE)
    listing = service.list_directory("src")
    assert [e.name for e in listing.entries] == ["credentials"]


def test_extra_patterns_come_last_and_win() -> None:
    deny = DenyList(effective_patterns(None, ("!.npmrc", "*.py", "private")))
    assert not deny.denies_name(".npmrc", is_dir=False)
    assert deny.denies_name("secrets.py", is_dir=False)  # after the built-in `!*.py`
    assert deny.denies_name("private", is_dir=True)  # a plain pattern names folders too
    assert deny.denies_name(".env", is_dir=False)


# -- the fast matchers against a plain reading of the rules ---------------------------


def _reference(patterns: list[str], name: str, *, is_dir: bool) -> bool:
    """The last rule that matches decides (as in .gitignore)."""
    verdict = False
    for raw in patterns:
        exception = raw.startswith("!")
        glob = raw[1:] if exception else raw
        dirs_only = glob.endswith("/")
        glob = glob.rstrip("/")
        if (dirs_only and not glob) or (dirs_only and not is_dir):
            continue
        if re.match(fnmatch.translate(glob.casefold()), name.casefold()):
            verdict = not exception
    return verdict


def _reference_path(patterns: list[str], parts: list[str], *, last_is_dir: bool) -> bool:
    return any(
        _reference(patterns, p, is_dir=i < len(parts) - 1 or last_is_dir)
        for i, p in enumerate(parts)
    )


TOKENS = [
    "/",
    "\\",
    ".",
    "..",
    "env",
    ".env",
    ".ENV",
    ".env.example",
    "id_rsa",
    "x.pem",
    "Key",
    "notes",
    "\u017f",  # long s: casefolds to s
    "\u0130",  # dotted capital I
    "\u00df",  # sharp s: casefolds to ss
    "credentials",
    "secrets",
    ".py",
    ".ssh",
    "a",
    "b.txt",
    ".SSH",
    "shadow",
    "*",
    " ",
]
_GLOB_ALPHABET = st.sampled_from([*"*?[]!-.ab/", "A", "\u017f", "\u00df", "\\", "env"])
_NAME_ALPHABET = st.sampled_from([*".ab-!]", "A", "B", "s", "ss", "\u017f", "\u00df", "\n", "env"])
_PATTERNS = st.lists(st.lists(_GLOB_ALPHABET, max_size=6).map("".join), max_size=4)


@given(patterns=_PATTERNS, name=st.lists(_NAME_ALPHABET, max_size=8).map("".join), d=st.booleans())
@settings(max_examples=1000, deadline=None)
def test_a_name_is_denied_exactly_as_the_rules_read(
    patterns: list[str], name: str, d: bool
) -> None:
    """Patterns are sorted into sets, prefix and suffix tuples and a regex for speed;
    the verdict must stay the plain one, whatever the pattern's shape."""
    assert DenyList(patterns).denies_name(name, is_dir=d) == _reference(patterns, name, is_dir=d)


@given(
    patterns=_PATTERNS,
    text=st.lists(st.sampled_from([*_NAME_ALPHABET.elements, "/", "\\", ""]), max_size=10).map(
        "".join
    ),
    last_is_dir=st.booleans(),
)
@settings(max_examples=1000, deadline=None)
def test_a_path_is_denied_exactly_as_its_components_are(
    patterns: list[str], text: str, last_is_dir: bool
) -> None:
    parts = [part for part in re.split(r"[\\/]", text) if part]
    deny = DenyList(patterns)
    assert deny.denies_parts(parts, last_is_dir=last_is_dir) == _reference_path(
        patterns, parts, last_is_dir=last_is_dir
    )
    # The monitor does not know what the last component is: it reads it as a file name.
    as_file = _reference_path(patterns, parts, last_is_dir=False)
    assert deny.denies_components(text) == (bool(patterns) and as_file)


@given(
    name=st.lists(st.sampled_from(TOKENS), max_size=4).map("".join) | st.text(max_size=20),
    d=st.booleans(),
)
@settings(max_examples=500, deadline=None)
def test_the_default_patterns_deny_exactly_as_they_read(name: str, d: bool) -> None:
    expected = _reference(list(DEFAULT_DENY_PATTERNS), name, is_dir=d)
    assert DENY.denies_name(name, is_dir=d) == expected


def test_one_pass_check_examples() -> None:
    assert DENY.denies_components("home/u/.SSH/config")
    assert DENY.denies_components("C:\\Users\\u\\.ssh\\id_rsa.pub")
    assert DENY.denies_components("keys/id_rsa")
    assert not DENY.denies_components("docs/keynote/readme.md")
    assert not DENY.denies_components("src/credentials/__init__.py")
    assert DENY.denies_components("/etc/shadow")
    assert DENY.denies_components("deploy/.env")
    assert not DenyList(()).denies_components("a/.env")


@given(
    patterns=_PATTERNS,
    names=st.lists(st.lists(_NAME_ALPHABET, min_size=1, max_size=6).map("".join), max_size=6),
    dirs=st.lists(st.booleans(), min_size=6, max_size=6),
)
@settings(max_examples=1000, deadline=None)
def test_a_directory_is_prefiltered_without_missing_a_denied_name(
    patterns: list[str], names: list[str], dirs: list[bool]
) -> None:
    """A walk asks `candidates` once per directory (one search over the joined names)
    and decides only those names: every denied name must be among them."""
    deny = DenyList(patterns)
    names = [n.replace("\n", "x") for n in dict.fromkeys(names)]  # directory names
    candidates = set(deny.candidates(names))
    for i, name in enumerate(names):
        if deny.denies_name(name, is_dir=dirs[i]):
            assert i in candidates, (patterns, name)


def test_the_default_patterns_prefilter_every_denied_name() -> None:
    names = [t for t in TOKENS if t and "/" not in t and "\0" not in t]
    candidates = set(DENY.candidates(names))
    for i, name in enumerate(names):
        for d in (False, True):
            if DENY.denies_name(name, is_dir=d):
                assert i in candidates, name
