"""The attack and control queries, shared by the guard tests and the engine suites.

`{out}` in a query stands for a folder the test watches: a file appearing there is a
breach; `{canary}` for a file outside every allowed place whose content must never show.
Each engine attack says whether layer 2 alone (the guard switched off) must answer with an
error; where it need not, the test still proves nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attack:
    id: str
    sql: str
    engine_refuses: bool = True  # layer 2 alone returns an error

    def render(self, out: str, canary: str = "/nonexistent/canary") -> str:
        return self.sql.replace("{out}", out).replace("{canary}", canary)


SQLITE_ATTACKS = [
    Attack("drop", "DROP TABLE books"),
    Attack("drop-view", "DROP VIEW book_titles"),
    Attack("delete", "DELETE FROM books"),
    Attack("insert", "INSERT INTO authors (name) VALUES ('x')"),
    Attack("insert-select", "INSERT INTO authors (name) SELECT title FROM books"),
    Attack("update", "UPDATE books SET price = 0"),
    Attack("replace", "REPLACE INTO authors (id, name) VALUES (1, 'x')"),
    Attack("insert-or-replace", "INSERT OR REPLACE INTO authors (id, name) VALUES (1, 'x')"),
    Attack("upsert", "INSERT INTO authors (id, name) VALUES (1, 'x') ON CONFLICT DO NOTHING"),
    Attack("cte-delete", "WITH x AS (SELECT 1) DELETE FROM books"),
    Attack("cte-with-delete-inside", "WITH d AS (DELETE FROM books RETURNING *) SELECT * FROM d"),
    Attack("cte-update", "WITH x AS (SELECT 1) UPDATE books SET price = 1"),
    Attack("returning-delete", "DELETE FROM books RETURNING *"),
    Attack("returning-insert", "INSERT INTO authors (name) VALUES ('x') RETURNING id"),
    Attack("create-table", "CREATE TABLE t (x)"),
    Attack("create-table-as", "CREATE TABLE t AS SELECT * FROM books"),
    Attack("create-temp-table", "CREATE TEMP TABLE t (x)"),
    Attack("create-temp-view", "CREATE TEMP VIEW v AS SELECT 1"),
    Attack("create-index", "CREATE INDEX i ON books (title)"),
    Attack(
        "create-trigger", "CREATE TRIGGER tr AFTER INSERT ON books BEGIN DELETE FROM books; END"
    ),
    Attack("create-virtual", "CREATE VIRTUAL TABLE v USING fts5(x)"),
    Attack("alter", "ALTER TABLE books ADD COLUMN x"),
    Attack("alter-rename", "ALTER TABLE books RENAME TO gone"),
    Attack("vacuum", "VACUUM"),
    Attack("vacuum-into", "VACUUM INTO '{out}/copy.db'"),
    Attack("attach", "ATTACH DATABASE '{out}/new.db' AS x"),
    Attack("attach-memory", "ATTACH DATABASE ':memory:' AS m"),
    Attack("attach-then-create", "ATTACH DATABASE '{out}/new.db' AS x; CREATE TABLE x.t (a)"),
    Attack("attach-uri", "ATTACH DATABASE 'file:{out}/uri.db?mode=rwc' AS x"),
    Attack("detach", "DETACH DATABASE main"),
    Attack("multi", "SELECT 1; DROP TABLE books"),
    Attack("multi-delete", "SELECT * FROM books; DELETE FROM books"),
    Attack("multi-trailing-comment", "SELECT 1; DELETE FROM books; --"),
    Attack("comment-block", "SELECT 1 /* harmless */; DROP TABLE books"),
    Attack("comment-line", "SELECT 1 -- comment\n; DROP TABLE books"),
    Attack("comment-prefix", "/* SELECT */ DELETE FROM books"),
    Attack("comment-nested", "SELECT 1 /* /* */ ; DROP TABLE books; -- */"),
    Attack("comment-inside-keyword", "DEL/**/ETE FROM books"),
    Attack("case-drop", "dRoP tAbLe books"),
    Attack("case-delete", "DeLeTe FrOm books"),
    Attack("pragma-writable-schema", "PRAGMA writable_schema = ON"),
    Attack(
        "pragma-writable-schema-update",
        "PRAGMA writable_schema = 1; UPDATE sqlite_master SET sql = 'x'",
    ),
    Attack("pragma-query-only", "PRAGMA query_only = 0"),
    Attack("pragma-query-only-off", "PRAGMA query_only = OFF"),
    Attack("pragma-journal-wal", "PRAGMA journal_mode = WAL"),
    Attack("pragma-journal-off", "PRAGMA journal_mode = OFF"),
    Attack("pragma-user-version", "PRAGMA user_version = 42"),
    Attack("pragma-schema-version", "PRAGMA schema_version = 1"),
    Attack("pragma-trusted-schema", "PRAGMA trusted_schema = ON"),
    Attack("pragma-database-list", "PRAGMA database_list"),
    Attack("pragma-tvf-database-list", "SELECT * FROM pragma_database_list"),
    Attack("analyze", "ANALYZE"),
    Attack("analyze-table", "ANALYZE books"),
    Attack("reindex", "REINDEX"),
    Attack("reindex-table", "REINDEX books"),
    Attack("begin", "BEGIN"),
    Attack("begin-exclusive", "BEGIN EXCLUSIVE"),
    Attack("begin-immediate", "BEGIN IMMEDIATE TRANSACTION"),
    Attack("commit", "COMMIT"),
    Attack("rollback", "ROLLBACK"),
    Attack("end", "END"),
    Attack("savepoint", "SAVEPOINT s"),
    Attack("release", "RELEASE s"),
    Attack("load-extension", "SELECT load_extension('{out}/evil.so')"),
    Attack("load-extension-quoted", "SELECT \"load_extension\"('{out}/evil.so')"),
    Attack("load-extension-upper", "SELECT LOAD_EXTENSION('{out}/evil')"),
    Attack("readfile", "SELECT readfile('{canary}')"),
    Attack("attach-canary", "ATTACH DATABASE '{canary}' AS c"),
    Attack("writefile", "SELECT writefile('{out}/pwned', 'x')"),
    Attack("edit", "SELECT edit('x', 'vi')"),
    Attack("fts3-tokenizer", "SELECT fts3_tokenizer('simple')"),
    Attack("zipfile", "SELECT * FROM zipfile('{out}/x.zip')"),
    Attack("sqlar", "SELECT sqlar_uncompress(x'00', 1)"),
    Attack("fsdir", "SELECT * FROM fsdir('/')"),
    Attack("dbpage", "SELECT * FROM sqlite_dbpage"),
    Attack("select-into", "SELECT * INTO copy FROM books"),
]

SQLITE_CONTROLS = [
    ("SELECT 'DROP TABLE x; --' AS s", None, [["DROP TABLE x; --"]]),
    ("SELECT updated_at FROM authors WHERE id = 1", None, [["2026-01-01"]]),
    ("SELECT 'a;b' AS s, length(';') AS n", None, [["a;b", 1]]),
    ("SELECT count(*) FROM books;", None, [[3]]),
    ("SELECT count(*) FROM books;  -- trailing comment", None, [[3]]),
    (
        "WITH cheap AS (SELECT title FROM books WHERE price < 11) "
        "SELECT title FROM cheap ORDER BY title",
        None,
        [["A Wizard of Earthsea"], ["Things Fall Apart"]],
    ),
    (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) "
        "SELECT sum(n) FROM r",
        None,
        [[15]],
    ),
    (
        "SELECT a.name, b.title FROM authors a JOIN books b ON b.author_id = a.id "
        "WHERE a.country = 'Japan'",
        None,
        [["Haruki Murakami", "Norwegian Wood"]],
    ),
    ("SELECT country, count(*) FROM authors GROUP BY country ORDER BY country", None, None),
    (
        "SELECT title FROM books WHERE price > ? ORDER BY price",
        [10],
        [["Things Fall Apart"], ["Norwegian Wood"]],
    ),
    (
        "SELECT name FROM authors WHERE country = :country",
        {"country": "Nigeria"},
        [["Chinua Achebe"]],
    ),
    ("SELECT title FROM book_titles WHERE name LIKE 'Ur%'", None, [["A Wizard of Earthsea"]]),
    ("VALUES (1, 'a'), (2, 'b')", None, [[1, "a"], [2, "b"]]),
    ("SELECT 1 UNION ALL SELECT 2", None, [[1], [2]]),
    ('SELECT "drop" FROM (SELECT 1 AS "drop")', None, [[1]]),
]

POSTGRES_ATTACKS = [
    Attack("drop", "DROP TABLE books"),
    Attack("delete", "DELETE FROM books"),
    Attack("insert", "INSERT INTO authors (name, country) VALUES ('x', 'y')"),
    Attack("update", "UPDATE books SET price = 0"),
    Attack("truncate", "TRUNCATE books"),
    Attack("merge", "MERGE INTO authors a USING books b ON false WHEN NOT MATCHED THEN DO NOTHING"),
    Attack(
        "upsert", "INSERT INTO authors (name, country) VALUES ('x', 'y') ON CONFLICT DO NOTHING"
    ),
    Attack("cte-delete", "WITH d AS (DELETE FROM books RETURNING *) SELECT * FROM d"),
    Attack(
        "cte-insert",
        "WITH i AS (INSERT INTO authors (name, country) VALUES ('x', 'y') RETURNING id) "
        "SELECT * FROM i",
    ),
    Attack(
        "cte-nested-update",
        "SELECT * FROM (WITH u AS (UPDATE books SET price = 0 RETURNING 1) SELECT * FROM u) s",
    ),
    Attack("returning", "DELETE FROM books RETURNING *"),
    Attack("create", "CREATE TABLE t (x int)"),
    Attack("create-temp", "CREATE TEMP TABLE t (x int)"),
    Attack("create-temp-as", "CREATE TEMP TABLE t AS SELECT 1"),
    Attack("select-into", "SELECT * INTO t2 FROM books"),
    Attack("select-into-temp", "SELECT * INTO TEMP t3 FROM books"),
    Attack("alter", "ALTER TABLE books ADD COLUMN x int"),
    Attack("grant", "GRANT ALL ON books TO PUBLIC"),
    Attack("commit-escape", "COMMIT; DROP TABLE books"),
    Attack("rollback-escape", "ROLLBACK; DELETE FROM books"),
    Attack("end-escape", "END; INSERT INTO authors (name, country) VALUES ('x', 'y')"),
    Attack("multi", "SELECT 1; DELETE FROM books"),
    Attack("multi-case", "sElEcT 1; dElEtE fRoM books"),
    Attack("comment-smuggle", "SELECT 1 /* */; DROP TABLE books"),
    Attack("comment-nested", "SELECT 1 /* /* */ ; DROP TABLE books; -- */ ; DROP TABLE books"),
    Attack("comment-prefix", "/* SELECT */ DELETE FROM books"),
    Attack("set-transaction-rw", "SET TRANSACTION READ WRITE"),
    Attack("set-session-rw", "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"),
    Attack("set-default-rw", "SET default_transaction_read_only = off"),
    Attack("begin", "BEGIN"),
    Attack("start-rw", "START TRANSACTION READ WRITE"),
    Attack("savepoint", "SAVEPOINT s"),
    Attack("explain-analyze-delete", "EXPLAIN ANALYZE DELETE FROM books"),
    Attack(
        "explain-analyze-insert",
        "EXPLAIN (ANALYZE) INSERT INTO authors (name, country) VALUES ('x', 'y')",
    ),
    Attack("do", "DO $$ BEGIN DELETE FROM books; END $$"),
    Attack("call", "CALL nothing()"),
    Attack("copy-to-file", "COPY books TO '{out}/books.csv'"),
    Attack("copy-to-program", "COPY (SELECT 1) TO PROGRAM 'touch {out}/pwned'"),
    Attack("copy-from", "COPY books FROM '/etc/passwd'"),
    Attack("copy-stdout", "COPY books TO STDOUT"),
    Attack("listen", "LISTEN channel"),
    Attack("notify", "NOTIFY channel, 'x'"),
    Attack("pg-notify", "SELECT pg_notify('channel', 'x')", engine_refuses=False),
    Attack("nextval", "SELECT nextval('counter')"),
    Attack("setval", "SELECT setval('counter', 100)"),
    Attack(
        "set-config",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        engine_refuses=False,
    ),
    Attack("pg-read-file", "SELECT pg_read_file('{canary}')"),
    Attack("pg-read-file-passwd", "SELECT pg_read_file('/etc/passwd')"),
    Attack("pg-read-binary-file", "SELECT pg_catalog.pg_read_binary_file('/etc/passwd')"),
    Attack("pg-ls-dir", "SELECT * FROM pg_ls_dir('.')"),
    Attack("pg-stat-file", "SELECT pg_stat_file('postgresql.conf')"),
    Attack("lo-import", "SELECT lo_import('/etc/passwd')"),
    # PostgreSQL allows these in a READ ONLY transaction; the rollback undoes them.
    Attack("lo-create", "SELECT lo_create(0)", engine_refuses=False),
    Attack("lo-export", "SELECT lo_export(1, '{out}/lo.bin')"),
    Attack("advisory-lock", "SELECT pg_advisory_lock(42)", engine_refuses=False),
    Attack("terminate-backend", "SELECT pg_terminate_backend(pg_backend_pid())"),
    Attack("reload-conf", "SELECT pg_reload_conf()"),
    Attack("txid-current", "SELECT txid_current()", engine_refuses=False),
    Attack("query-to-xml", "SELECT query_to_xml('DELETE FROM books RETURNING 1', true, true, '')"),
    Attack("dblink", "SELECT * FROM dblink('dbname=shop', 'DELETE FROM books') AS t(x text)"),
    Attack("for-update", "SELECT * FROM books FOR UPDATE"),
    Attack("for-share", "SELECT * FROM books FOR SHARE"),
    Attack("lock", "LOCK TABLE books"),
    Attack("vacuum", "VACUUM books"),
    Attack("analyze", "ANALYZE books"),
    Attack("reindex", "REINDEX TABLE books"),
    Attack("prepare", "PREPARE p AS DELETE FROM books"),
    Attack("discard", "DISCARD ALL"),
    Attack("refresh", "REFRESH MATERIALIZED VIEW book_titles"),
    Attack("security-label", "SECURITY LABEL ON TABLE books IS 'x'"),
    Attack("comment-on", "COMMENT ON TABLE books IS 'x'"),
    Attack("sleep", "SELECT pg_sleep(30)"),
]

POSTGRES_CONTROLS = [
    ("SELECT 'DROP TABLE x; --' AS s", None, [["DROP TABLE x; --"]]),
    (
        "SELECT name FROM authors WHERE updated_at < now() ORDER BY id LIMIT 1",
        None,
        [["Chinua Achebe"]],
    ),
    ("SELECT 'a;b' AS s", None, [["a;b"]]),
    ("SELECT count(*) FROM books;", None, [[3]]),
    ("SELECT $$ ; DROP TABLE books; $$ AS s", None, [[" ; DROP TABLE books; "]]),
    (
        "WITH cheap AS (SELECT title FROM books WHERE price < 11) "
        "SELECT title FROM cheap ORDER BY title",
        None,
        [["A Wizard of Earthsea"], ["Things Fall Apart"]],
    ),
    (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) "
        "SELECT sum(n) FROM r",
        None,
        [[15]],
    ),
    (
        "SELECT a.name, b.title FROM authors a JOIN books b ON b.author_id = a.id "
        "WHERE a.country = 'Japan'",
        None,
        [["Haruki Murakami", "Norwegian Wood"]],
    ),
    ("SELECT country, count(*) FROM authors GROUP BY country ORDER BY country", None, None),
    (
        "SELECT title FROM books WHERE price > $1 ORDER BY price",
        [10],
        [["Things Fall Apart"], ["Norwegian Wood"]],
    ),
    ("SELECT $1::text LIKE 'a%' AS m", ["abc"], [[True]]),
    ("SELECT last_value FROM counter", None, None),
    ("VALUES (1, 'a'), (2, 'b')", None, [[1, "a"], [2, "b"]]),
    ("TABLE authors", None, None),
    ("SELECT 1 UNION ALL SELECT 2", None, [[1], [2]]),
]


@dataclass(frozen=True)
class SideEffect:
    """A query that reaches for an effect outside its own rolled-back transaction.

    `{victim}` stands for the pid of a second session of the same role, listening on
    channel `witness`. Which layers must refuse it on their own: the guard (deny-list),
    the function policy (catalog), the engine (READ ONLY transaction, reset). Whatever
    lets it through, the second session must see no lock, kill or notification, except
    `engine_kills`: with guard and policy off, nothing in PostgreSQL stops a role from
    signalling its own sessions (docs/sql.md: give the server a role of its own).
    """

    id: str
    sql: str
    guard_refuses: bool = True
    policy_refuses: bool = True
    engine_refuses: bool = False
    engine_kills: bool = False

    def render(self, victim: int) -> str:
        return self.sql.replace("{victim}", str(victim))


def _via_ts_stat(inner: str) -> str:
    """`inner` run by ts_stat, which executes the SQL text it is given."""
    sql = f"SELECT 'a'::tsvector FROM (SELECT {inner}) s"
    return "SELECT * FROM ts_stat('" + sql.replace("'", "''") + "')"


def _via_ts_rewrite(inner: str) -> str:
    sql = f"SELECT 'a'::tsquery, 'b'::tsquery FROM (SELECT {inner}) s"
    return "SELECT ts_rewrite('a'::tsquery, '" + sql.replace("'", "''") + "')"


POSTGRES_SIDE_EFFECTS = [
    # Called directly, in every position and spelling.
    SideEffect("advisory-lock", "SELECT pg_advisory_lock(42)"),
    SideEffect("advisory-lock-shared", "SELECT pg_advisory_lock_shared(42)"),
    SideEffect("try-advisory-lock", "SELECT pg_try_advisory_lock(42)"),
    SideEffect("advisory-lock-cte", "WITH l AS (SELECT pg_advisory_lock(42)) SELECT * FROM l"),
    SideEffect("advisory-lock-from", "SELECT * FROM pg_advisory_lock(42)"),
    SideEffect(
        "advisory-lock-lateral",
        "SELECT * FROM books b, LATERAL (SELECT pg_advisory_lock(b.id)) l",
    ),
    SideEffect("advisory-lock-quoted", 'SELECT "pg_advisory_lock"(42)'),
    SideEffect("advisory-lock-qualified", "SELECT pg_catalog.PG_ADVISORY_LOCK(42)"),
    SideEffect(
        "advisory-lock-where", "SELECT title FROM books WHERE pg_try_advisory_lock(id) IS NOT NULL"
    ),
    SideEffect("terminate", "SELECT pg_terminate_backend({victim})", engine_kills=True),
    SideEffect("cancel", "SELECT pg_cancel_backend({victim})"),
    SideEffect("notify", "SELECT pg_notify('witness', 'direct')"),
    SideEffect("notify-subquery", "SELECT (SELECT pg_notify('witness', 'sub')) IS NULL"),
    SideEffect("set-config", "SELECT set_config('work_mem', '1MB', false)"),
    SideEffect("nextval", "SELECT nextval('counter')", engine_refuses=True),
    SideEffect("setval", "SELECT setval('counter', 100)", engine_refuses=True),
    SideEffect("lo-from-bytea", "SELECT lo_from_bytea(0, 'x'::bytea)"),
    SideEffect("txid-current", "SELECT txid_current()"),
    SideEffect("xact-id", "SELECT pg_current_xact_id()"),
    SideEffect("sleep", "SELECT pg_sleep(0.01)"),
    SideEffect("sleep-for", "SELECT pg_sleep_for('10 ms')"),
    SideEffect("export-snapshot", "SELECT pg_export_snapshot()"),
    # Smuggled as SQL text, the way issue 13 found them.
    SideEffect("ts-stat-lock", _via_ts_stat("pg_advisory_lock(43)")),
    SideEffect(
        "ts-stat-terminate", _via_ts_stat("pg_terminate_backend({victim})"), engine_kills=True
    ),
    SideEffect("ts-stat-notify", _via_ts_stat("pg_notify('witness', 'ts_stat')")),
    SideEffect("ts-stat-lo", _via_ts_stat("lo_from_bytea(0, 'x'::bytea)")),
    SideEffect("ts-stat-set-config", _via_ts_stat("set_config('work_mem', '2MB', false)")),
    SideEffect("ts-stat-txid", _via_ts_stat("txid_current()")),
    SideEffect("ts-stat-weights", "SELECT * FROM ts_stat('SELECT ''a''::tsvector', 'a')"),
    SideEffect("ts-stat-upper-qualified", "SELECT * FROM PG_CATALOG.TS_STAT('SELECT 1')"),
    SideEffect("ts-rewrite-lock", _via_ts_rewrite("pg_advisory_lock(44)")),
    SideEffect("ts-rewrite-cancel", _via_ts_rewrite("pg_cancel_backend({victim})")),
    SideEffect(
        "query-to-xml-lock",
        "SELECT query_to_xml('SELECT pg_advisory_lock(45)', true, false, '')",
    ),
    SideEffect(
        "query-to-xml-lateral",
        "SELECT x FROM books, LATERAL query_to_xml('SELECT pg_notify(''witness'', ''q'')', "
        "true, false, '') AS x",
    ),
    SideEffect(
        "query-to-xml-cte-quoted",
        "WITH x AS (SELECT \"query_to_xml\"('SELECT 1', true, false, '')) SELECT * FROM x",
    ),
    SideEffect("table-to-xml", "SELECT table_to_xml('books', true, false, '')"),
    SideEffect("schema-to-xml", "SELECT schema_to_xml('public', true, false, '')"),
    SideEffect("database-to-xml", "SELECT database_to_xml(true, false, '')"),
    SideEffect(
        "dblink",
        "SELECT * FROM dblink('dbname=shop', 'SELECT pg_advisory_lock(46)') AS t(x text)",
    ),
    SideEffect("dblink-exec", "SELECT dblink_exec('dbname=shop', 'SELECT 1')"),
    SideEffect(
        "crosstab",
        "SELECT * FROM crosstab('SELECT ''a''::text, ''b''::text, pg_advisory_lock(47)::text')"
        " AS t(r text, c text)",
    ),
    # Reached through what the query names without calling a function by name: the
    # fixture's operator, cast and function (tests/sql/pg_cluster.py) take an advisory
    # lock and notify; only the catalog knows they are volatile.
    SideEffect("user-function", "SELECT public.side_effect(1, 2)", guard_refuses=False),
    SideEffect("user-operator", "SELECT 1 ### 2", guard_refuses=False),
    SideEffect("user-operator-qualified", "SELECT 1 OPERATOR(public.###) 2", guard_refuses=False),
    SideEffect("user-cast", "SELECT (1::public.marker).x", guard_refuses=False),
    SideEffect("user-cast-function-form", "SELECT CAST(1 AS marker)", guard_refuses=False),
    SideEffect("user-aggregate", "SELECT public.lock_agg(id) FROM books", guard_refuses=False),
    SideEffect("user-domain-check", "SELECT 1::public.checked", guard_refuses=False),
]
