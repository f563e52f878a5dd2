"""Checkpoints: the chain's head, told to a second channel outside the audit folder.

A hash chain shows an edit inside it, not a cut at its end or a chain rewritten whole.
So the server tells someone else where the chain stands: at start, every
`[audit] checkpoint_every` records or `checkpoint_interval_s` seconds (checked as
records are written: an idle chain has nothing new to tell), and at stop, one line

    audit checkpoint seq=1234 hash=<64 hex> time=2026-12-03T07:40:00.123Z folder=/path sig=<hex>

goes to stderr (which Claude Desktop and Docker capture) and, where a syslog socket
exists, to syslog/journald (facility AUTH). `verify-log --checkpoints FILE` reads such
lines back and fails if a checkpointed record is missing (tail cut, file deleted) or
has another hash (chain rewritten).

With `[audit] checkpoint_key` (an Ed25519 private key, `${VAR}` only: 64 hex digits of
its seed, or PEM) each line is signed, so someone who can write the folder and the
captured lines still cannot forge a checkpoint; `verify-log --checkpoint-pubkey HEX`
checks the signatures. The public key is printed at start. Ed25519 comes from
`cryptography` (pyca), already installed with the MCP SDK's dependencies and pinned in
pyproject.toml for this use: a well-kept, audited binding of OpenSSL.
"""

from __future__ import annotations

import os
import re
import syslog
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from loguru import logger

from mcp_fileserver.audit.records import utc_timestamp
from mcp_fileserver.config import AuditSettings
from mcp_fileserver.errors import ConfigError

SYSLOG_SOCKET = "/dev/log"
_LINE = re.compile(
    r"audit checkpoint seq=(?P<seq>\d+) hash=(?P<hash>[0-9a-f]{64}) time=(?P<time>\S+)"
    r" folder=(?P<folder>\S*)(?: sig=(?P<sig>[0-9a-f]{128}))?"
)


def load_signing_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from 64 hex digits (its seed) or PEM (PKCS#8)."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_private_key(text.encode("ascii"), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("not an Ed25519 key")
            return key
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text))
    except ValueError:
        raise ConfigError(
            "[audit] checkpoint_key must be an Ed25519 private key: 64 hex digits of its "
            "seed, or PEM (openssl genpkey -algorithm ed25519)"
        ) from None


def public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _message(seq: int, digest: str, moment: str, folder: str) -> bytes:
    return f"mcp-fileserver audit checkpoint v1|{seq}|{digest}|{moment}|{folder}".encode()


class Checkpointer:
    """Emits checkpoints of one audit folder's chain (see the module docstring)."""

    def __init__(self, folder: Path, settings: AuditSettings, key: str | None) -> None:
        self.folder = str(folder)
        self.every = settings.checkpoint_every
        self.interval_s = settings.checkpoint_interval_s
        self.key = load_signing_key(key) if key else None
        self.syslog = settings.checkpoint_syslog and os.path.exists(SYSLOG_SOCKET)
        if self.syslog:
            # Opened now (LOG_NDELAY), before the sandbox may close the way to it.
            syslog.openlog("mcp-fileserver", syslog.LOG_PID | syslog.LOG_NDELAY, syslog.LOG_AUTH)
        self._since = 0
        self._last_emit = time.monotonic()
        self.last: tuple[int, str] | None = None

    def after_write(self, seq: int, digest: str) -> None:
        """Called for every record written (under the sink's lock): cheap unless due."""
        self.last = (seq, digest)
        self._since += 1
        if self._since >= self.every or time.monotonic() - self._last_emit >= self.interval_s:
            self.emit("periodic")

    def emit(self, why: str) -> str | None:
        """Tell the current head of the chain; the line, or None before any record."""
        if self.last is None:
            return None
        seq, digest = self.last
        moment = utc_timestamp()
        line = f"audit checkpoint seq={seq} hash={digest} time={moment} folder={self.folder}"
        if self.key is not None:
            line += f" sig={self.key.sign(_message(seq, digest, moment, self.folder)).hex()}"
        self._since, self._last_emit = 0, time.monotonic()
        logger.info("{} ({})", line, why)
        if self.syslog:
            syslog.syslog(syslog.LOG_INFO, line)
        return line

    def announce_key(self) -> None:
        if self.key is not None:
            logger.info("audit checkpoints are signed; Ed25519 public key {}", public_hex(self.key))


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    folder: str
    signed: bool
    valid: bool | None  # None: no public key given to check it


def parse_checkpoints(text: str, public_key_hex: str | None = None) -> list[Checkpoint]:
    """Every checkpoint line in `text` (a captured stderr or syslog), signatures checked
    against `public_key_hex` when given."""
    public = (
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        if public_key_hex
        else None
    )
    found = []
    for match in _LINE.finditer(text):
        seq, digest = int(match["seq"]), match["hash"]
        sig = match["sig"]
        valid: bool | None = None
        if public is not None:
            valid = False
            if sig:
                try:
                    public.verify(
                        bytes.fromhex(sig), _message(seq, digest, match["time"], match["folder"])
                    )
                    valid = True
                except InvalidSignature:
                    valid = False
        found.append(Checkpoint(seq, digest, match["folder"], sig is not None, valid))
    return found
