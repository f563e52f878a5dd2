"""The SQL functions no query may call, per dialect: the one deny-list.

The guard (layer 1) refuses a query that names one of these; the SQLite authorizer
(layer 2) refuses them again at compile time. On PostgreSQL the second line of defence
is the function policy (catalog.py: volatile functions refused), then the READ ONLY
transaction and the session reset, then the role's privileges; each stops part of this
list on its own, and this list names them all, so no layer depends on another.

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

# Functions that run SQL given to them as text (or build and run queries), out of the
# guard's sight: whatever that text calls would bypass every check on the query. Refused
# always, whatever their volatility (`table_to_xml`, `schema_to_xml`, `database_to_xml`
# are marked stable) and whatever the volatile allow-list says. Any other installed
# function whose text argument is named like a query is found in the catalog too
# (function_policy.py).
POSTGRES_SQL_TEXT_FUNCTIONS = FunctionDenyList(
    names=frozenset(
        {
            "ts_stat",  # ts_stat(query text [, weights])
            "ts_rewrite",  # ts_rewrite(tsquery, select text); the 3-tsquery form goes too
            "query_to_xml",
            "query_to_xmlschema",
            "query_to_xml_and_xmlschema",
            "cursor_to_xml",
            "cursor_to_xmlschema",
            "table_to_xml",
            "table_to_xmlschema",
            "table_to_xml_and_xmlschema",
            "schema_to_xml",
            "schema_to_xmlschema",
            "schema_to_xml_and_xmlschema",
            "database_to_xml",
            "database_to_xmlschema",
            "database_to_xml_and_xmlschema",
            "connectby",  # contrib tablefunc: connectby(relname, ...) builds and runs SQL
            "xpath_table",  # contrib xml2: builds and runs SQL from its text arguments
        }
    ),
    prefixes=(
        "crosstab",  # contrib tablefunc: crosstab(source_sql [, category_sql]), crosstab2..4
        "dblink",  # contrib dblink: dblink, dblink_exec, dblink_open, dblink_send_query, ...
        "pg_background",  # pg_background_launch(sql)
        "run_command_on_",  # Citus: run_command_on_workers(sql), ...
        "pgr_",  # pgRouting: every algorithm takes its edges as SQL text
        "hypopg_create_index",  # plans the statement given as text
    ),
)

POSTGRES_FUNCTIONS = FunctionDenyList(
    names=POSTGRES_SQL_TEXT_FUNCTIONS.names
    | frozenset(
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
            "pg_notification_queue_usage",
            # Snapshots, statistics and index maintenance.
            "pg_export_snapshot",
            "pg_stat_clear_snapshot",
            "pg_stat_force_next_flush",
            "brin_summarize_new_values",
            "brin_summarize_range",
            "brin_desummarize_range",
            "gin_clean_pending_list",
            "setseed",
            # Deliberate stalls: the timeout stops them, but no read needs them.
            "pg_sleep",
            "pg_sleep_for",
            "pg_sleep_until",
        }
    ),
    prefixes=(
        *POSTGRES_SQL_TEXT_FUNCTIONS.prefixes,
        "pg_read_",  # pg_read_file, pg_read_binary_file
        "pg_ls_",  # pg_ls_dir, pg_ls_logdir, pg_ls_waldir, ...
        "pg_file_",  # adminpack: pg_file_write, pg_file_rename, pg_file_unlink
        "lo_",  # large objects: lo_import, lo_export, lo_create, lo_unlink, ...
        "loread",
        "lowrite",
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
        "pg_replication_origin_",
        "binary_upgrade_",
    ),
)

# MySQL and MariaDB: the known side effects among the names a query could call. The
# guard allows only listed built-ins (mysql_functions.py), so this list is not the wall;
# it makes a refusal of a known attack say why and count as a violation.
MYSQL_FUNCTIONS = FunctionDenyList(
    names=frozenset(
        {
            # Server files.
            "load_file",
            # Deliberate stalls and CPU burners.
            "sleep",
            "benchmark",
            # Named locks held by the session.
            "get_lock",
            "release_lock",
            "release_all_locks",
            "is_free_lock",
            "is_used_lock",
            # Waits on replication.
            "master_pos_wait",
            "master_gtid_wait",
            "source_pos_wait",
            "wait_for_executed_gtid_set",
            "wait_until_sql_thread_after_gtids",
            # MariaDB sequences: NEXTVAL and SETVAL advance or set one.
            "nextval",
            "setval",
            "lastval",
            # INSERT ... ON DUPLICATE KEY UPDATE's new-row values (VALUE() on MariaDB).
            "values",
            "value",
            # The usual user-defined command runners (lib_mysqludf_sys).
            "sys_exec",
            "sys_eval",
            "sys_get",
            "sys_set",
        }
    ),
    prefixes=(),
)
