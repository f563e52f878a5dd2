"""`mcp-fileserver check` for databases: inspect each PostgreSQL role and each MariaDB or
MySQL account.

A role with more than read privileges (PostgreSQL: superuser, BYPASSRLS, membership of
pg_signal_backend / pg_*_server_files / pg_execute_server_program / pg_write_all_data,
ownership of a table, a write grant, CREATE on a schema or the database; MariaDB/MySQL:
any privilege but SELECT, SHOW VIEW, SHOW DATABASES and USAGE, on the account, its roles
or PUBLIC, a grant option, SELECT reaching the mysql schema) is one bug away
from a write or a side effect: the server refuses such a database, and `check` fails,
unless its config says `allow_privileged_role = true`, which `check` then warns about.
An unreachable database is a warning, never a failure: `check` validates the
configuration, and the server itself starts while a database is down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from mcp_fileserver.config import DatabaseConfig, Settings
from mcp_fileserver.errors import Refusal
from mcp_fileserver.secrets import SecretStore


class _Inspectable(Protocol):
    def role_privileges(self) -> list[str]: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Finding:
    level: Literal["warning", "error"]
    text: str


def database_findings(settings: Settings) -> list[Finding]:
    """One finding per problem, secrets masked; empty when every role is read-only."""
    findings: list[Finding] = []
    for config in settings.databases:
        database = _backend(config, settings.secrets)
        if database is None:
            continue
        name = f"database {config.name!r}"
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


def _backend(config: DatabaseConfig, secrets: SecretStore) -> _Inspectable | None:
    """The engine's backend, its driver imported only when such a database is configured."""
    if config.engine == "postgresql":
        from mcp_fileserver.sql.postgres import PostgresDatabase

        return PostgresDatabase(config, secrets)
    if config.engine in ("mariadb", "mysql"):
        from mcp_fileserver.sql.mysql import MySQLDatabase

        return MySQLDatabase(config, secrets)
    return None


def database_warnings(settings: Settings) -> list[str]:
    """Every finding as one line (warnings and errors alike)."""
    return [finding.text for finding in database_findings(settings)]
