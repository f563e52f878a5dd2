"""Reading: caps, head/tail, UTF-8 boundaries, binary refusal, sparse files, media sniffing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcp_fileserver.errors import InvalidRequest, LimitExceeded
from mcp_fileserver.files import media, read
from mcp_fileserver.files.service import FileService
from tests.conftest import make_settings
from tests.files.helpers import Workspace

GiB = 1 << 30


def text_of(path: Path, **kwargs: object) -> read.Text:
    fd = os.open(path, os.O_RDONLY)
    try:
        return read.read_text(fd, os.fstat(fd).st_size, **kwargs)  # type: ignore[arg-type]
    finally:
        os.close(fd)


@pytest.fixture
def lines_file(tmp_path: Path) -> Path:
    path = tmp_path / "lines.txt"
    path.write_text("".join(f"line {i}\n" for i in range(1, 101)))
    return path


def test_whole_file(lines_file: Path) -> None:
    t = text_of(lines_file, max_bytes=1 << 20)
    assert t.text.startswith("line 1\n") and t.text.endswith("line 100\n")
    assert not t.truncated
    assert t.size == lines_file.stat().st_size


@pytest.mark.parametrize("n", [1, 2, 99, 100])
def test_head(lines_file: Path, n: int) -> None:
    t = text_of(lines_file, max_bytes=1 << 20, head=n)
    assert t.text == "".join(f"line {i}\n" for i in range(1, n + 1))
    assert t.truncated == (n < 100)


@pytest.mark.parametrize("n", [1, 3, 100, 500])
def test_tail(lines_file: Path, n: int) -> None:
    t = text_of(lines_file, max_bytes=1 << 20, tail=n)
    first = max(1, 101 - n)
    assert t.text == "".join(f"line {i}\n" for i in range(first, 101))
    assert t.truncated == (n < 100)


def test_tail_without_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("a\nb\nc")
    assert text_of(path, max_bytes=100, tail=2).text == "b\nc"
    assert text_of(path, max_bytes=100, head=2).text == "a\nb\n"


def test_tail_across_blocks(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    body = "".join(f"{i:07d}\n" for i in range(50_000))  # 400 KB, many 64 KiB blocks
    path.write_text(body)
    t = text_of(path, max_bytes=1 << 20, tail=20_000)
    assert t.text == "".join(f"{i:07d}\n" for i in range(30_000, 50_000))


def test_head_and_tail_together_is_invalid(lines_file: Path) -> None:
    with pytest.raises(InvalidRequest, match="not both"):
        text_of(lines_file, max_bytes=100, head=1, tail=1)


def test_cap_truncates(lines_file: Path) -> None:
    t = text_of(lines_file, max_bytes=10)
    assert t.text == "line 1\nlin" and t.truncated
    assert text_of(lines_file, max_bytes=10, head=50).truncated
    assert len(text_of(lines_file, max_bytes=10, tail=50).text) == 10


@pytest.mark.parametrize("cap", range(1, 16))
def test_multibyte_characters_never_split(tmp_path: Path, cap: int) -> None:
    path = tmp_path / "u.txt"
    path.write_text("é€😀aé€😀", encoding="utf-8")  # 2, 3, 4, 1, 2, 3, 4 bytes
    for kwargs in ({}, {"head": 1}, {"tail": 1}):
        t = text_of(path, max_bytes=cap, **kwargs)
        assert "\ufffd" not in t.text  # no replacement character: nothing was split
        assert len(t.text.encode()) <= cap


def test_binary_refused_pointing_to_media(tmp_path: Path) -> None:
    path = tmp_path / "b.bin"
    path.write_bytes(b"abc\0def\n")
    with pytest.raises(InvalidRequest, match="read_media_file"):
        text_of(path, max_bytes=100)


def test_sparse_8gib_head_tail_are_cheap(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    with path.open("wb") as fh:
        fh.write(b"first line\n")
        fh.truncate(8 * GiB)
        fh.seek(8 * GiB - len(b"\nlast line\n"))
        fh.write(b"\nlast line\n")
    assert path.stat().st_size == 8 * GiB
    assert path.stat().st_blocks * 512 < 1 << 20  # really sparse: nothing to read
    assert text_of(path, max_bytes=1 << 20, head=1).text == "first line\n"
    assert text_of(path, max_bytes=1 << 20, tail=1).text == "last line\n"
    with pytest.raises(InvalidRequest, match="binary"):
        text_of(path, max_bytes=1 << 20)  # the zeros are NULs; at most the cap is read


# -- media ---------------------------------------------------------------------------

SAMPLES = {
    "image/png": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
    "image/jpeg": b"\xff\xd8\xff\xe0\0\x10JFIF",
    "image/gif": b"GIF89a\x01\0\x01\0",
    "image/webp": b"RIFF\x24\0\0\0WEBPVP8 ",
    "image/bmp": b"BM\x36\0\0\0\0\0\0\0\x36\0\0\0",
    "image/tiff": b"II*\0\x08\0\0\0",
    "image/x-icon": b"\0\0\1\0\1\0\x10\x10",
    "image/svg+xml": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
    "image/avif": b"\0\0\0\x1cftypavif",
    "audio/wav": b"RIFF\x24\0\0\0WAVEfmt ",
    "audio/mpeg": b"ID3\x04\0\0\0\0\0\0",
    "audio/ogg": b"OggS\0\x02",
    "audio/flac": b"fLaC\0\0\0\x22",
    "audio/mp4": b"\0\0\0\x20ftypM4A ",
    "audio/aiff": b"FORM\0\0\0\0AIFF",
}


@pytest.mark.parametrize("mime", sorted(SAMPLES))
def test_sniff(mime: str) -> None:
    assert media.sniff(SAMPLES[mime]) == mime


@pytest.mark.parametrize("data", [b"hello", b"", b"<html><svg>", b"\x7fELF\2\1\1", b"PK\3\4"])
def test_sniff_rejects_non_media(data: bytes) -> None:
    assert media.sniff(data) is None


def test_media_by_content_not_name(ws: Workspace, tmp_path: Path) -> None:
    (ws.root / "photo.png").write_text("not an image at all\n")
    (ws.root / "noext").write_bytes(SAMPLES["image/png"] + b"\0" * 100)
    (ws.root / "big.png").write_bytes(SAMPLES["image/png"] + b"\0" * 2000)
    service = FileService.from_settings(make_settings(allow=[ws.root], log_dir=tmp_path / "l"))
    with pytest.raises(InvalidRequest, match="not a recognised"):
        service.read_media_file("photo.png")
    found = service.read_media_file("noext")
    assert found.info.mime_type == "image/png" and found.info.size == 116
    small = service.limits.model_copy(update={"max_media_bytes": 1000})
    with pytest.raises(LimitExceeded):
        FileService(service.confinement, small).read_media_file("big.png")
