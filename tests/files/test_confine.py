"""Unit tests of the confinement module, run against every resolution mechanism."""

from __future__ import annotations

import errno
import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from mcp_fileserver.errors import InvalidRequest, NotAllowed, PolicyViolation
from mcp_fileserver.files import confine
from mcp_fileserver.files.confine import Confinement, Method, split_path, walk_open
from mcp_fileserver.files.denylist import DEFAULT_DENY_PATTERNS, DenyList
from tests.files.helpers import CANARY, SAFE, Workspace, exchange

ALL_METHODS = [Method.OPENAT2, Method.WALK, Method.REALPATH]


def make(ws: Workspace, method: Method, *extra_roots: Path) -> Confinement:
    return Confinement([ws.root, *extra_roots], DenyList(DEFAULT_DENY_PATTERNS), method)


def read(c: Confinement, path: str) -> str:
    with c.open(path, want="file") as f:
        return os.read(f.fd, 1 << 16).decode()


@pytest.fixture(params=ALL_METHODS, ids=lambda m: m.value)
def any_method(request: pytest.FixtureRequest) -> Method:
    return request.param


# -- controls: legitimate paths work -------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "sub/notes.txt",
        "./sub/notes.txt",
        "sub//notes.txt",
        "sub/deeper/../notes.txt",
        "sub/./deeper/./../notes.txt",
        "{root}/sub/notes.txt",
        "{root}//sub/notes.txt",
        "{root}/sub/deeper/../notes.txt",
    ],
)
def test_legitimate_paths_open(ws: Workspace, any_method: Method, path: str) -> None:
    c = make(ws, any_method)
    assert read(c, path.format(root=ws.root)) == SAFE


def test_symlinks_that_stay_inside_work(ws: Workspace, any_method: Method) -> None:
    (ws.root / "rel_in").symlink_to("sub/notes.txt")
    (ws.root / "abs_in").symlink_to(ws.root / "sub" / "notes.txt")
    (ws.root / "dir_in").symlink_to("sub")
    (ws.root / "sub" / "up_in").symlink_to("../hello.txt")
    (ws.root / "chain1").symlink_to("chain2")
    (ws.root / "chain2").symlink_to("dir_in/notes.txt")
    c = make(ws, any_method)
    for path in ("rel_in", "abs_in", "dir_in/notes.txt", "chain1"):
        assert read(c, path) == SAFE
    assert read(c, "sub/up_in").startswith("hello world")
    with c.open("rel_in") as f:
        assert f.rel == ("sub", "notes.txt")  # the real location, for display and deny-list
        assert f.path == str(ws.root / "sub" / "notes.txt")


def test_root_itself_opens_as_directory(ws: Workspace, any_method: Method) -> None:
    c = make(ws, any_method)
    for path in (".", str(ws.root), f"{ws.root}/", "sub/.."):
        with c.open(path, want="dir") as d:
            assert d.rel == ()
            assert stat.S_ISDIR(d.stat.st_mode)


# -- escapes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "..",
        "../",
        "../outside/canary.txt",
        "./../outside/canary.txt",
        "sub/../../outside/canary.txt",
        "sub/deeper/../../../outside/canary.txt",
        "sub/..//../outside/canary.txt",
        "{root}/../outside/canary.txt",
        "{root}/sub/../../outside/canary.txt",
        "{outside}/canary.txt",
        "{root}-evil/canary.txt",
        "{root}_backup/canary.txt",
        "{root}'/canary.txt",
        "{root} /canary.txt",
        "{root}\t/canary.txt",
        "{root}x/canary.txt",
        "/etc/passwd",
        "/",
    ],
)
def test_escapes_are_refused(ws: Workspace, any_method: Method, path: str) -> None:
    c = make(ws, any_method)
    with pytest.raises(NotAllowed) as info:
        c.open(path.format(root=ws.root, outside=ws.outside))
    assert str(info.value) == "not found or not allowed"


