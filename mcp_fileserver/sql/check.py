"""`mcp-fileserver check` for databases: inspect each PostgreSQL role.

A role with more than read privileges (superuser, BYPASSRLS, membership of
pg_signal_backend / pg_*_server_files / pg_execute_server_program / pg_write_all_data,
ownership of a table, a write grant, CREATE on a schema or the database) is one bug away
from a write or a side effect: the server refuses such a database, and `check` fails,
unless its config says `allow_privileged_role = true`, which `check` then warns about.
An unreachable database is a warning, never a failure: `check` validates the
configuration, and the server itself starts while a database is down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mcp_fileserver.config import Settings
from mcp_fileserver.errors import Refusal
from mcp_fileserver.sql.postgres import PostgresDatabase


@dataclass(frozen=True)
class Finding:
    level: Literal["warning", "error"]
    text: str


def database_findings(settings: Settings) -> list[Finding]:
    """One finding per problem, secrets masked; empty when every role is read-only."""
    findings: list[Finding] = []
    for config in settings.databases:
        if config.engine != "postgresql":
            continue
        name = f"database {config.name!r}"
        database = PostgresDatabase(config, settings.secrets)
        try:
            privileges = database.role_privileges()
        except Refusal as exc:
            findings.append(
                Finding("warning", f"{name}: {exc.message}; its role's privileges were not checked")
            )
            continue
        finally:
            database.close()
        if not privileges:
            continue
        listed = "; ".join(privileges)
        if config.allow_privileged_role:
            findings.append(
                Finding(
                    "warning",
                    f"{name}: allow_privileged_role = true and the role has more than read "
                    f"privileges ({listed}); only the other layers keep it read-only",
                )
            )
        else:
            findings.append(
                Finding(
                    "error",
                    f"{name} will be refused: {listed}. Use a read-only role (docs/sql.md) "
                    "or set allow_privileged_role = true",
                )
            )
    return [Finding(f.level, settings.secrets.mask(f.text)) for f in findings]


def database_warnings(settings: Settings) -> list[str]:
    """Every finding as one line (warnings and errors alike)."""
    return [finding.text for finding in database_findings(settings)]
