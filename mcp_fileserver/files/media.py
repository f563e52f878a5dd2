"""Media type by content, never by file name: the first bytes decide.

Only images and audio are served by `read_media_file`; anything unrecognised is refused,
so a renamed text file or executable cannot be passed off as an image.
"""

from __future__ import annotations

import re

SNIFF_BYTES = 512

_SVG = re.compile(
    rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*(<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]", re.S
)


def sniff(head: bytes) -> str | None:
    """The MIME type of an image or audio file from its first bytes, else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"BM") and len(head) >= 14 and head[6:10] == b"\0\0\0\0":
        return "image/bmp"
    if head.startswith((b"II*\0", b"MM\0*")):
        return "image/tiff"
    if head.startswith(b"\0\0\1\0") and len(head) >= 6 and head[4:6] != b"\0\0":
        return "image/x-icon"
    if head[4:8] == b"ftyp":
        return _iso_media(head[8:12])
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg" if not _is_aac_adts(head) else "audio/aac"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio/aiff"
    if _SVG.match(head):
        return "image/svg+xml"
    return None


def _iso_media(brand: bytes) -> str | None:
    if brand in (b"avif", b"avis"):
        return "image/avif"
    if brand in (b"heic", b"heix", b"mif1", b"msf1"):
        return "image/heic"
    if brand in (b"M4A ", b"M4B ", b"M4P "):
        return "audio/mp4"
    return None


def _is_aac_adts(head: bytes) -> bool:
    # ADTS frames share MP3's 12-bit sync word; the layer bits are 00 for AAC.
    return not head.startswith(b"ID3") and len(head) >= 2 and head[1] & 0x06 == 0


def is_image(mime: str) -> bool:
    return mime.startswith("image/")
