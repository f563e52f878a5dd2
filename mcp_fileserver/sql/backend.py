"""What every SQL backend shares: configuration, the one-call-at-a-time lock, the guard
hook (layer 1) and the shape of a query result. Each engine module adds layer 2."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from loguru import logger

from mcp_fileserver.config import DatabaseConfig
from mcp_fileserver.errors import PolicyViolation
from mcp_fileserver.secrets import SecretStore
from mcp_fileserver.sql.guard import Dialect, check_read_only
from mcp_fileserver.sql.models import QueryResult, ResultColumn
from mcp_fileserver.sql.results import CollectedRows

Params = Sequence[Any] | Mapping[str, Any] | None
T = TypeVar("T")


class DatabaseBackend:
    """Base of `SQLiteDatabase`, `PostgresDatabase` and `MySQLDatabase`."""

    dialect: ClassVar[Dialect]

    def __init__(
        self, config: DatabaseConfig, secrets: SecretStore, *, enforce_guard: bool = True
    ) -> None:
        # enforce_guard=False exists only so tests can prove layer 2 stands alone.
        self.config = config
        self._secrets = secrets
        self._enforce_guard = enforce_guard
        self._lock = threading.Lock()
        self._privilege_warned = False

    def close(self) -> None:
        with self._lock:
            self._drop_connection()

    def _drop_connection(self) -> None:
        raise NotImplementedError

    def _judge_role(self, privileges: list[str]) -> None:
        """Refuse a privileged role, or (when the operator allowed it) warn once."""
        found = self._secrets.mask("; ".join(privileges))
        if not self.config.allow_privileged_role:
            self._drop_connection()
            raise PolicyViolation(
                f"database {self.config.name!r} refused: {privileges[0]}; use a read-only "
                "role (docs/sql.md) or set allow_privileged_role = true",
                detail=found,
            )
        if not self._privilege_warned:
            self._privilege_warned = True
            logger.warning(
                "database {}: allow_privileged_role = true and the role has more than read "
                "privileges ({}); only the other layers keep it read-only",
                self.config.name,
                found,
            )

    def _clean(self, exc_or_text: BaseException | str) -> str:
        """A driver's message for a person: on one line, every known secret masked."""
        text = str(exc_or_text) or type(exc_or_text).__name__
        return self._secrets.mask(" ".join(text.split()))

    def _guard(self, sql: str) -> None:
        if self._enforce_guard:
            check_read_only(sql, self.dialect)

    def _query_result(
        self, columns: list[ResultColumn], collected: CollectedRows, started: float
    ) -> QueryResult:
        # model_construct: the rows are JSON-safe by construction (results.py); validating
        # 10,000 rows again cost more than fetching them.
        result = QueryResult.model_construct(
            database=self.config.name,
            columns=columns,
            rows=collected.rows,
            row_count=len(collected.rows),
            truncated=collected.truncated_reason is not None,
            truncated_reason=collected.truncated_reason,
            elapsed_ms=elapsed_ms(started),
        )
        result._rows_json = collected.rows_json
        return result


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
