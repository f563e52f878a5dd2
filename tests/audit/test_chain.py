"""The hash chain on disk: rotation, compression, restarts, permissions, tampering."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_fileserver.audit.files import list_log_files, read_lines
from mcp_fileserver.audit.log import AuditLog
from mcp_fileserver.audit.records import (
    GENESIS,
    constant_tail,
    decode,
    encode,
    make_hasher,
    record_head,
    tool_call_head,
)
from mcp_fileserver.audit.verify import verify_folder
from mcp_fileserver.config import AuditSettings
from tests.audit.helpers import records

SMALL = AuditSettings(rotation_bytes=1024, retention_files=1000, compression="gz")


def write_records(folder: Path, count: int, settings: AuditSettings = SMALL, **kw) -> None:
    log = AuditLog(folder, settings, kw.get("hmac_key"))
    try:
        for n in range(count):
            log.write("tool_call", tool="echo", args={"n": n}, outcome="ok")
    finally:
        log.close()


def lines_of(path: Path) -> list[str]:
    return list(read_lines(path))


def rewrite(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines))


# -- format -----------------------------------------------------------------------------


def test_record_hash_covers_the_exact_line_without_the_hash() -> None:
    hasher = make_hasher(None)
    line, digest = encode({"event": "tool_call", "tool": "t"}, 1, GENESIS, hasher)
    parsed = decode(line)
    assert parsed.hash == digest == hasher(parsed.body)
    assert line.endswith(f',"hash":"{digest}"}}\n') and line.isascii()
    assert json.loads(line)["prev"] == GENESIS


_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
_optional_text = st.none() | st.text(max_size=40)


@given(
    ts=st.text(max_size=30),
    tool=st.text(max_size=30),
    args=st.dictionaries(
        st.text(max_size=10),
        st.recursive(
            _json_scalars,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
            max_leaves=8,
        ),
        max_size=4,
    ),
    outcome=st.text(max_size=12),
    reason=_optional_text,
    detail=_optional_text,
    duration_ms=st.floats(allow_nan=True, allow_infinity=True) | st.integers(),
    result_bytes=st.none() | st.integers(min_value=0),
    client=st.tuples(_optional_text, _optional_text, _optional_text),
    version=st.text(max_size=10),
    pid=st.integers(min_value=1, max_value=2**22),
)
@settings(max_examples=500, deadline=None)
def test_the_tool_call_fast_path_writes_the_bytes_of_the_generic_encoder(
    ts: str,
    tool: str,
    args: dict,
    outcome: str,
    reason: str | None,
    detail: str | None,
    duration_ms: float,
    result_bytes: int | None,
    client: tuple[str | None, str | None, str | None],
    version: str,
    pid: int,
) -> None:
    """`tool_call_head` assembles the per-call record by hand; it must stay byte for byte
    what `record_head` writes from the same fields, and refuse what it refuses."""
    request_id, client_name, client_version = client
    fields = {
        "ts": ts,
        "event": "tool_call",
        "tool": tool,
        "args": args,
        "outcome": outcome,
        "reason": reason,
        "detail": detail,
        "duration_ms": duration_ms,
        "result_bytes": result_bytes,
        "request_id": request_id,
        "client_name": client_name,
        "client_version": client_version,
        "server_version": version,
        "pid": pid,
    }
    head_args = (
        ts,
        tool,
        args,
        outcome,
        reason,
        detail,
        duration_ms,
        result_bytes,
        request_id,
        client_name,
        client_version,
        constant_tail(version, pid),
    )
    try:
        expected = record_head(fields)
    except ValueError:  # NaN or an infinity: not JSON
        with pytest.raises(ValueError):
            tool_call_head(*head_args)
        return
    assert expected == tool_call_head(*head_args)
    assert (
        expected
        == json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode(
            fields
        )[:-1]
    )


def test_hmac_chain_needs_the_key(tmp_path: Path) -> None:
    write_records(tmp_path, 5, hmac_key="k" * 32)
    assert verify_folder(tmp_path, "k" * 32).ok
    wrong = verify_folder(tmp_path, "other-key")
    assert not wrong.ok and "hash does not match" in wrong.problem
    keyless = verify_folder(tmp_path)
    assert not keyless.ok and "hmac_key" in keyless.problem


# -- rotation, compression, restart, permissions ----------------------------------------


@pytest.mark.parametrize("compression", ["none", "gz", "bz2", "xz", "zip"])
def test_chain_continues_across_rotation_compression_and_restart(
    tmp_path: Path, compression: str
) -> None:
    settings = SMALL.model_copy(update={"compression": compression})
    write_records(tmp_path, 30, settings)
    write_records(tmp_path, 30, settings)  # a restart: continues from the newest file
    files = list_log_files(tmp_path)
    assert len(files) > 5
    suffix = {"none": ".jsonl", "gz": ".gz", "bz2": ".bz2", "xz": ".xz", "zip": ".zip"}
    assert all(f.path.name.endswith(suffix[compression]) for f in files[:-1])
    verdict = verify_folder(tmp_path)
    assert verdict.ok, verdict.problem
    assert (verdict.records, verdict.first_seq, verdict.last_seq) == (60, 1, 60)
    assert [r["seq"] for r in records(tmp_path)] == list(range(1, 61))


def test_restart_after_rotation_reads_the_compressed_newest_file(tmp_path: Path) -> None:
    write_records(tmp_path, 30)
    (tmp_path / "audit.jsonl").unlink()  # as if the server stopped right after rotating
    last = list_log_files(tmp_path)[-1]
    assert last.compressed
    write_records(tmp_path, 3)
    seqs = [r["seq"] for r in records(tmp_path)]
    assert seqs[-3:] == [seqs[-4] + 1, seqs[-4] + 2, seqs[-4] + 3]


def test_folder_0700_and_files_0600(tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "logs"
    old = os.umask(0o022)
    try:
        write_records(folder, 30)
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for entry in folder.iterdir():
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600, entry.name


def test_a_wide_existing_folder_and_file_are_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    (folder / "audit.jsonl").touch(mode=0o644)
    os.chmod(folder / "audit.jsonl", 0o644)
    write_records(folder, 1)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "audit.jsonl").stat().st_mode) == 0o600


def test_retention_by_count_keeps_the_newest(tmp_path: Path) -> None:
    write_records(tmp_path, 60, SMALL.model_copy(update={"retention_files": 3}))
    rotated = [f for f in list_log_files(tmp_path) if f.first_seq is not None]
    assert len(rotated) == 3
    verdict = verify_folder(tmp_path)
    # each removal left a chained audit_pruned record, which verify-log reports
    assert verdict.ok and verdict.last_seq > 60 and verdict.events["audit_pruned"] >= 1
    assert any("removed by retention" in note for note in verdict.notes)


def test_files_removed_by_hand_from_the_beginning_are_detected(tmp_path: Path) -> None:
    write_records(tmp_path, 60, SMALL.model_copy(update={"retention_files": 3}))
    oldest = next(f for f in list_log_files(tmp_path) if f.first_seq is not None)
    oldest.path.unlink()
    verdict = verify_folder(tmp_path)
    assert not verdict.ok and "no audit_pruned record accounts for them" in str(verdict.problem)


def test_an_erased_history_without_retention_is_detected(tmp_path: Path) -> None:
    write_records(tmp_path, 60)
    for item in list_log_files(tmp_path)[:-2]:
        item.path.unlink()
    verdict = verify_folder(tmp_path)
    assert not verdict.ok and "are missing" in str(verdict.problem)


def test_retention_by_age(tmp_path: Path) -> None:
    settings = SMALL.model_copy(update={"retention_days": 1})
    write_records(tmp_path, 30, settings)
    old = [f.path for f in list_log_files(tmp_path) if f.first_seq is not None][:2]
    for path in old:
        os.utime(path, (1, 1))
    write_records(tmp_path, 30, settings)  # the next rotation applies retention
    assert not any(path.exists() for path in old)
    assert verify_folder(tmp_path).ok


def test_two_processes_share_one_chain(tmp_path: Path) -> None:
    """Two servers started with the same (default) folder interleave in one chain."""
    script = (
        "import sys; from pathlib import Path\n"
        "from mcp_fileserver.audit.log import AuditLog\n"
        "from mcp_fileserver.config import AuditSettings\n"
        "settings = AuditSettings(rotation_bytes=4096, retention_files=1000)\n"
        "log = AuditLog(Path(sys.argv[1]), settings, None)\n"
        "for n in range(300): log.write('tool_call', tool=sys.argv[2], args={'n': n})\n"
        "log.close()\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), name]) for name in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    verdict = verify_folder(tmp_path)
    assert verdict.ok, verdict.problem
    assert verdict.records == 600


def test_records_survive_a_damaged_tail(tmp_path: Path) -> None:
    write_records(tmp_path, 3, AuditSettings())
    with open(tmp_path / "audit.jsonl", "a") as fh:
        fh.write('{"ts":"torn')  # a crash mid-line from an older version, say
    log = AuditLog(tmp_path, AuditSettings(), None)
    assert log.sink.recovery_note and "damaged" in log.sink.recovery_note
    log.close()


# -- tampering -------------------------------------------------------------------------


@pytest.fixture
def chained(tmp_path: Path) -> Path:
    write_records(
        tmp_path, 40, SMALL.model_copy(update={"compression": "none", "rotation_bytes": 2048})
    )
    assert verify_folder(tmp_path).ok
    return tmp_path


def middle_file(folder: Path) -> Path:
    files = list_log_files(folder)
    return files[len(files) // 2].path


def broken_at(folder: Path, where: str) -> str:
    """The problem verify-log reports for `folder`, which must name `where` first."""
    verdict = verify_folder(folder)
    assert not verdict.ok and verdict.problem.startswith(where), verdict.problem
    return verdict.problem


def test_edit_is_detected(chained: Path) -> None:
    path = middle_file(chained)
    lines = lines_of(path)
    lines[1] = lines[1].replace('"tool":"echo"', '"tool":"ohce"')
    rewrite(path, lines)
    assert "hash does not match" in broken_at(chained, f"{path.name}:2: ")


def test_edit_with_recomputed_hash_is_detected_by_the_next_record(chained: Path) -> None:
    path = middle_file(chained)
    lines = lines_of(path)
    record = json.loads(lines[0])
    record["args"] = {"n": 999}
    fields = {k: v for k, v in record.items() if k not in ("seq", "prev", "hash")}
    lines[0], _ = encode(fields, record["seq"], record["prev"], make_hasher(None))
    rewrite(path, lines)
    assert "prev does not match" in broken_at(chained, f"{path.name}:2: ")


def test_deletion_is_detected(chained: Path) -> None:
    path = middle_file(chained)
    lines = lines_of(path)
    del lines[1]
    rewrite(path, lines)
    assert "missing" in broken_at(chained, f"{path.name}:2: ")


def test_insertion_is_detected(chained: Path) -> None:
    path = middle_file(chained)
    lines = lines_of(path)
    lines.insert(1, lines[0])
    rewrite(path, lines)
    broken_at(chained, f"{path.name}:2: ")


def test_reordering_is_detected(chained: Path) -> None:
    path = middle_file(chained)
    lines = lines_of(path)
    lines[0], lines[1] = lines[1], lines[0]
    rewrite(path, lines)
    broken_at(chained, f"{path.name}:1: ")


def test_duplicate_key_trick_is_detected(chained: Path) -> None:
    path = middle_file(chained)
    lines = lines_of(path)
    lines[0] = lines[0].replace('"tool":"echo"', '"tool":"evil","tool":"echo"')
    rewrite(path, lines)
    verdict = verify_folder(chained)
    assert not verdict.ok and "duplicate key" in verdict.problem


def test_a_missing_file_in_the_middle_is_detected(chained: Path) -> None:
    path = middle_file(chained)
    first_seq = int(path.name.split(".")[1])
    path.unlink()
    verdict = verify_folder(chained)
    assert not verdict.ok and "are missing" in verdict.problem
    assert f"records {first_seq}.." in verdict.problem


def test_a_renamed_file_is_detected(chained: Path) -> None:
    files = list_log_files(chained)
    a, b = files[1].path, files[2].path
    tmp = a.with_name("swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    assert not verify_folder(chained).ok


def test_a_compressed_file_edit_is_detected(tmp_path: Path) -> None:
    import gzip

    write_records(tmp_path, 40)
    path = middle_file(tmp_path)
    assert path.suffix == ".gz"
    lines = lines_of(path)
    lines[0] = lines[0].replace('"outcome":"ok"', '"outcome":"no"')
    with gzip.open(path, "wt") as fh:
        fh.write("".join(lines))
    verdict = verify_folder(tmp_path)
    assert not verdict.ok and verdict.problem.startswith(f"{path.name}:1: ")


def test_verify_log_command_exit_codes(chained: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
        return subprocess.run(
            [sys.executable, "-m", "mcp_fileserver", "verify-log", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    good = run(str(chained))
    assert good.returncode == 0 and good.stdout.startswith("OK: 40 records")
    configured = run("--log-dir", str(chained), "--allow", str(chained))  # DIR from config
    assert configured.returncode == 0 and configured.stdout.startswith("OK: 40 records")
    assert run(str(chained / "nope")).returncode == 1
    path = middle_file(chained)
    lines = lines_of(path)
    del lines[0]
    rewrite(path, lines)
    bad = run(str(chained))
    assert bad.returncode == 1
    assert bad.stdout.startswith(f"FAIL: {path.name}:1: ")


_PRISTINE: list[str] = []


def _pristine_lines() -> list[str]:
    """A 12-record plain chain, built once."""
    if not _PRISTINE:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            write_records(Path(tmp), 12, AuditSettings(compression="none"))
            _PRISTINE.extend(lines_of(Path(tmp) / "audit.jsonl"))
    return list(_PRISTINE)


@given(data=st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_tampering_is_detected(data: st.DataObject) -> None:
    """Property: any change of one byte, a deletion (not of the last record), a duplicated
    record or two swapped records is always reported."""
    import tempfile

    lines = _pristine_lines()
    op = data.draw(st.sampled_from(["byte", "delete", "duplicate", "swap"]))
    if op == "byte":
        index = data.draw(st.integers(0, len(lines) - 1))
        line = lines[index]
        at = data.draw(st.integers(0, len(line) - 2))  # keep the newline
        new = data.draw(st.characters(codec="ascii").filter(lambda c: c != line[at]))
        lines[index] = line[:at] + new + line[at + 1 :]
    elif op == "delete":
        del lines[data.draw(st.integers(0, len(lines) - 2))]
    elif op == "duplicate":
        index = data.draw(st.integers(0, len(lines) - 1))
        lines.insert(data.draw(st.integers(0, len(lines))), lines[index])
    else:
        a, b = data.draw(st.lists(st.integers(0, len(lines) - 1), min_size=2, max_size=2,
                                  unique=True))  # fmt: skip
        lines[a], lines[b] = lines[b], lines[a]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "audit.jsonl").write_text("".join(lines), newline="")
        assert not verify_folder(Path(tmp)).ok