def test_escaping_symlinks_are_refused_without_naming_the_target(
    ws: Workspace, any_method: Method
) -> None:
    (ws.root / "rel_out").symlink_to("../outside/canary.txt")
    (ws.root / "abs_out").symlink_to(ws.canary_file)
    (ws.root / "dir_out").symlink_to("../outside")
    (ws.root / "abs_dir_out").symlink_to(ws.outside)
    (ws.root / "sub" / "deep_out").symlink_to("../../outside")
    (ws.root / "c1").symlink_to("c2")
    (ws.root / "c2").symlink_to("sub/c3")
    (ws.root / "sub" / "c3").symlink_to("../rel_out")
    (ws.root / "root_alias").symlink_to("../root/../outside/canary.txt")
    c = make(ws, any_method)
    for path in (
        "rel_out",
        "abs_out",
        "dir_out/canary.txt",
        "abs_dir_out/canary.txt",
        "sub/deep_out/canary.txt",
        "c1",
        "root_alias",
        "dir_out",
    ):
        with pytest.raises(NotAllowed) as info:
            c.open(path)
        assert str(ws.outside) not in str(info.value)
        assert info.value.detail  # the operator learns why


def test_loops_fail_fast(ws: Workspace, any_method: Method) -> None:
    (ws.root / "loop1").symlink_to("loop2")
    (ws.root / "loop2").symlink_to("loop1")
    (ws.root / "self").symlink_to("self")
    (ws.root / "sub" / "back").symlink_to("..")  # a directory loop that stays inside
    c = make(ws, any_method)
    for path in ("loop1", "self", "self/x"):
        with pytest.raises(NotAllowed):
            c.open(path)
    assert read(c, "sub/back/sub/back/sub/notes.txt") == SAFE


def test_symlink_limit(ws: Workspace) -> None:
    for i in range(confine.MAX_SYMLINKS + 5):
        (ws.root / f"l{i}").symlink_to(f"l{i + 1}")
    (ws.root / f"l{confine.MAX_SYMLINKS + 5}").write_text(SAFE)
    c = make(ws, Method.WALK)
    with pytest.raises(NotAllowed) as info:
        c.open("l0")
    assert info.value.detail == "too many symlinks"
    assert read(c, "l10") == SAFE  # a shorter chain is fine


def test_literal_input(ws: Workspace, any_method: Method) -> None:
    """No trimming, unquoting, percent-decoding, file:// or ~ expansion."""
    c = make(ws, any_method)
    for path in (
        f"file://{ws.root}/hello.txt",
        "%2e%2e/outside/canary.txt",
        "sub%2fnotes.txt",
        "~/hello.txt",
        "~",
        " hello.txt",
        "hello.txt ",
        "'hello.txt'",
        '"hello.txt"',
        f" {ws.root}/hello.txt",
    ):
        with pytest.raises(NotAllowed):
            c.open(path)
    (ws.root / "~").mkdir()
    (ws.root / "~" / "t.txt").write_text(SAFE)
    assert read(c, "~/t.txt") == SAFE  # a directory literally named ~


def test_nul_and_empty_are_invalid(ws: Workspace, any_method: Method) -> None:
    c = make(ws, any_method)
    for path in ("hello.txt\0", "\0", f"{ws.root}/\0/../../outside/canary.txt"):
        with pytest.raises(InvalidRequest, match="NUL"):
            c.open(path)
    with pytest.raises(InvalidRequest, match="empty"):
        c.open("")


def test_relative_path_is_ambiguous_with_several_roots(ws: Workspace, any_method: Method) -> None:
    other = ws.base / "second"
    other.mkdir()
    (other / "b.txt").write_text("second root\n")
    c = make(ws, any_method, other)
    with pytest.raises(InvalidRequest, match="ambiguous"):
        c.open("hello.txt")
    assert read(c, f"{ws.root}/hello.txt").startswith("hello")
    assert read(c, f"{other}/b.txt") == "second root\n"


def test_nested_roots_pick_the_longest(ws: Workspace, any_method: Method) -> None:
    c = make(ws, any_method, ws.root / "sub")
    with c.open(f"{ws.root}/sub/notes.txt") as f:
        assert f.root.path == ws.root / "sub"
        assert f.rel == ("notes.txt",)


