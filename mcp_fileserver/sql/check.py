"""`mcp-fileserver check` for databases: warn when a PostgreSQL role could write.

The server never writes, but a role that can is one bug away from it; a read-only role is
the last layer (docs/sql.md shows how to create one). An unreachable database is a
warning too, never a failure: `check` validates the configuration, and the server itself
starts while a database is down.
"""

from __future__ import annotations

from mcp_fileserver.config import Settings
from mcp_fileserver.errors import Refusal
from mcp_fileserver.sql.postgres import PostgresDatabase


def database_warnings(settings: Settings) -> list[str]:
    """One line per problem found, secrets masked; empty when every role is read-only."""
    warnings: list[str] = []
    for config in settings.databases:
        if config.engine != "postgresql":
            continue
        database = PostgresDatabase(config, settings.secrets)
        try:
            privileges = database.write_privileges()
        except Refusal as exc:
            warnings.append(
                f"database {config.name!r}: {exc.message}; its role's privileges were not checked"
            )
            continue
        finally:
            database.close()
        if privileges:
            warnings.append(
                f"database {config.name!r}: the role can write ({'; '.join(privileges)}). "
                "Use a read-only role: see docs/sql.md"
            )
    return [settings.secrets.mask(line) for line in warnings]
