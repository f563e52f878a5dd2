"""What the sandbox enforced (or would enforce): for the start audit record and `check`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["off", "enforced", "partial", "unavailable", "planned"]


@dataclass(frozen=True)
class SandboxReport:
    """A plain-data account of the sandbox; `as_dict()` is JSON-ready and secret-free."""

    mode: str
    status: Status
    landlock_abi: int = 0
    enforced: tuple[str, ...] = ()
    not_enforced: tuple[str, ...] = ()
    ruleset: dict[str, Any] | None = None
    skipped_paths: tuple[dict[str, str], ...] = ()
    temp_dir: str | None = None
    running_as_root: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def active(self) -> bool:
        return self.status in ("enforced", "partial")

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "status": self.status,
            "landlock_abi": self.landlock_abi,
            "enforced": list(self.enforced),
            "not_enforced": list(self.not_enforced),
            "ruleset": self.ruleset,
            "skipped_paths": list(self.skipped_paths),
            "temp_dir": self.temp_dir,
            "running_as_root": self.running_as_root,
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """One line for the human log."""
        text = f"sandbox {self.status} (mode {self.mode}"
        text += f", Landlock ABI {self.landlock_abi})" if self.landlock_abi else ")"
        if self.enforced:
            text += ": " + ", ".join(self.enforced)
        if self.not_enforced:
            text += "; NOT enforced: " + "; ".join(self.not_enforced)
        return text
