"""What may enter a record: arguments with sensitive keys masked, secrets masked, long
values shortened, and results reduced to their size.

Rules, in order, at any depth of the arguments:
1. a key that names a credential (password, token, secret, key, authorization,
   credential, cookie, session...) has its whole value replaced by `***`;
2. every secret value the server loaded is replaced by `***` wherever it appears, even
   inside a longer string (before shortening, so half a secret never survives a cut);
3. strings longer than `[audit] max_value_chars` are cut and marked with the number of
   characters removed; lists and objects keep their first items, depth is bounded.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

from mcp_fileserver.audit.records import to_json
from mcp_fileserver.secrets import MASK, SecretStore, is_sensitive_key, mask_deep

__all__ = ["MAX_DEPTH", "MAX_ITEMS", "Redactor", "is_sensitive_key", "mask_deep"]

MAX_ITEMS = 50
MAX_DEPTH = 6


class Redactor:
    def __init__(self, secrets: SecretStore, max_value_chars: int) -> None:
        self._secrets = secrets
        self._max = max_value_chars
        self.mask = secrets.mask  # bound once: it runs on every string of every record

    def text(self, value: str) -> str:
        """A string safe for a record: secrets masked, then shortened. The JSON encoding
        escapes every other control character; DEL, which it keeps, is escaped here."""
        value = self.mask(value)
        if "\x7f" in value:
            value = value.replace("\x7f", "\\x7f")
        if len(value) > self._max:
            cut = len(value) - self._max
            value = f"{value[: self._max]}...[+{cut} chars]"
        return value

    def arguments(self, args: Mapping[str, Any] | None) -> dict[str, Any]:
        if not args:
            return {}
        if not isinstance(args, Mapping):
            return {"value": self._value(args, 0)}
        return self._mapping(args, 0)

    def _value(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if depth >= MAX_DEPTH:
            return "...[nested too deep]"
        if isinstance(value, Mapping):
            return self._mapping(value, depth)
        if isinstance(value, list | tuple):
            items = [self._value(item, depth + 1) for item in value[:MAX_ITEMS]]
            if len(value) > MAX_ITEMS:
                items.append(f"...[+{len(value) - MAX_ITEMS} items]")
            return items
        return self.text(repr(value))

    def _mapping(self, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        """An object's entries cleaned; a string entry, the usual argument, is cleaned
        here without the generic walk (it runs on every argument of every call)."""
        out: dict[str, Any] = {}
        text = self.text
        for index, (key, item) in enumerate(value.items()):
            if index >= MAX_ITEMS:
                out["..."] = f"[+{len(value) - MAX_ITEMS} keys]"
                break
            key = str(key)
            if is_sensitive_key(key):
                out[text(key)] = MASK
            elif isinstance(item, str):
                out[text(key)] = text(item)
            else:
                out[text(key)] = self._value(item, depth + 1)
        return out

    def oversized(self, args: Mapping[str, Any] | None, preview_chars: int) -> dict[str, Any]:
        """What a record keeps of arguments too large for it: their size as JSON, its
        SHA-256 and a short preview (sensitive keys and secrets masked before all three,
        so neither the hash nor the preview can confirm a secret)."""
        whole = to_json(mask_deep(_masked_keys(args or {}, 0), self.mask))
        return {
            "omitted": "arguments larger than [audit] max_record_bytes",
            "bytes": len(whole),
            "sha256": hashlib.sha256(whole.encode("ascii")).hexdigest(),
            "preview": whole[:preview_chars],
        }


def _masked_keys(value: Any, depth: int) -> Any:
    """`value` as JSON data, sensitive keys' values replaced by `***`, nothing cut."""
    if depth > 64:
        return "...[nested too deep]"
    if isinstance(value, Mapping):
        return {
            str(k): MASK if is_sensitive_key(str(k)) else _masked_keys(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_masked_keys(v, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)
