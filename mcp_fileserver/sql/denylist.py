"""The SQL functions no query may call, per dialect: the one deny-list.

The guard (layer 1) refuses a query that names one of these; the SQLite authorizer
(layer 2) refuses them again at compile time. On PostgreSQL the second line of defence
is the READ ONLY transaction and the role's privileges, which stop the writes among these
but not every read (`pg_read_file` needs only a privileged role), hence the list.

A name is matched case-insensitively, without its schema (`pg_catalog.pg_read_file` is
`pg_read_file`), either exactly or by one of the prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FunctionDenyList:
    names: frozenset[str]
    prefixes: tuple[str, ...]

    def denies(self, name: str) -> bool:
        lowered = name.lower()
        return lowered in self.names or lowered.startswith(self.prefixes)


SQLITE_FUNCTIONS = FunctionDenyList(
    names=frozenset(
        {
            # Loadable code and the sqlite3 shell's file access (absent from Python's
            # build today, refused in case a future build or extension adds them).
            "load_extension",
            "readfile",
            "writefile",
            "edit",
            "fsdir",
            "lsmode",
            "fts3_tokenizer",
            "zipfile",
            "zipfile_cds",
            "sqlite_dbpage",
            "sqlite_dbdata",
            "sqlite_dbptr",
        }
    ),
    prefixes=("sqlar_", "shell_"),
)

# Eponymous virtual tables that expose or modify raw database pages; refused even when
# named without parentheses (`SELECT * FROM sqlite_dbpage`).
# `pragma_database_list` is refused too: it shows the database file's absolute path.
SQLITE_DENIED_TABLES = frozenset(
    {"sqlite_dbpage", "sqlite_dbdata", "sqlite_dbptr", "fsdir", "pragma_database_list"}
)

POSTGRES_FUNCTIONS = FunctionDenyList(
    names=frozenset(
        {
            # Server files.
            "pg_stat_file",
            "pg_current_logfile",
            # Configuration and session state.
            "set_config",
            "pg_reload_conf",
            "pg_rotate_logfile",
            "pg_promote",
            "pg_switch_wal",
            "pg_import_system_collations",
            "pg_log_backend_memory_contexts",
            # Sequences and transaction ids (they write or assign an id).
            "nextval",
            "setval",
            "txid_current",
            "pg_current_xact_id",
            # Other backends.
            "pg_terminate_backend",
            "pg_cancel_backend",
            # Notifications, WAL messages.
            "pg_notify",
            "pg_logical_emit_message",
            # Functions that run a query given as a string, out of the guard's sight.
            "query_to_xml",
            "query_to_xmlschema",
            "query_to_xml_and_xmlschema",
            "cursor_to_xml",
            "cursor_to_xmlschema",
            # Deliberate stalls: the timeout stops them, but no read needs them.
            "pg_sleep",
            "pg_sleep_for",
            "pg_sleep_until",
        }
    ),
    prefixes=(
        "pg_read_",  # pg_read_file, pg_read_binary_file
        "pg_ls_",  # pg_ls_dir, pg_ls_logdir, pg_ls_waldir, ...
        "pg_file_",  # adminpack: pg_file_write, pg_file_rename, pg_file_unlink
        "lo_",  # large objects: lo_import, lo_export, lo_create, lo_unlink, ...
        "loread",
        "lowrite",
        "dblink",  # dblink, dblink_exec, dblink_connect, ...
        "pg_advisory",
        "pg_try_advisory",
        "pg_backup_",
        "pg_start_backup",
        "pg_stop_backup",
        "pg_create_",  # restore points, replication slots
        "pg_drop_replication",
        "pg_copy_",  # replication slot copies
        "pg_replication_",
        "pg_logical_slot_",
        "pg_wal_replay_",
        "pg_stat_reset",
    ),
)
