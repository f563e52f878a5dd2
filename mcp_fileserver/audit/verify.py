"""`verify-log`: check the hash chain across every file of an audit folder.

Files are read in chain order (rotated files by the `seq` in their name, compressed or
not, then `audit.jsonl`). Every record must parse strictly, hash to its `hash`, carry
the previous record's hash as `prev` and the next `seq`; a rotated file must start with
the `seq` its name says. So an edited, deleted, inserted or reordered record, or a file
missing from the middle, is reported at the first record where the chain breaks.

What no chain can show: records cut from the very end (keep a copy elsewhere: ship the
logs), and files removed from the very beginning, which retention also does; the summary
says where the surviving chain starts.
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


def verify_folder(folder: Path, hmac_key: str | None = None) -> Verdict:
    if not folder.is_dir():
        return Verdict(ok=False, problem=f"{folder}: not a directory")
    hasher = make_hasher(hmac_key)
    verdict = Verdict(ok=True)
    strays = unexpected_files(folder)
    if strays:
        verdict.notes.append("ignored files not named like audit files: " + ", ".join(strays))
    prev_hash: str | None = None
    prev_seq: int | None = None
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
                    starts_fresh = record.seq == 1 and record.prev == GENESIS
                    if not starts_fresh and item.first_seq is None:
                        # Retention always keeps a rotated file, so a chain that starts
                        # in the active file must start at the very beginning.
                        verdict.ok = False
                        verdict.problem = (
                            f"{where}: seq {record.seq} is the first record: records "
                            f"1..{record.seq - 1} are missing"
                        )
                        return verdict
                    if not starts_fresh:
                        verdict.notes.append(
                            f"the chain starts at seq {record.seq}: earlier files were removed "
                            "(retention keeps only the newest)"
                        )
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