def test_deny_list_on_every_component(ws: Workspace, any_method: Method) -> None:
    (ws.root / ".env").write_text(f"TOKEN={CANARY}\n")
    (ws.root / ".ssh").mkdir()
    (ws.root / ".ssh" / "config").write_text(CANARY)
    (ws.root / "sub" / "id_rsa").write_text(CANARY)
    (ws.root / "sub" / "Server.PEM").write_text(CANARY)
    (ws.root / "env_link").symlink_to(".env")  # an innocent name leading to a denied one
    (ws.root / "ssh_dir").symlink_to(".ssh")
    c = make(ws, any_method)
    for path in (
        ".env",
        ".ENV",
        ".ssh/config",
        ".SSH/config",
        "sub/id_rsa",
        "sub/Server.PEM",
        ".ssh/../hello.txt",
        "env_link",
        "ssh_dir/config",
        f"{ws.root}/sub/../.env",
    ):
        with pytest.raises(NotAllowed):
            c.open(path)


def test_deny_list_is_configurable(ws: Workspace) -> None:
    (ws.root / ".env").write_text("X=1\n")
    (ws.root / "secret.txt").write_text(CANARY)
    c = Confinement([ws.root], DenyList(["secret.*"]), Method.OPENAT2)
    assert read(c, ".env") == "X=1\n"
    with pytest.raises(NotAllowed):
        c.open("secret.txt")


def test_special_files_refused_without_blocking(ws: Workspace, any_method: Method) -> None:
    os.mkfifo(ws.root / "fifo")
    c = make(ws, any_method)
    with pytest.raises(PolicyViolation) as info:
        c.open("fifo", want="file")
    assert info.value.detail == "fifo"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(ws.root / "sock"))
        with pytest.raises(PolicyViolation) as info:
            c.open("sock", want="file")
        assert info.value.detail == "socket"
    with pytest.raises(InvalidRequest, match="directory"):
        c.open("sub", want="file")
    with pytest.raises(InvalidRequest, match="not a directory"):
        c.open("hello.txt", want="dir")


def test_lstat_reports_symlink_itself(ws: Workspace, any_method: Method) -> None:
    (ws.root / "abs_out").symlink_to(ws.canary_file)
    c = make(ws, any_method)
    found = c.lstat("abs_out")
    assert stat.S_ISLNK(found.stat.st_mode)
    assert found.path == str(ws.root / "abs_out")
    assert stat.S_ISDIR(c.lstat(".").stat.st_mode)
    with pytest.raises(NotAllowed):
        c.lstat("../outside/canary.txt")
    with pytest.raises(NotAllowed):
        c.lstat("missing")


def test_split_path_keeps_dotdot() -> None:
    assert split_path("/a//b/./../c/") == ("a", "b", "..", "c")


def test_openat2_refusal_falls_back_to_walk(ws: Workspace, monkeypatch) -> None:
    """ENOSYS (old kernel) or EPERM (seccomp) must not break anything."""

    def unavailable(*_: object) -> int:
        raise OSError(errno.ENOSYS, "no openat2")

    monkeypatch.setattr(confine, "openat2", unavailable)
    c = make(ws, Method.OPENAT2)
    assert read(c, "sub/notes.txt") == SAFE
    assert c.method is Method.WALK
    with pytest.raises(NotAllowed):
        c.open("../outside/canary.txt")


def test_walk_open_returns_real_components(ws: Workspace) -> None:
    (ws.root / "d").symlink_to("sub/deeper")
    c = make(ws, Method.WALK)
    fd, rel = walk_open(c.roots[0], ["d", "..", "notes.txt"], confine.FILE_FLAGS)
    os.close(fd)
    assert rel == ("sub", "notes.txt")


