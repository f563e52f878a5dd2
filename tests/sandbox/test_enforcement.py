"""The second wall on its own: in a child confined by the server's exact ruleset, plain
`open()`, `socket` and `os` calls (no path checks of ours involved) are refused by the
kernel outside what the configuration allows.

Each child pays the full import of the server, so one child answers many questions and
the tests below each check one of its answers.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox.child import ABI, run_sandboxed

pytestmark = pytest.mark.skipif(ABI < 1, reason="the kernel offers no Landlock")

CANARY = "CANARY-" + uuid.uuid4().hex


def make_layout(root: Path) -> dict[str, Path]:
    allowed = root / "allowed"
    (allowed / "sub").mkdir(parents=True)
    (allowed / "sub" / "ok.txt").write_text("allowed content")
    outside = root / "outside"
    outside.mkdir()
    canary = outside / "canary.txt"
    canary.write_text(CANARY)
    (outside / "existing.txt").write_text("keep")
    (allowed / "escape").symlink_to(canary)
    os.link(canary, allowed / "hardlink.txt")
    home = root / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text(CANARY)
    return {
        "root": root,
        "allowed": allowed,
        "outside": outside,
        "canary": canary,
        "home": home,
        "logs": root / "logs",
    }


def server_args(layout: dict[str, Path], *extra: str, mode: str = "require") -> list[str]:
    allow, logs = str(layout["allowed"]), str(layout["logs"])
    return ["--allow", allow, "--log-dir", logs, "--sandbox", mode, *extra]


@pytest.fixture(scope="module")
def listeners() -> Iterator[tuple[int, int]]:
    socks = []
    for _ in range(2):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        socks.append(sock)
    yield socks[0].getsockname()[1], socks[1].getsockname()[1]
    for sock in socks:
        sock.close()


PROBE = """
import resource, subprocess
L = {layout!r}
allowed, logs, outside = L["allowed"], L["logs"], L["outside"]

def connect(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass

def bind(port):
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))

def abstract():
    with socket.socket(socket.AF_UNIX) as s:
        s.connect({abstract!r})

# reads
out["allowed_read"] = read(allowed + "/sub/ok.txt").decode()
out["allowed_list"] = sorted(os.listdir(allowed))
for name, path in {{
    "canary": L["canary"],
    "via_symlink": allowed + "/escape",
    "via_dotdot": allowed + "/../outside/canary.txt",
    "via_proc_root": "/proc/self/root" + L["canary"],
    "ssh_key": os.path.expanduser("~/.ssh/id_ed25519"),
    "etc_shadow": "/etc/shadow",
    "real_root_ssh": "/root/.ssh/authorized_keys",
    "hardlink": allowed + "/hardlink.txt",
}}.items():
    out[name] = attempt(lambda: read(path))
out["list_outside"] = attempt(lambda: os.listdir(outside))
out["list_root"] = attempt(lambda: os.listdir("/"))
out["list_home"] = attempt(lambda: os.listdir(os.path.expanduser("~")))
out["resolver"] = attempt(lambda: read("/etc/hosts"))

# writes
out["log_create"] = attempt(lambda: write(logs + "/audit.jsonl", b"line\\n"))
out["log_rename"] = attempt(lambda: os.rename(logs + "/audit.jsonl", logs + "/a.1"))
out["log_truncate"] = attempt(lambda: os.truncate(logs + "/a.1", 0))
out["log_remove"] = attempt(lambda: os.remove(logs + "/a.1"))
out["log_symlink"] = attempt(lambda: os.symlink("/etc/shadow", logs + "/s"))
out["log_fifo"] = attempt(lambda: os.mkfifo(logs + "/f"))
out["allowed_write"] = attempt(lambda: write(allowed + "/sub/ok.txt"))
out["allowed_create"] = attempt(lambda: write(allowed + "/new.txt"))
out["allowed_remove"] = attempt(lambda: os.remove(allowed + "/sub/ok.txt"))
out["allowed_mkdir"] = attempt(lambda: os.mkdir(allowed + "/d"))
out["outside_append"] = attempt(lambda: write(outside + "/existing.txt"))
out["outside_truncate"] = attempt(lambda: os.truncate(outside + "/existing.txt", 0))
out["outside_create"] = attempt(lambda: write(L["root"] + "/new.txt"))
out["tmp_create"] = attempt(lambda: write("/tmp/mcp-sandbox-test-" + str(os.getpid())))
out["move_out_of_logs"] = attempt(
    lambda: (write(logs + "/m"), os.rename(logs + "/m", allowed + "/m"))
)

