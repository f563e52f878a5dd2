"""Audit log files on disk: names, listing, reading (compressed or not), compression.

The folder holds `audit.jsonl`, the file being written, and rotated files named after
the `seq` of their first record, `audit.000000000001.jsonl` optionally followed by
`.gz`, `.bz2`, `.xz` or `.zip`. Ordering by that number is the chain order, independent
of clocks and time zones.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ACTIVE_NAME = "audit.jsonl"
LOCK_NAME = ".audit.lock"
DIR_MODE = 0o700
FILE_MODE = 0o600
SUFFIXES = {"none": "", "gz": ".gz", "bz2": ".bz2", "xz": ".xz", "zip": ".zip"}
_ROTATED = re.compile(r"audit\.(\d{12,})\.jsonl(\.gz|\.bz2|\.xz|\.zip)?")


@dataclass(frozen=True)
class LogFile:
    path: Path
    first_seq: int | None  # None for the active file

    @property
    def compressed(self) -> bool:
        return self.path.suffix in (".gz", ".bz2", ".xz", ".zip")


def rotated_name(first_seq: int) -> str:
    return f"audit.{first_seq:012d}.jsonl"


def list_log_files(folder: Path) -> list[LogFile]:
    """Rotated files in chain order, then the active file (if present).

    When a rotated file exists both plain and compressed (a crash between compressing
    and removing the original), the plain one is kept: it is the one that was written.
    """
    rotated: dict[int, LogFile] = {}
    active: LogFile | None = None
    for entry in os.scandir(folder):
        if entry.name == ACTIVE_NAME:
            active = LogFile(Path(entry.path), None)
            continue
        match = _ROTATED.fullmatch(entry.name)
        if match is None:
            continue
        seq = int(match.group(1))
        candidate = LogFile(Path(entry.path), seq)
        if seq not in rotated or not candidate.compressed:
            rotated[seq] = candidate
    files = [rotated[seq] for seq in sorted(rotated)]
    if active is not None:
        files.append(active)
    return files


def unexpected_files(folder: Path) -> list[str]:
    """Names that look like audit files but fit no known pattern (for verify-log)."""
    names = []
    for entry in os.scandir(folder):
        if entry.name in (ACTIVE_NAME, LOCK_NAME) or entry.name.endswith(".tmp"):
            continue
        if entry.name.startswith("audit.") and not _ROTATED.fullmatch(entry.name):
            names.append(entry.name)
    return sorted(names)


def open_text(path: Path) -> io.TextIOBase:
    """A text stream over a log file, decompressing by suffix."""
    suffix = path.suffix
    if suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    if suffix == ".bz2":
        return io.TextIOWrapper(bz2.open(path, "rb"), encoding="utf-8", newline="")
    if suffix == ".xz":
        return io.TextIOWrapper(lzma.open(path, "rb"), encoding="utf-8", newline="")
    if suffix == ".zip":
        archive = zipfile.ZipFile(path)
        members = archive.namelist()
        if len(members) != 1:
            archive.close()
            raise OSError(f"{path.name}: expected one member, found {len(members)}")
        return io.TextIOWrapper(archive.open(members[0]), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_lines(path: Path) -> Iterator[str]:
    with open_text(path) as stream:
        yield from stream


def first_line(path: Path) -> str | None:
    with open_text(path) as stream:
        line = stream.readline()
    return line or None


def last_line(path: Path) -> str | None:
    """The last complete line; plain files are read from the end, compressed ones whole."""
    if path.suffix in (".gz", ".bz2", ".xz", ".zip"):
        last = None
        for line in read_lines(path):
            last = line
        return last
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        chunk = 64 * 1024
        while True:
            start = max(0, size - chunk)
            fh.seek(start)
            data = fh.read(size - start)
            stripped = data.rstrip(b"\n")
            cut = stripped.rfind(b"\n")
            if cut >= 0 or start == 0:
                tail = stripped[cut + 1 :]
                return tail.decode("utf-8", "replace") + "\n" if tail else None
            chunk *= 4


def ensure_folder(folder: Path) -> None:
    """Create the folder 0700 (parents too) and tighten it if it is wider."""
    folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a directory")
    mode = folder.stat().st_mode & 0o777
    if mode & 0o077:
        os.chmod(folder, DIR_MODE)


def open_append(path: Path) -> int:
    """An O_APPEND descriptor on `path`, created 0600 (tightened if it exists wider).
    Readable too, so a torn tail can be inspected with pread."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(path, flags, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def compress(path: Path, compression: str) -> Path:
    """Compress `path` next to itself (0600), remove the original, return the new path."""
    suffix = SUFFIXES[compression]
    if not suffix:
        return path
    target = path.with_name(path.name + suffix)
    partial = path.with_name(path.name + suffix + ".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as raw:
            if compression == "zip":
                with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                    archive.write(path, arcname=path.name)
            else:
                with _compressor(compression, raw) as out, open(path, "rb") as src:
                    while block := src.read(1024 * 1024):
                        out.write(block)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    path.unlink()
    return target


def _compressor(compression: str, raw: io.BufferedWriter) -> io.BufferedIOBase:
    if compression == "gz":
        return gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0)
    if compression == "bz2":
        return bz2.BZ2File(raw, "wb")
    return lzma.LZMAFile(raw, "wb", format=lzma.FORMAT_XZ)
