"""The content-search worker process (scan_worker.py): same answers, sandboxed, never on
stdout, and a search never fails or loses a match when it dies."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_fileserver.files.confine import Method
from mcp_fileserver.files.service import FileService
from tests.conftest import E2E_SANDBOX, make_settings

NEEDLE = "WORKER_NEEDLE"
FILES = 3000


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("worker") / "repo"
    for i in range(FILES):
        d = root / f"d{i // 50:03d}"
        d.mkdir(parents=True, exist_ok=True)
        body = "".join(f"line {n}\n" for n in range(30))
        if i % 7 == 0:
            body += f"x {NEEDLE} {i}\n"
        (d / f"f{i:05d}.txt").write_text(body)
    big = root / "d000" / "big.txt"  # larger than a batch file: scanned by the server
    big.write_text(("filler line\n" * 120_000) + f"{NEEDLE} big\n")
    (root / "d001" / "bin.dat").write_bytes(b"\0" + NEEDLE.encode())
    (root / "d002" / ".env").write_text(f"{NEEDLE}=secret\n")  # denied: never read
    return root


def expected(root: Path) -> list[tuple[str, int]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name in (".env", "bin.dat"):
                continue
            path = Path(dirpath) / name
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if NEEDLE in line:
                    out.append((str(path), n))
    return sorted(out)


@pytest.fixture
def service(tree: Path) -> Iterator[FileService]:
    s = FileService.from_settings(
        make_settings(allow=[tree], log_dir=tree.parent / "logs"), Method.OPENAT2
    )
    assert s.scan_worker is not None
    s.scan_worker.start()
    yield s
    s.scan_worker.stop()


def test_worker_answers_as_one_process_does(tree: Path, service: FileService) -> None:
    assert service.scan_worker is not None
    found = service.search_file_contents(".", NEEDLE)
    assert sorted((m.path, m.line) for m in found.matches) == expected(tree)
    assert [(m.path, m.line) for m in found.matches] == sorted(
        (m.path, m.line) for m in found.matches
    )
    assert service.scan_worker.batches_sent >= 3  # the worker did share the work
    alone = FileService.from_settings(
        make_settings(allow=[tree], log_dir=tree.parent / "logs"), Method.OPENAT2
    )
    same = alone.search_file_contents(".", NEEDLE)
    assert found.model_dump() == same.model_dump()


def test_a_dead_worker_loses_nothing(tree: Path, service: FileService) -> None:
    worker = service.scan_worker
    assert worker is not None
    timer = threading.Timer(0.05, os.kill, (worker.pid, signal.SIGKILL))
    timer.start()
    try:
        found = service.search_file_contents(".", NEEDLE, regex=True)
    finally:
        timer.join()
    assert sorted((m.path, m.line) for m in found.matches) == expected(tree)
    again = service.search_file_contents(".", NEEDLE)  # in this process from now on
    assert worker.dead
    assert sorted((m.path, m.line) for m in again.matches) == expected(tree)


def test_an_abandoned_search_leaves_the_worker_usable(tree: Path, service: FileService) -> None:
    got: list[tuple[str, int]] = []
    cursor = None
    while True:  # every page stops with batches still in the worker
        page = service.search_file_contents(".", NEEDLE, max_results=9, cursor=cursor)
        got.extend((m.path, m.line) for m in page.matches)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert got == expected(tree)
    assert service.scan_worker is not None and not service.scan_worker.dead


# -- end to end: the real server, sandboxed ---------------------------------------------


def _rpc(proc: subprocess.Popen[bytes], msg_id: int, method: str, params: dict) -> dict:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method,
                                 "params": params}).encode() + b"\n")  # fmt: skip
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1)
        if not ready:
            continue
        line = proc.stdout.readline()
        assert line, "server closed stdout"
        message = json.loads(line)  # every line on stdout is protocol
        if message.get("id") == msg_id:
            return message
    raise AssertionError("no answer")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as fh:
            out.extend(int(p) for p in fh.read().split())
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")
def test_server_forks_a_sandboxed_worker_off_stdout(tree: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    env.update(MCP_FILESERVER_SANDBOX=E2E_SANDBOX, MCP_FILESERVER_ALLOW_ROOT="1")
    config = tmp_path / "c.toml"
    config.write_text("[rate_limit]\nenabled = false\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_fileserver", "--allow", str(tree), "--config",
         str(config), "--log-dir", str(tmp_path / "logs")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        init = {"protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}  # fmt: skip
        assert "result" in _rpc(proc, 1, "initialize", init)
        assert proc.stdin is not None
        proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        call = {"name": "search_file_contents", "arguments": {"path": str(tree),
                "pattern": NEEDLE}}  # fmt: skip
        first = _rpc(proc, 2, "tools/call", call)["result"]["structuredContent"]
        assert sorted((m["path"], m["line"]) for m in first["matches"]) == expected(tree)
        arguments: dict[str, object] = {"path": str(tree), "pattern": "f*5.txt", "max_results": 7}
        paths: list[str] = []
        for msg_id in range(100, 200):  # pages of a name search the worker walks a part of
            names = {"name": "search_files", "arguments": arguments}
            page = _rpc(proc, msg_id, "tools/call", names)["result"]["structuredContent"]
            paths.extend(m["path"] for m in page["matches"])
            if page["next_cursor"] is None:
                break
            arguments["cursor"] = page["next_cursor"]
        files = sorted(str(p) for p in tree.rglob("f*5.txt"))
        assert paths == files and len(files) == FILES // 10
        (worker,) = _children(proc.pid)
        with open(f"/proc/{worker}/status") as fh:
            status = fh.read()
        assert "NoNewPrivs:\t1" in status  # forked inside the sandbox
        assert os.readlink(f"/proc/{worker}/fd/1") == "/dev/null"
        os.kill(worker, signal.SIGKILL)
        again = _rpc(proc, 3, "tools/call", call)["result"]["structuredContent"]
        assert again["matches"] == first["matches"]  # the server keeps serving, in-process
    finally:
        proc.kill()
        proc.wait()


def test_search_worker_can_be_turned_off(tree: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[files]\nsearch_worker = false\n")
    settings = make_settings(allow=[tree], config=config, log_dir=tmp_path / "logs")
    assert settings.files.search_worker is False
    s = FileService.from_settings(settings, Method.OPENAT2)
    assert s.scan_worker is None
    found = s.search_file_contents(".", NEEDLE)
    assert sorted((m.path, m.line) for m in found.matches) == expected(tree)
    assert make_settings(allow=[tree]).files.search_worker is True
