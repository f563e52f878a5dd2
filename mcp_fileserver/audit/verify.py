"""`verify-log`: check the hash chain across every file of an audit folder.

Files are read in chain order (rotated files by the `seq` in their name, compressed or
not, then `audit.jsonl`). Every record must parse strictly, hash to its `hash`, carry
the previous record's hash as `prev` and the next `seq`; a rotated file must start with
the `seq` its name says. So an edited, deleted, inserted or reordered record, or a file
missing from the middle, is reported at the first record where the chain breaks.

Files removed from the beginning: retention writes an `audit_pruned` record (chained,
so it cannot be forged without breaking the chain, or without the key with an HMAC)
carrying each removed file's last seq and hash before removing it. A chain that starts
after seq 1 must start exactly where such a record says the removed history ended;
otherwise its beginning was cut and the check fails.

Records cut from the very end no chain can show by itself: checkpoints can
(checkpoint.py). Given checkpoints (seq, hash) taken from outside the folder, every one
must be found in the chain with that very hash: a truncated tail, a deleted file or a
rewritten chain each fail one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mcp_fileserver.audit.files import list_log_files, read_lines, unexpected_files
from mcp_fileserver.audit.records import GENESIS, BadRecord, Hasher, decode, make_hasher


@dataclass
class Verdict:
    ok: bool
    files: int = 0
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    events: Counter[str] = field(default_factory=Counter)
    problem: str | None = None  # "file:line: reason" for the first bad record
    notes: list[str] = field(default_factory=list)
    pruned: dict[int, tuple[str, str]] = field(default_factory=dict)  # last seq -> (hash, file)
    start_prev: str | None = None  # `prev` of the first record kept

    def summary(self) -> str:
        if not self.ok:
            return f"FAIL: {self.problem}"
        if self.records == 0:
            return "OK: no audit records yet"
        events = ", ".join(f"{count} {name}" for name, count in sorted(self.events.items()))
        return (
            f"OK: {self.records} records in {self.files} file(s), seq {self.first_seq}.."
            f"{self.last_seq}, chain intact ({events}); last hash {self.last_hash}"
        )


def verify_folder(
    folder: Path,
    hmac_key: str | None = None,
    checkpoints: list[tuple[int, str]] | None = None,
) -> Verdict:
    """Check the chain of `folder`; with `checkpoints` ((seq, hash) pairs recorded
    outside it), also that each is in the chain, unchanged."""
    verdict = _verify_chain(folder, hmac_key, checkpoints or [])
    if not verdict.ok or verdict.first_seq is None or verdict.first_seq == 1:
        return verdict
    missing = f"records 1..{verdict.first_seq - 1}"
    accounted = verdict.pruned.get(verdict.first_seq - 1)
    if accounted is None or accounted[0] != verdict.start_prev:
        verdict.ok = False
        verdict.problem = (
            f"the chain starts at seq {verdict.first_seq}: {missing} are missing and no "
            "audit_pruned record accounts for them (files removed by hand?)"
        )
        return verdict
    files = ", ".join(name for _, (_, name) in sorted(verdict.pruned.items()))
    verdict.notes.append(
        f"{missing} were removed by retention ({files}); the kept chain continues from "
        f"the hash its audit_pruned record carries"
    )
    return verdict


def _verify_chain(
    folder: Path, hmac_key: str | None, checkpoints: list[tuple[int, str]]
) -> Verdict:
    if not folder.is_dir():
        return Verdict(ok=False, problem=f"{folder}: not a directory")
    hasher = make_hasher(hmac_key)
    verdict = Verdict(ok=True)
    strays = unexpected_files(folder)
    if strays:
        verdict.notes.append("ignored files not named like audit files: " + ", ".join(strays))
    prev_hash: str | None = None
    prev_seq: int | None = None
    wanted = dict(checkpoints)
    for item in list_log_files(folder):
        verdict.files += 1
        first_in_file = True
        try:
            for number, line in enumerate(read_lines(item.path), start=1):
                where = f"{item.path.name}:{number}"
                problem = _check(line, hasher, prev_hash, prev_seq, hmac_key is not None)
                if problem is None and first_in_file and item.first_seq is not None:
                    seq = decode(line).seq
                    if seq != item.first_seq:
                        problem = f"file name says it starts at seq {item.first_seq}, not {seq}"
                if problem is not None:
                    verdict.ok, verdict.problem = False, f"{where}: {problem}"
                    return verdict
                record = decode(line)
                if prev_seq is None:
                    verdict.first_seq = record.seq
                    verdict.start_prev = record.prev
                    if record.seq == 1 and record.prev != GENESIS:
                        verdict.ok = False
                        verdict.problem = f"{where}: seq 1 does not start from the genesis hash"
                        return verdict
                fields = record.fields
                if fields.get("event") == "audit_pruned":
                    last_seq, last_hash = (
                        fields.get("pruned_last_seq"),
                        fields.get("pruned_last_hash"),
                    )
                    if isinstance(last_seq, int) and isinstance(last_hash, str):
                        verdict.pruned[last_seq] = (last_hash, str(fields.get("pruned_file")))
                expected = wanted.get(record.seq)
                if expected is not None:
                    if expected != record.hash:
                        verdict.ok = False
                        verdict.problem = (
                            f"{where}: seq {record.seq} has hash {record.hash[:16]}..., the "
                            f"checkpoint says {expected[:16]}... (chain rewritten)"
                        )
                        return verdict
                    del wanted[record.seq]
                prev_hash, prev_seq = record.hash, record.seq
                first_in_file = False
                verdict.records += 1
                verdict.events[str(record.fields.get("event"))] += 1
        except (OSError, EOFError, ValueError) as exc:
            verdict.ok = False
            verdict.problem = f"{item.path.name}: cannot be read ({exc.__class__.__name__}: {exc})"
            return verdict
        if first_in_file and item.first_seq is not None:
            verdict.ok, verdict.problem = False, f"{item.path.name}: rotated file is empty"
            return verdict
    verdict.last_seq, verdict.last_hash = prev_seq, prev_hash
    first = verdict.first_seq
    # Checkpoints older than the kept chain: judged with the pruning (verify_folder).
    wanted = {seq: h for seq, h in wanted.items() if first is None or seq >= first}
    if wanted:
        seq = max(wanted)
        verdict.ok = False
        if prev_seq is None or seq > prev_seq:
            verdict.problem = (
                f"a checkpoint saw seq {seq}, the log ends at seq {prev_seq or 0}: "
                "records were cut from its end"
            )
        else:
            verdict.problem = (
                f"a checkpoint saw seq {min(wanted)}, which is not in the log: its file was removed"
            )
        return verdict
    if checkpoints:
        verdict.notes.append(f"{len(checkpoints)} checkpoint(s) found in the chain, unchanged")
    return verdict


def _check(
    line: str, hasher: Hasher, prev_hash: str | None, prev_seq: int | None, keyed: bool
) -> str | None:
    try:
        record = decode(line)
    except BadRecord as exc:
        return str(exc)
    if hasher(record.body) != record.hash:
        hint = "" if keyed else " (if this log uses [audit] hmac_key, give the key)"
        return f"seq {record.seq}: hash does not match the record (edited?){hint}"
    if prev_seq is not None:
        if record.seq != prev_seq + 1:
            if record.seq <= prev_seq:
                return f"seq {record.seq} after seq {prev_seq} (records reordered or duplicated)"
            missing = f"{prev_seq + 1}..{record.seq - 1}"
            return f"seq {record.seq} after seq {prev_seq}: records {missing} are missing"
        if record.prev != prev_hash:
            return f"seq {record.seq}: prev does not match the previous record's hash"
    return None