def test_narrow_intersects_with_client_roots(ws: Workspace, any_method: Method) -> None:
    c = make(ws, any_method)
    assert c.narrow(["/"]) == c.roots  # a wider client root keeps the configured one
    assert c.narrow([str(ws.base)]) == c.roots
    assert c.narrow([str(ws.outside)]) == ()  # outside: ignored
    assert c.narrow([str(ws.root) + "-evil"]) == ()
    assert c.narrow([f"{ws.root}/../outside"]) == ()
    (narrowed,) = c.narrow([str(ws.root / "sub")])
    assert narrowed.path == ws.root / "sub"
    assert read(c, "sub/notes.txt") == SAFE
    with pytest.raises(NotAllowed):
        c.open(str(ws.root / "hello.txt"), roots=[narrowed])
    with c.open("notes.txt", roots=[narrowed]) as f:
        assert f.path == str(ws.root / "sub" / "notes.txt")
    with pytest.raises(NotAllowed):
        c.open("../hello.txt", roots=[narrowed])
    assert c.narrow([str(ws.root / "sub")]) == (narrowed,)  # cached, same descriptor
    (ws.root / "to_out").symlink_to(ws.outside)
    assert c.narrow([str(ws.root / "to_out")]) == ()  # a client root cannot escape either
    assert c.narrow([str(ws.root / ".ssh")]) == ()


def test_no_effective_roots_refuses_everything(ws: Workspace) -> None:
    c = make(ws, Method.OPENAT2)
    with pytest.raises(NotAllowed):
        c.open("hello.txt", roots=())


@pytest.mark.parametrize("method", [Method.OPENAT2, Method.WALK], ids=lambda m: m.value)
def test_race_swapping_directory_for_symlink(ws: Workspace, method: Method) -> None:
    """Thousands of reads while another thread swaps `race` between a directory inside
    the root and a symlink to the outside: every read is the safe file or refused."""
    real = ws.root / "race"
    real.mkdir()
    (real / "canary.txt").write_text(SAFE)  # same name as the outside canary
    link = ws.root / "race.link"
    link.symlink_to(ws.outside)
    c = make(ws, method)
    stop = threading.Event()
    swaps = 0

    def flip() -> None:
        nonlocal swaps
        while not stop.is_set():
            exchange(real, link)
            swaps += 1

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    seen = {"safe": 0, "refused": 0}
    try:
        for _ in range(3000):
            try:
                text = read(c, "race/canary.txt")
            except (NotAllowed, InvalidRequest):
                seen["refused"] += 1
                continue
            assert text == SAFE
            assert CANARY not in text
            seen["safe"] += 1
    finally:
        stop.set()
        flipper.join()
    assert seen["safe"] + seen["refused"] == 3000
    assert seen["safe"] > 0  # legitimate reads keep working during the race
    assert swaps > 100  # the race really ran


def test_each_mechanism_is_really_used(ws: Workspace, monkeypatch) -> None:
    """openat2 is the default here and does the work; the walk never calls it."""
    calls = []
    real_openat2 = confine.openat2

    def spy(*args: object) -> int:
        calls.append(args)
        return real_openat2(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(confine, "openat2", spy)
    assert confine.default_method() is Method.OPENAT2
    kernel = Confinement([ws.root], DenyList(()))
    assert read(kernel, "sub/notes.txt") == SAFE
    assert len(calls) == 1 and kernel.method is Method.OPENAT2
    walker = make(ws, Method.WALK)
    assert read(walker, "sub/notes.txt") == SAFE
    assert len(calls) == 1


def test_operator_detail_names_the_culprit(ws: Workspace) -> None:
    (ws.root / "esc").symlink_to("../outside/canary.txt")
    c = make(ws, Method.OPENAT2)
    details = {}
    for path in ("esc", "sub/../../outside/canary.txt", "/etc/passwd", ".env", "nope"):
        with pytest.raises(NotAllowed) as info:
            c.open(path)
        details[path] = info.value.detail
    assert details == {
        "esc": "symlink escape",
        "sub/../../outside/canary.txt": "'..' above root",
        "/etc/passwd": "outside roots",
        ".env": "denied name",
        "nope": "open failed: ENOENT",
    }
