"""Issue 14 §4: checkpoints outside the folder make a cut tail, a deleted file and a
rewritten chain detectable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from loguru import logger

from mcp_fileserver.audit.checkpoint import parse_checkpoints, public_hex
from mcp_fileserver.audit.files import list_log_files, read_lines
from mcp_fileserver.audit.log import AuditLog
from mcp_fileserver.audit.records import GENESIS, encode, make_hasher
from mcp_fileserver.audit.verify import verify_folder
from mcp_fileserver.config import AuditSettings

SETTINGS = AuditSettings(
    rotation_bytes=2048, retention_files=1000, compression="none", checkpoint_every=10
)


def _write(folder: Path, count: int, key: str | None = None) -> str:
    """Write `count` records, then stop; the checkpoint lines that went to stderr."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), format="{message}", level="INFO")
    try:
        log = AuditLog(folder, SETTINGS, None, key)
        try:
            for n in range(count):
                log.write("tool_call", tool="echo", args={"n": n}, outcome="ok")
            log.checkpointer.emit("stop")
        finally:
            log.close()
    finally:
        logger.remove(sink)
    return "".join(lines)


def _checkpoints(text: str) -> list[tuple[int, str]]:
    return [(c.seq, c.hash) for c in parse_checkpoints(text)]


def test_checkpoints_every_n_records_and_at_stop(tmp_path: Path) -> None:
    captured = _write(tmp_path, 35)
    assert [seq for seq, _ in _checkpoints(captured)] == [10, 20, 30, 35]
    verdict = verify_folder(tmp_path, checkpoints=_checkpoints(captured))
    assert verdict.ok, verdict.problem


def test_a_cut_tail_is_detected(tmp_path: Path) -> None:
    captured = _write(tmp_path, 35)
    active = list_log_files(tmp_path)[-1].path
    kept = list(read_lines(active))[:-2]
    active.write_text("".join(kept))
    assert verify_folder(tmp_path).ok  # the chain alone cannot tell
    verdict = verify_folder(tmp_path, checkpoints=_checkpoints(captured))
    assert not verdict.ok and "cut from its end" in str(verdict.problem)


def test_a_deleted_active_file_is_detected(tmp_path: Path) -> None:
    captured = _write(tmp_path, 35)
    list_log_files(tmp_path)[-1].path.unlink()
    assert verify_folder(tmp_path).ok
    assert not verify_folder(tmp_path, checkpoints=_checkpoints(captured)).ok


def test_a_rewritten_chain_is_detected(tmp_path: Path) -> None:
    captured = _write(tmp_path, 35)
    # rewrite the whole folder: same number of records, other content, valid chain
    for item in list_log_files(tmp_path):
        item.path.unlink()
    hasher, prev, out = make_hasher(None), GENESIS, []
    for seq in range(1, 36):
        line, prev = encode({"event": "tool_call", "tool": "forged"}, seq, prev, hasher)
        out.append(line)
    (tmp_path / "audit.jsonl").write_text("".join(out))
    assert verify_folder(tmp_path).ok
    verdict = verify_folder(tmp_path, checkpoints=_checkpoints(captured))
    assert not verdict.ok and "chain rewritten" in str(verdict.problem)


def test_signed_checkpoints_cannot_be_forged(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
    captured = _write(tmp_path, 12, key=seed)
    public = public_hex(private)
    checked = parse_checkpoints(captured, public)
    assert checked and all(c.signed and c.valid for c in checked)
    forged = captured.replace(checked[0].hash, "0" * 64)
    assert not parse_checkpoints(forged, public)[0].valid
    other = public_hex(Ed25519PrivateKey.generate())
    assert not any(c.valid for c in parse_checkpoints(captured, other))


@pytest.mark.parametrize("cut", [False, True])
def test_verify_log_command_takes_checkpoints(tmp_path: Path, cut: bool) -> None:
    folder = tmp_path / "logs"
    captured = _write(folder, 25)
    (tmp_path / "stderr.txt").write_text(captured)
    if cut:
        active = list_log_files(folder)[-1].path
        active.write_text("".join(list(read_lines(active))[:-1]))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mcp_fileserver",
            "verify-log",
            str(folder),
            "--checkpoints",
            str(tmp_path / "stderr.txt"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == (1 if cut else 0), run.stdout + run.stderr