# execution
out["exec_sh"] = attempt(lambda: subprocess.run(["/bin/sh", "-c", "true"]))
out["exec_self"] = attempt(lambda: subprocess.run([sys.executable, "-c", "pass"]))

# network and IPC
out["tcp_configured"] = attempt(lambda: connect({configured}))
out["tcp_other"] = attempt(lambda: connect({other}))
out["bind_any"] = attempt(lambda: bind(0))
out["bind_configured"] = attempt(lambda: bind({configured}))
out["abstract_socket"] = attempt(abstract)
out["signal_parent"] = attempt(lambda: os.kill({parent}, 0))
out["signal_self"] = attempt(lambda: os.kill(os.getpid(), 0))

# process
out["core"] = resource.getrlimit(resource.RLIMIT_CORE)
out["no_new_privs"] = process.no_new_privs()
out["dumpable"] = process._prctl(process._PR_GET_DUMPABLE)
out["capabilities"] = process.capabilities()
out["raw_socket"] = attempt(
    lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
)
"""


@pytest.fixture(scope="module")
def confined(
    tmp_path_factory: pytest.TempPathFactory, listeners: tuple[int, int]
) -> tuple[dict[str, Any], dict[str, Path]]:
    """One child under `--sandbox require` with a PostgreSQL port configured."""
    layout = make_layout(tmp_path_factory.mktemp("sandbox"))
    configured, other = listeners
    name = "\0mcp-fileserver-test-" + uuid.uuid4().hex
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(name)
        server.listen(1)
        out = run_sandboxed(
            server_args(layout, "--db", f"pg=postgresql://reader@127.0.0.1:{configured}/app"),
            PROBE.format(
                layout={k: str(v) for k, v in layout.items()},
                abstract=name,
                configured=configured,
                other=other,
                parent=os.getpid(),
            ),
            env={"HOME": str(layout["home"])},
            cwd=layout["root"],
        )
    return out, layout


def test_sandbox_is_enforced(confined: tuple[dict[str, Any], dict[str, Path]]) -> None:
    out, _ = confined
    assert out["report"]["status"] == "enforced", out["report"]
    assert out["report"]["landlock_abi"] == ABI


def test_allowed_reads_work(confined: tuple[dict[str, Any], dict[str, Path]]) -> None:
    out, _ = confined
    assert out["allowed_read"] == "allowed content"
    assert out["allowed_list"] == ["escape", "hardlink.txt", "sub"]
    assert out["resolver"] == "ok"  # PostgreSQL configured: name resolution still works


@pytest.mark.parametrize(
    "probe",
    ["canary", "via_symlink", "via_dotdot", "via_proc_root", "ssh_key", "etc_shadow"],
)
def test_kernel_refuses_reads_outside_the_allowed_set(
    confined: tuple[dict[str, Any], dict[str, Path]], probe: str
) -> None:
    out, _ = confined
    assert out[probe] == "denied"


def test_no_listing_outside_and_no_canary_anywhere(
    confined: tuple[dict[str, Any], dict[str, Path]],
) -> None:
    out, _ = confined
    assert out["list_outside"] == out["list_root"] == out["list_home"] == "denied"
    assert out["real_root_ssh"] in ("denied", "errno 2")  # refused, or absent here
    assert CANARY not in str(out)


def test_writes_only_inside_the_log_folder(
    confined: tuple[dict[str, Any], dict[str, Path]],
) -> None:
    out, layout = confined
    assert out["log_create"] == out["log_rename"] == out["log_truncate"] == "ok"
    assert out["log_remove"] == "ok"
    assert out["log_symlink"] == out["log_fifo"] == "denied"
    for name in (
        "allowed_write",
        "allowed_create",
        "allowed_remove",
        "allowed_mkdir",
        "outside_append",
        "outside_truncate",
        "outside_create",
        "tmp_create",
        "move_out_of_logs",
    ):
        assert out[name] == "denied", name
    assert (layout["outside"] / "existing.txt").read_text() == "keep"
    assert not (layout["root"] / "new.txt").exists()
    assert (layout["logs"].stat().st_mode & 0o777) == 0o700


def test_nothing_can_be_executed(confined: tuple[dict[str, Any], dict[str, Path]]) -> None:
    out, _ = confined
    assert out["exec_sh"] == out["exec_self"] == "denied"


@pytest.mark.skipif(ABI < 4, reason="TCP rules need Landlock ABI 4")
def test_tcp_connect_only_to_configured_postgres_ports_and_never_bind(
    confined: tuple[dict[str, Any], dict[str, Path]], listeners: tuple[int, int]
) -> None:
    out, _ = confined
    assert out["report"]["ruleset"]["tcp_connect_ports"] == [listeners[0]]
    assert out["tcp_configured"] == "ok"
    assert out["tcp_other"] == "denied"
    assert out["bind_any"] == out["bind_configured"] == "denied"


@pytest.mark.skipif(ABI < 6, reason="IPC scoping needs Landlock ABI 6")
def test_no_signals_or_abstract_sockets_outside_the_sandbox(
    confined: tuple[dict[str, Any], dict[str, Path]],
) -> None:
    out, _ = confined
    assert out["abstract_socket"] == out["signal_parent"] == "denied"
    assert out["signal_self"] == "ok"


def test_process_hardening(confined: tuple[dict[str, Any], dict[str, Path]]) -> None:
    out, _ = confined
    assert out["core"] == [0, 0]
    assert out["no_new_privs"] is True
    assert out["dumpable"] == 0
    assert {"no_new_privs", "core dumps disabled"} <= set(out["report"]["enforced"])


def test_an_allowed_root_keeps_only_file_permission_capabilities(
    confined: tuple[dict[str, Any], dict[str, Path]],
) -> None:
    """Landlock confines root too, but root's capabilities reach past it (a kernel module
    loaded from memory, raw sockets): all but dac_override, dac_read_search and fowner
    are dropped."""
    out, _ = confined
    if os.geteuid() != 0:
        assert out["capabilities"] == [0, 0]
        return
    assert out["capabilities"] == [0b1110, 0b1110]
    assert out["raw_socket"] == "denied"
    assert any("capabilities dropped" in item for item in out["report"]["enforced"])


def test_hard_link_made_beforehand_is_a_documented_limit(
    confined: tuple[dict[str, Any], dict[str, Path]],
) -> None:
    """Landlock follows where a name is, not what it points to: a hard link placed in an
    allowed folder before startup stays readable (docs/sandbox.md says so). The first
    wall refuses such files; this pins down what the kernel layer covers."""
    out, _ = confined
    assert out["hardlink"] == "ok"
    assert out["canary"] == "denied"


def test_older_abi_degrades_gracefully(tmp_path: Path, listeners: tuple[int, int]) -> None:
    """On an ABI 3 kernel files are still confined; TCP and IPC are said to be open."""
    layout = make_layout(tmp_path)
    out = run_sandboxed(
        server_args(layout, mode="on"),
        f"""
        def connect(port):
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        out["canary"] = attempt(lambda: read({str(layout["canary"])!r}))
        out["truncate_log"] = attempt(lambda: write({str(layout["logs"] / "x")!r}, mode="wb"))
        out["other_port"] = attempt(lambda: connect({listeners[1]}))
        """,
        before="landlock.abi_version = lambda: 3",
    )
    report = out["report"]
    assert report["landlock_abi"] == 3
    assert report["status"] == "partial"
    assert any("TCP" in item and "ABI 4" in item for item in report["not_enforced"])
    assert any("ABI 6" in item for item in report["not_enforced"])
    assert out["canary"] == "denied"
    assert out["truncate_log"] == "ok"
    assert out["other_port"] == "ok"


def test_without_landlock_on_says_what_is_missing(tmp_path: Path) -> None:
    """`on` without Landlock (and with a thread already running) still hardens the
    process and lists, plainly, everything it could not enforce."""
    layout = make_layout(tmp_path)
    out = run_sandboxed(
        server_args(layout, mode="on"),
        f'out["canary"] = attempt(lambda: read({str(layout["canary"])!r}))',
        before="""
        import threading
        landlock.abi_version = lambda: 0
        threading.Thread(target=threading.Event().wait, daemon=True).start()
        """,
    )
    report = out["report"]
    assert report["status"] == "partial"
    assert any("Landlock: not offered" in item for item in report["not_enforced"])
    assert any("1 thread(s) started before" in item for item in report["not_enforced"])
    assert {"no_new_privs", "core dumps disabled"} <= set(report["enforced"])
    assert out["canary"] == "ok"  # said plainly: nothing confines files then


def test_require_fails_when_an_essential_rule_cannot_be_added(tmp_path: Path) -> None:
    """An allowed directory the kernel cannot attach a rule to would leave a server that
    refuses its own configuration: `require` stops with one line instead."""
    layout = make_layout(tmp_path)
    out = run_sandboxed(
        server_args(layout),
        "",
        before="""
        from mcp_fileserver.sandbox import enforce
        enforce._add_path_rule = lambda fd, rule, handled: (
            "Permission denied" if rule.reason == "allowed directory" else None
        )
        """,
    )
    assert out["error"].startswith("--sandbox require: cannot grant allowed directory")
    assert "Permission denied" in out["error"]
