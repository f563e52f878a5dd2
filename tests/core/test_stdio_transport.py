"""The event-loop stdio transport (mcp_fileserver/stdio.py).

Parity with the SDK's transport (lines as `TextIOWrapper` reads them), backpressure both
ways, a response never left in memory at EOF, fd 0/1 diverted while serving and restored
after, and stdin or stdout that is not a pipe (a regular file, a terminal) served through
the same bounded line reader."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_fileserver.stdio import READ_PAUSE_LINES, LineReader, PipeWriter
from tests.conftest import REPO
from tests.core.test_stdout_protocol import INIT


class FakeReadTransport(asyncio.ReadTransport):
    """Deliberately without `is_reading()`: the pipe transport of Debian's Python 3.11.2
    (the one in our Docker image) lacks it, and the base class raises
    NotImplementedError. LineReader must not depend on it."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


async def _drain(reader: LineReader) -> list[str]:
    return [line async for line in reader]


def _read_lines(chunks: list[bytes]) -> list[str]:
    async def run() -> list[str]:
        reader = LineReader()
        reader.connection_made(FakeReadTransport())
        for chunk in chunks:
            reader.data_received(chunk)
        reader.eof_received()
        return await _drain(reader)

    return asyncio.run(run())


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=300, deadline=None)
@given(
    data=st.lists(
        st.one_of(
            st.binary(max_size=12),
            st.sampled_from([b"\n", b"\r", b"\r\n", b"\n\r", "é".encode(), b"\xff\xfe"]),
        ),
        max_size=20,
    ).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_lines_are_what_the_sdk_text_reader_gives(data: bytes, cuts: list[int]) -> None:
    """However the bytes arrive in chunks, the lines equal `TextIOWrapper` readlines
    with the SDK's settings (UTF-8, errors="replace", universal newlines)."""
    expected = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace").readlines()
    assert _read_lines(_split(data, cuts)) == expected


def test_reading_pauses_while_lines_wait_and_resumes_when_consumed() -> None:
    async def run() -> None:
        reader = LineReader()
        transport = FakeReadTransport()
        reader.connection_made(transport)
        reader.data_received(b"x\n" * (READ_PAUSE_LINES + 5))
        assert transport.paused
        while transport.paused:
            assert await reader.__anext__() == "x\n"
        # resumed once fewer than half the threshold are left, not before
        assert READ_PAUSE_LINES // 2 - 1 <= len(reader._lines) < READ_PAUSE_LINES // 2

    asyncio.run(run())


def test_flush_waits_for_a_slow_reader_and_a_closed_pipe_raises() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        writer = PipeWriter()
        transport, _ = await loop.connect_write_pipe(lambda: writer, os.fdopen(write_fd, "wb"))
        transport.set_write_buffer_limits(high=0)
        big = "y" * (1 << 20)  # far more than a pipe buffer holds
        await writer.write(big)
        flushed = asyncio.ensure_future(writer.flush())
        await asyncio.sleep(0.05)
        assert not flushed.done(), "flush returned while most of the data was still in memory"
        received = bytearray()
        while len(received) < len(big):
            received += await loop.run_in_executor(None, os.read, read_fd, 1 << 16)
        await asyncio.wait_for(flushed, 5)
        assert received == big.encode()
        os.close(read_fd)
        with pytest.raises(BrokenPipeError):
            for _ in range(100):  # the loop notices the closed reader on a write
                await writer.write("z" * 65536)
                await writer.flush()
                await asyncio.sleep(0.01)
        transport.close()

    asyncio.run(run())


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    env.update(MCP_FILESERVER_SANDBOX="off", MCP_FILESERVER_ALLOW_ROOT="1", PYTHONPATH=str(REPO))
    return env


def _serve(root: Path, log_dir: Path) -> list[str]:
    return [sys.executable, "-m", "mcp_fileserver", "--allow", str(root), "--log-dir", str(log_dir)]


def test_a_large_response_waits_for_a_client_that_reads_late(tmp_path: Path) -> None:
    """An 850 kB answer to a client that only starts reading a while later: the pipe
    fills, the server waits for it, and every byte arrives, followed by the next answer."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "big.txt").write_text("0123456789abcdef\n" * 50_000)
    proc = subprocess.Popen(
        _serve(root, tmp_path / "logs"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for message in (INIT, {"jsonrpc": "2.0", "method": "notifications/initialized"}):
            proc.stdin.write(json.dumps(message).encode() + b"\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 1
        for request_id in (2, 3):
            call = {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "tools/call",
                "params": {"name": "read_text_file", "arguments": {"path": str(root / "big.txt")}},
            }
            proc.stdin.write(json.dumps(call).encode() + b"\n")
        proc.stdin.flush()
        time.sleep(1.0)  # both answers are ready long before anyone reads them
        replies = {}
        for _ in range(2):
            reply = json.loads(proc.stdout.readline())
            replies[reply["id"]] = reply
        assert set(replies) == {2, 3}
        for reply in replies.values():
            assert "result" in reply, str(reply)[:300]
            assert (
                reply["result"]["structuredContent"]["text"].count("0123456789abcdef\n") == 50_000
            )
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()


def test_a_stdin_that_is_not_a_pipe_is_served_by_the_threaded_fallback(tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_bytes(json.dumps(INIT).encode() + b"\n")
    (tmp_path / "root").mkdir()
    with requests.open("rb") as stdin:  # a regular file: epoll cannot watch it
        proc = subprocess.run(
            _serve(tmp_path / "root", tmp_path / "logs"),
            stdin=stdin,
            capture_output=True,
            env=_env(),
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    (reply,) = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert reply["result"]["serverInfo"]["name"] == "mcp-fileserver"


STRAY_WRITER = textwrap.dedent(
    """
    import os, sys
    import anyio
    from mcp_fileserver.stdio import stdio_streams

    async def main():
        async with stdio_streams() as (_, write_stream):
            os.write(1, b"stray bytes on fd 1\\n")
            assert os.read(0, 10) == b""  # fd 0 is /dev/null while serving
            await write_stream.aclose()
        sys.stderr.write(f"restored blocking={os.get_blocking(1)}\\n")
        os.write(1, b"after\\n")

    anyio.run(main)
    """
)


def test_fd_1_points_at_stderr_while_serving_and_is_restored_after() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", STRAY_WRITER],
        input=b"",
        capture_output=True,
        env=_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"after\n"
    assert b"stray bytes on fd 1" in proc.stderr
    assert b"restored blocking=True" in proc.stderr


def test_answers_ready_together_leave_in_one_write_in_order() -> None:
    from mcp_fileserver import framework
    from mcp_fileserver.stdio import message_streams

    class RecordingWriter:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        async def write(self, data: bytes) -> None:
            self.writes.append(data)

        async def flush(self) -> None:
            pass

    async def no_lines() -> Any:
        return
        yield

    async def scenario() -> list[bytes]:
        import anyio

        out = RecordingWriter()
        async with message_streams(no_lines(), out, 1 << 20) as (_read, write):  # type: ignore[arg-type]
            async with anyio.create_task_group() as tasks:
                for n in range(3):
                    answer = framework.session_message((n, -32600, f"answer {n}"))
                    tasks.start_soon(write.send, answer)
            await anyio.wait_all_tasks_blocked()
            await write.aclose()
        return out.writes

    writes = asyncio.run(scenario())
    lines = b"".join(writes).splitlines()
    assert [json.loads(line)["id"] for line in lines] == [0, 1, 2]
    assert len(writes) < 3, writes


def _serve_files(tmp_path: Path, name: str, lines: list[bytes]) -> tuple[list[Any], int]:
    """Run the server with stdin and stdout both regular files; its answers and its peak
    resident memory (KiB, from the kernel's accounting of the exited child)."""
    requests = tmp_path / f"{name}.jsonl"
    with requests.open("wb") as fh:
        for line in lines:
            fh.write(line)
    answers = tmp_path / f"{name}.out"
    (tmp_path / "root").mkdir(exist_ok=True)
    with requests.open("rb") as stdin, answers.open("wb") as stdout:
        proc = subprocess.Popen(
            _serve(tmp_path / "root", tmp_path / "logs"),
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            env=_env(),
        )
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            proc.returncode = 0
    assert os.waitstatus_to_exitcode(status) == 0
    return [json.loads(line) for line in answers.read_bytes().splitlines()], usage.ru_maxrss


def test_an_oversized_line_from_a_regular_file_is_refused_without_holding_it(
    tmp_path: Path,
) -> None:
    """stdin a regular file (no pipe, no epoll): a 64 MiB line, 8 times the limit, is
    answered with an error under its id, memory stays bounded, and serving continues."""
    init = json.dumps(INIT).encode() + b"\n"
    initialized = b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
    listing = b'{"jsonrpc":"2.0","id":7,"method":"tools/list"}\n'
    head = b'{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"read_text_file",'
    huge = head + b'"arguments":{"path":"' + b"a" * (64 * 1024 * 1024) + b'"}}}\n'

    baseline, baseline_kib = _serve_files(tmp_path, "small", [init, initialized, listing])
    assert [a["id"] for a in baseline] == [1, 7]
    answers, peak_kib = _serve_files(tmp_path, "huge", [init, initialized, huge, listing])
    by_id = {a["id"]: a for a in answers}
    assert set(by_id) == {1, 99, 7}
    assert by_id[99]["error"]["code"] == -32600
    assert "too large" in by_id[99]["error"]["message"]
    assert by_id[7]["result"]["tools"], "the server stopped serving after the long line"
    grown_mib = (peak_kib - baseline_kib) / 1024
    assert grown_mib < 16, f"peak memory grew by {grown_mib:.0f} MiB for a 64 MiB line"


def test_bad_lines_from_a_regular_file_get_their_json_rpc_errors(tmp_path: Path) -> None:
    init = json.dumps(INIT).encode() + b"\n"
    answers, _ = _serve_files(
        tmp_path,
        "bad",
        [
            init,
            b'{"jsonrpc":"2.0","id":5,"method":\n',
            b"[]\n",
            b'{"jsonrpc":"2.0","id":6,"method":"ping"}\n',
        ],
    )
    codes = [a.get("error", {}).get("code") for a in answers]
    assert -32700 in codes and -32600 in codes, answers
    assert {"jsonrpc": "2.0", "id": 6, "result": {}} in answers  # still serving


def _input_end_after(lines: list[str], answer_ids: list[int]) -> tuple[list[int], float]:
    """Feed `lines` and end stdin; answer `answer_ids`. The ids the session received and
    how long after the end of stdin its input stream ended ([protocol] eof_drain_s 0.5)."""
    import anyio

    from mcp_fileserver import framework, stdio

    class NullWriter:
        async def write(self, text: str) -> None:
            pass

        async def flush(self) -> None:
            pass

    async def source() -> Any:
        for line in lines:
            yield line

    async def scenario() -> tuple[list[int], float]:
        received: list[int] = []
        streams = stdio.message_streams(source(), NullWriter(), 1 << 20, 0.5)  # type: ignore[arg-type]
        async with streams as (read, write):
            for _ in lines:
                message = (await read.receive()).message
                if getattr(message, "id", None) is not None:
                    received.append(message.id)
            started = time.monotonic()
            for request_id in answer_ids:
                await write.send(framework.session_message((request_id, -32600, "answer")))
            with pytest.raises(anyio.EndOfStream):
                await read.receive()
            ended = time.monotonic() - started
            await write.aclose()
        return received, ended

    return asyncio.run(scenario())


def test_stdin_closes_for_the_session_once_requests_read_are_answered() -> None:
    requests = [f'{{"jsonrpc":"2.0","id":{n},"method":"ping"}}' for n in (1, 2)]
    received, ended = _input_end_after(requests, [1, 2])
    assert received == [1, 2] and ended < 0.4


def test_a_cancelled_or_unanswered_request_holds_the_end_of_stdin_only_so_long() -> None:
    cancel = '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}'
    requests = [f'{{"jsonrpc":"2.0","id":{n},"method":"ping"}}' for n in (1, 2)]
    _, ended = _input_end_after([*requests, cancel], [1])
    assert ended < 0.4  # 2 was cancelled: nothing left to wait for
    _, ended = _input_end_after(requests, [1])
    assert 0.3 < ended < 5  # 2 never answered: eof_drain_s (0.5 s here), then the end


def test_a_file_name_that_is_not_utf8_does_not_stop_the_server(tmp_path: Path) -> None:
    """Such a name reaches Python with a lone surrogate (`os.fsdecode`), which neither
    orjson nor pydantic writes: the failed write of one answer used to end the server.
    Each listing that shows it now arrives (the name escaped), and the next call is
    served."""
    root = tmp_path / "root"
    root.mkdir()
    (root / os.fsdecode(b"x\xffy.md")).write_text("hi\n")
    (root / "ok.md").write_text("hi\n")
    calls = [
        ("list_directory", {"path": str(root)}),
        ("search_files", {"path": str(root), "pattern": "*.md"}),
        ("directory_tree", {"path": str(root)}),
        ("search_file_contents", {"path": str(root), "pattern": "hi"}),
        ("list_allowed_directories", {}),
    ]
    requests = [INIT, {"jsonrpc": "2.0", "method": "notifications/initialized"}] + [
        {"jsonrpc": "2.0", "id": n, "method": "tools/call",
         "params": {"name": tool, "arguments": arguments}}
        for n, (tool, arguments) in enumerate(calls, start=2)
    ]  # fmt: skip
    proc = subprocess.run(
        _serve(root, tmp_path / "logs"),
        input=b"".join(json.dumps(r).encode() + b"\n" for r in requests),
        capture_output=True,
        env=_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    proc.stdout.decode("utf-8")  # valid UTF-8 throughout
    replies = {r["id"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert sorted(replies) == [1, *range(2, 2 + len(calls))]
    odd = str(root / os.fsdecode(b"x\xffy.md"))
    for n in range(2, 2 + len(calls) - 1):
        result = replies[n]["result"]
        assert not result.get("isError"), result
        assert "x\udcffy.md" in json.dumps(result, ensure_ascii=False), result
    matches = replies[3]["result"]["structuredContent"]["matches"]
    assert {"path": odd, "type": "file"} in matches
