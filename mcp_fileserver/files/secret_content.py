"""Files whose content holds a secret the server loaded are sensitive (issue 14 §5).

Masking a result cannot protect a secret the client reads in another form: base64 of
an SVG, a line cut in the middle of the secret, or a regular expression that confirms it
one character at a time. So the rule is on the file, not on the output: a file whose
bytes contain any configured secret value (UTF-8, at least `MIN_MASKED_LENGTH`
characters, as `SecretStore.mask` uses) is refused for reading and skipped by content
searches, whatever part of it was asked for. The whole file is checked, in blocks that
overlap by the longest secret, so a secret across a block edge is found too; the cost is
one more read of the file, paid only when secrets are configured.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from mcp_fileserver.errors import NotAllowed
from mcp_fileserver.secrets import MIN_MASKED_LENGTH

BLOCK = 1024 * 1024
REASON = "the file's content holds a configured secret"


class SecretContent:
    def __init__(self, secrets: Iterable[str]) -> None:
        self._needles = tuple(
            sorted(
                {s.encode("utf-8") for s in secrets if len(s) >= MIN_MASKED_LENGTH},
                key=len,
                reverse=True,
            )
        )
        self._overlap = max((len(n) for n in self._needles), default=1) - 1

    def __bool__(self) -> bool:
        return bool(self._needles)

    def in_file(self, fd: int) -> bool:
        """Whether the open file `fd` contains a secret anywhere (read with pread)."""
        if not self._needles:
            return False
        offset = 0
        tail = b""
        while block := os.pread(fd, BLOCK, offset):
            offset += len(block)
            data = tail + block
            if any(needle in data for needle in self._needles):
                return True
            tail = data[-self._overlap :] if self._overlap else b""
        return False

    def refuse(self, fd: int) -> None:
        """Raise the uniform refusal if the file holds a secret (`detail` says why)."""
        if self.in_file(fd):
            raise NotAllowed(detail=REASON, violation=False)
