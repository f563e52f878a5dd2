"""MySQL/MariaDB attacks and controls, shared by the guard tests and the engine suites.

- `SCHEMA_SQL`: the tiny schema the controls run against (MariaDB 10.11 and MySQL 8).
- `ATTACKS`: (id, sql) pairs a read-only server must refuse or neutralise; the guard
  refuses every one of them on its own.
- `CONTROLS`: (id, sql, params) analytical reads that must pass the guard and run on
  MariaDB 10.11 against `SCHEMA_SQL` (so no MySQL-only syntax such as `->`); params are
  PyMySQL's: None, a tuple for `%s`, a dict for `%(name)s`.
"""

from __future__ import annotations

from typing import Any

SCHEMA_SQL = [
    "CREATE TABLE customers ("
    " id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, country CHAR(2) NOT NULL,"
    " created_at DATETIME NOT NULL)",
    "CREATE TABLE orders ("
    " id INT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(10, 2) NOT NULL,"
    " status VARCHAR(20) NOT NULL, ordered_at DATETIME NOT NULL,"
    " KEY orders_customer (customer_id),"
    " FOREIGN KEY (customer_id) REFERENCES customers (id))",
    "CREATE TABLE events ("
    " id INT PRIMARY KEY, customer_id INT, kind VARCHAR(20) NOT NULL,"
    " payload JSON, happened_at DATETIME NOT NULL)",
    "INSERT INTO customers VALUES"
    " (1, 'Ada', 'GB', '2024-01-05 10:00:00'), (2, 'Bo', 'SE', '2024-02-10 11:30:00'),"
    " (3, 'Chen', 'CN', '2024-03-01 09:15:00'), (4, 'Dana', 'US', '2024-03-20 16:45:00')",
    "INSERT INTO orders VALUES"
    " (1, 1, 120.00, 'paid', '2024-04-01 10:00:00'),"
    " (2, 1, 35.50, 'paid', '2024-04-03 12:00:00'),"
    " (3, 2, 80.00, 'refunded', '2024-04-05 08:30:00'),"
    " (4, 3, 250.00, 'paid', '2024-05-01 14:00:00'),"
    " (5, 3, 12.25, 'pending', '2024-05-02 15:00:00'),"
    " (6, 4, 99.99, 'paid', '2024-06-11 18:20:00')",
    "INSERT INTO events VALUES"
    ' (1, 1, \'login\', \'{"device": "ios", "tags": ["a", "b"], "ms": 120}\','
    " '2024-04-01 09:59:00'),"
    ' (2, 1, \'purchase\', \'{"device": "ios", "order": 1, "ms": 300}\','
    " '2024-04-01 10:00:00'),"
    ' (3, 2, \'login\', \'{"device": "web", "tags": [], "ms": 95}\','
    " '2024-04-05 08:00:00'),"
    " (4, NULL, 'signup', NULL, '2024-05-01 00:00:00')",
]

TABLES = ("events", "orders", "customers", "breach_log")  # in an order they can be dropped

# MariaDB-only objects the attacks aim at: a sequence, and a stored function and procedure
# that write (each breach leaves a row in breach_log). Load after SCHEMA_SQL.
MARIADB_SETUP_SQL = [
    "CREATE TABLE breach_log (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(50))",
    "CREATE SEQUENCE order_seq",
    "CREATE FUNCTION touch_log() RETURNS INT MODIFIES SQL DATA "
    "BEGIN INSERT INTO breach_log (what) VALUES ('function'); RETURN 1; END",
    "CREATE PROCEDURE touch_proc() MODIFIES SQL DATA "
    "INSERT INTO breach_log (what) VALUES ('procedure')",
    # A stored function named like a built-in: `sum (1)` (a space or a comment before the
    # parenthesis) calls it instead of the aggregate.
    "CREATE FUNCTION `sum` (x INT) RETURNS INT MODIFIES SQL DATA "
    "BEGIN INSERT INTO breach_log (what) VALUES ('sum'); RETURN 1; END",
]
MARIADB_TEARDOWN_SQL = [
    "DROP FUNCTION IF EXISTS `sum`",
    "DROP PROCEDURE IF EXISTS touch_proc",
    "DROP FUNCTION IF EXISTS touch_log",
    "DROP SEQUENCE IF EXISTS order_seq",
]


def _variants(name: str, call: str) -> list[tuple[str, str]]:
    """One call written every way the server still reads as that call, in every place
    a read can hold an expression: fix the class, not the example."""
    lower, upper = call.lower(), call.upper()
    opened = call.index("(")
    spaced = call[:opened] + " " + call[opened:]
    commented = call[:opened] + "/**/" + call[opened:]
    mixed = "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(call[:opened]))
    mixed += call[opened:]
    return [
        (f"{name}", f"SELECT {call}"),
        (f"{name}-lower", f"select {lower}"),
        (f"{name}-upper", f"SELECT {upper}"),
        (f"{name}-mixed-case", f"SELECT {mixed}"),
        (f"{name}-space-before-paren", f"SELECT {spaced}"),
        (f"{name}-comment-before-paren", f"SELECT {commented}"),
        (f"{name}-newlines", f"SELECT\n\t{call}\nFROM orders"),
        (f"{name}-where", f"SELECT id FROM orders WHERE id = 1 OR {call} = 0"),
        (f"{name}-subquery", f"SELECT * FROM (SELECT {call} AS x) AS s"),
        (f"{name}-cte", f"WITH c AS (SELECT {call} AS x) SELECT x FROM c"),
        (f"{name}-union", f"SELECT id FROM orders UNION ALL SELECT {call}"),
        (f"{name}-order-by", f"SELECT id FROM orders ORDER BY {call}"),
        (f"{name}-having", f"SELECT status FROM orders GROUP BY status HAVING {call} >= 0"),
        (f"{name}-join-on", f"SELECT 1 FROM orders o JOIN customers c ON {call} IS NULL"),
        (f"{name}-case", f"SELECT CASE WHEN id > 0 THEN {call} END FROM orders"),
        (f"{name}-nested", f"SELECT CONCAT('x', IFNULL({call}, 0))"),
        (f"{name}-window", f"SELECT SUM(id) OVER (ORDER BY {call}) FROM orders"),
        (f"{name}-values-row", f"VALUES ROW({call})"),
        (f"{name}-values-derived", f"SELECT * FROM (VALUES ({call})) AS v"),
        (f"{name}-exists", f"SELECT EXISTS (SELECT {call})"),
        (f"{name}-schema-qualified", f"SELECT shop.{call}"),
        (f"{name}-backticks", f"SELECT `{call[:opened]}`{call[opened:]}"),
        (f"{name}-trailing-semicolon", f"SELECT {call};"),
    ]


_SIDE_EFFECT_CALLS = [
    ("sleep", "SLEEP(2)"),
    ("benchmark", "BENCHMARK(50000000, MD5('x'))"),
    ("get-lock", "GET_LOCK('m17', 10)"),
    ("release-lock", "RELEASE_LOCK('m17')"),
    ("release-all-locks", "RELEASE_ALL_LOCKS()"),
    ("is-free-lock", "IS_FREE_LOCK('m17')"),
    ("is-used-lock", "IS_USED_LOCK('m17')"),
    ("master-pos-wait", "MASTER_POS_WAIT('log', 4, 1)"),
    ("master-gtid-wait", "MASTER_GTID_WAIT('0-1-1', 1)"),
    ("source-pos-wait", "SOURCE_POS_WAIT('log', 4, 1)"),
    ("wait-gtid-set", "WAIT_FOR_EXECUTED_GTID_SET('x', 1)"),
    ("load-file", "LOAD_FILE('/etc/passwd')"),
    ("load-file-hex", "LOAD_FILE(0x2f6574632f706173737764)"),
    ("nextval", "NEXTVAL(order_seq)"),
    ("setval", "SETVAL(order_seq, 100)"),
    ("lastval", "LASTVAL(order_seq)"),
    ("sys-exec", "SYS_EXEC('touch /tmp/m17-breach')"),
    ("sys-eval", "SYS_EVAL('id')"),
    ("stored-function", "touch_log()"),
    ("unknown-udf", "my_udf(1)"),
    ("values-function", "VALUES(amount)"),
    ("value-function", "VALUE(amount)"),
    ("last-insert-id-set", "LAST_INSERT_ID(42)"),
    ("mariadb-only-nvl", "NVL(NULL, touch_log())"),
]

ATTACKS: list[tuple[str, str]] = [
    # Executable comments: the server runs them, a parser drops them (DBHub's bypass).
    ("exec-comment", "SELECT 1 /*! , SLEEP(2) */"),
    ("exec-comment-stored-function", "SELECT 1 /*! , touch_log() */"),
    ("exec-comment-glued", "SELECT 1/*!,SLEEP(2)*/"),
    ("exec-comment-versioned", "SELECT 1 /*!50000 , SLEEP(2) */"),
    ("exec-comment-versioned-glued", "SELECT 1 /*!50000,SLEEP(2)*/"),
    ("exec-comment-mysql8", "SELECT 1 /*!80000 , SLEEP(2) */"),
    ("exec-comment-mariadb", "SELECT 1 /*M! , SLEEP(2) */"),
    ("exec-comment-mariadb-lower-m", "SELECT 1 /*m! , SLEEP(2) */"),
    ("exec-comment-mariadb-versioned", "SELECT 1 /*M!100000 , SLEEP(2) */"),
    ("exec-comment-mariadb-glued", "SELECT 1/*M!100100,SLEEP(2)*/"),
    ("exec-comment-delete", "SELECT 1 /*!; DELETE FROM orders */"),
    ("exec-comment-union", "SELECT id FROM orders /*!UNION SELECT SLEEP(2)*/"),
    ("exec-comment-into-outfile", "SELECT * FROM orders /*!INTO OUTFILE '/tmp/m17-out'*/"),
    ("exec-comment-first", "/*!DELETE FROM orders*/"),
    ("exec-comment-after-string", "SELECT '/*!' AS s /*!, SLEEP(2) */"),
    ("exec-comment-after-dq-string", 'SELECT "x" /*!, SLEEP(2) */'),
    ("exec-comment-after-ident", "SELECT `a/*!` /*!, SLEEP(2)*/ FROM (SELECT 1 AS `a/*!`) t"),
    ("exec-comment-after-line-comment", "SELECT 1 -- x\n/*!, SLEEP(2) */"),
    ("exec-comment-after-hash-comment", "SELECT 1 # x\n/*!, SLEEP(2) */"),
    ("exec-comment-multiline", "SELECT 1 /*!\n, SLEEP(2)\n*/"),
    ("exec-comment-nested", "SELECT 1 /* x /*! */, SLEEP(2)"),
    ("optimizer-hint-time", "SELECT /*+ MAX_EXECUTION_TIME(0) */ SLEEP(2)"),
    ("optimizer-hint-set-var", "SELECT /*+ SET_VAR(max_execution_time=0) */ id FROM orders"),
    # Quoting that splits differently under the server's SQL modes.
    ("backslash-quote-no-backslash-escapes", "SELECT 'a\\' /*! , SLEEP(2) */ '"),
    ("backslash-dq-ansi-quotes", 'SELECT "a\\" /*! , SLEEP(2) */ "'),
    ("hash-comment-bare-cr", "SELECT 1 # x\r, SLEEP(2)"),
    ("dash-comment-bare-cr", "SELECT 1 -- x\r, SLEEP(2)"),
    ("dash-dash-not-comment", "SELECT 1--1, SLEEP(2)"),
    ("dash-dash-tab-hides-nothing", "SELECT id --\tx\n, SLEEP(2) FROM orders"),
    # Characters two readers see differently.
    ("nul-byte", "SELECT 1\x00; DELETE FROM orders"),
    ("nbsp", "SELECT\u00a0SLEEP(2)"),
    ("unicode-line-separator", "SELECT 1\u2028, SLEEP(2)"),
    ("file-separator", "SELECT 1\x1c, SLEEP(2)"),
    ("odbc-escape", "SELECT {fn SLEEP(2)}"),
    ("odbc-escape-any-ident", "SELECT {x SLEEP(2)}"),
    # A built-in's name with a space or comment before `(` names a stored function.
    ("spaced-sum", "SELECT sum (1)"),
    ("spaced-sum-tab", "SELECT sum\t(1)"),
    ("spaced-sum-newline", "SELECT sum\n(1)"),
    ("commented-sum", "SELECT sum/**/(1)"),
    ("commented-sum-line", "SELECT sum -- x\n(1)"),
    ("commented-sum-hash", "SELECT sum # x\n(1)"),
    ("spaced-sum-upper", "SELECT SUM (id) FROM orders"),
    ("spaced-count", "SELECT count (1)"),
    ("spaced-max", "SELECT id FROM orders WHERE id = max (1)"),
    ("spaced-cast", "SELECT cast (1)"),
    ("spaced-trim", "SELECT trim ('x')"),
    ("spaced-now", "SELECT now ()"),
    ("spaced-rank", "SELECT rank ()"),
    ("spaced-group-concat", "SELECT group_concat (id) FROM orders"),
    ("spaced-substring", "SELECT substring ('abc', 1)"),
    # Names the servers do not reserve, called where a keyword would stand elsewhere.
    ("columns-call", "SELECT columns(1)"),
    ("lateral-call", "SELECT lateral(1)"),
    ("over-call", "SELECT over(1)"),
    ("against-call", "SELECT against(1)"),
    ("json-table-call", "SELECT json_table(1)"),
    ("any-call", "SELECT any(1)"),
    ("except-call", "SELECT except(1)"),
    ("nested-call", "SELECT nested(1)"),
    ("path-call", "SELECT path(1)"),
    ("current-call", "SELECT current(1)"),
    ("datetime-call", "SELECT datetime(1)"),
    ("quoted-builtin-name", "SELECT `sum`(1)"),
    # Files and variables.
    ("into-outfile", "SELECT * FROM orders INTO OUTFILE '/tmp/m17-out.txt'"),
    ("into-outfile-lower", "select * from orders into outfile '/tmp/m17-out2.txt'"),
    ("into-outfile-union", "SELECT 1 UNION SELECT 2 INTO OUTFILE '/tmp/m17-out3.txt'"),
    ("into-outfile-before-from", "SELECT id INTO OUTFILE '/tmp/m17-out4.txt' FROM orders"),
    ("into-dumpfile", "SELECT 'x' INTO DUMPFILE '/tmp/m17-dump.bin'"),
    ("into-var", "SELECT amount INTO @a FROM orders LIMIT 1"),
    ("into-vars", "SELECT id, amount FROM orders LIMIT 1 INTO @a, @b"),
    ("into-local-var", "SELECT id FROM orders LIMIT 1 INTO v"),
    ("table-into", "TABLE orders INTO OUTFILE '/tmp/m17-out5.txt'"),
    ("assign-var", "SELECT @a := amount FROM orders"),
    ("assign-var-glued", "SELECT @a:=1"),
    ("assign-var-where", "SELECT id FROM orders WHERE (@a := id) > 0"),
    ("assign-session-var", "SELECT @@session.max_statement_time := 0"),
    ("set-user-var", "SET @a = 1"),
    ("set-session", "SET SESSION max_statement_time = 0"),
    ("set-global", "SET GLOBAL max_connections = 1"),
    ("set-names", "SET NAMES latin1"),
    ("set-statement", "SET STATEMENT max_statement_time=0 FOR SELECT SLEEP(2)"),
    ("set-transaction", "SET TRANSACTION READ WRITE"),
    ("set-password", "SET PASSWORD = PASSWORD('x')"),
    ("set-lower-comment", "/* read */ set @a = 1"),
    # Locks.
    ("for-update", "SELECT * FROM orders FOR UPDATE"),
    ("for-update-lower", "select * from orders for update"),
    ("for-update-nowait", "SELECT * FROM orders FOR UPDATE NOWAIT"),
    ("for-update-skip-locked", "SELECT * FROM orders FOR UPDATE SKIP LOCKED"),
    ("for-update-wait", "SELECT * FROM orders FOR UPDATE WAIT 5"),
    ("for-share", "SELECT * FROM orders FOR SHARE"),
    ("lock-in-share-mode", "SELECT * FROM orders LOCK IN SHARE MODE"),
    ("for-update-subquery", "SELECT * FROM (SELECT * FROM orders FOR UPDATE) t"),
    ("for-update-union-part", "(SELECT 1) UNION (SELECT id FROM orders FOR UPDATE)"),
    ("lock-tables", "LOCK TABLES orders READ"),
    ("lock-tables-write", "LOCK TABLE orders WRITE"),
    ("unlock-tables", "UNLOCK TABLES"),
    ("handler", "HANDLER orders OPEN"),
    ("handler-read", "HANDLER orders READ FIRST"),
    ("flush-tables-read-lock", "FLUSH TABLES WITH READ LOCK"),
    # Sequences (MariaDB): NEXT VALUE advances one.
    ("next-value-for", "SELECT NEXT VALUE FOR order_seq"),
    ("next-value-for-lower", "select next value for order_seq"),
    ("previous-value-for", "SELECT PREVIOUS VALUE FOR order_seq"),
    ("seq-dot-nextval", "SELECT order_seq.nextval"),
    # Session values.
    ("sql-calc-found-rows", "SELECT SQL_CALC_FOUND_ROWS * FROM orders LIMIT 1"),
    ("procedure-analyse", "SELECT * FROM orders PROCEDURE ANALYSE()"),
    # Statements that are not reads.
    ("insert", "INSERT INTO orders VALUES (99, 1, 1, 'x', NOW())"),
    ("insert-select", "INSERT INTO breach_log (what) SELECT name FROM customers"),
    (
        "insert-on-duplicate",
        "INSERT INTO breach_log VALUES (1, 'x') ON DUPLICATE KEY UPDATE what = 'y'",
    ),
    ("insert-returning", "INSERT INTO breach_log (what) VALUES ('x') RETURNING id"),
    ("insert-set", "INSERT breach_log SET what = 'x'"),
    ("replace", "REPLACE INTO breach_log VALUES (1, 'x')"),
    ("update", "UPDATE orders SET amount = 0"),
    (
        "update-multi-table",
        "UPDATE orders o JOIN customers c ON c.id = o.customer_id SET o.amount = 0",
    ),
    ("delete", "DELETE FROM orders"),
    ("delete-lower-comment", "/* cleanup */ delete from orders"),
    ("delete-paren", "(DELETE FROM orders)"),
    ("delete-multi-table", "DELETE o FROM orders o JOIN customers c ON c.id = o.customer_id"),
    ("delete-returning", "DELETE FROM breach_log RETURNING id"),
    ("cte-update", "WITH x AS (SELECT 1) UPDATE orders SET amount = 0"),
    (
        "cte-delete",
        "WITH x AS (SELECT id FROM orders) DELETE FROM orders WHERE id IN (SELECT id FROM x)",
    ),
    ("cte-recursive-delete", "WITH RECURSIVE x AS (SELECT 1 AS n) DELETE FROM orders"),
    ("cte-insert", "WITH x AS (SELECT 1) INSERT INTO breach_log (what) SELECT 'x' FROM x"),
    ("subquery-delete", "SELECT * FROM (DELETE FROM breach_log RETURNING id) t"),
    ("truncate", "TRUNCATE TABLE orders"),
    ("truncate-bare", "TRUNCATE orders"),
    ("create-table", "CREATE TABLE t (x INT)"),
    ("create-temporary", "CREATE TEMPORARY TABLE t (x INT)"),
    ("create-table-select", "CREATE TABLE t AS SELECT * FROM orders"),
    ("create-view", "CREATE VIEW v AS SELECT 1"),
    ("create-or-replace-view", "CREATE OR REPLACE VIEW v AS SELECT 1"),
    ("create-function", "CREATE FUNCTION f() RETURNS INT RETURN 1"),
    ("create-procedure", "CREATE PROCEDURE p() SELECT 1"),
    ("create-trigger", "CREATE TRIGGER tr BEFORE INSERT ON orders FOR EACH ROW SET NEW.amount = 0"),
    ("create-event", "CREATE EVENT e ON SCHEDULE EVERY 1 SECOND DO DELETE FROM orders"),
    ("create-user", "CREATE USER m17 IDENTIFIED BY 'x'"),
    ("create-database", "CREATE DATABASE m17"),
    ("create-sequence", "CREATE SEQUENCE s2"),
    ("create-index", "CREATE INDEX i ON orders (amount)"),
    ("drop-table", "DROP TABLE orders"),
    ("drop-lower", "drop table orders"),
    ("drop-database", "DROP DATABASE shop"),
    ("alter-table", "ALTER TABLE orders ADD COLUMN x INT"),
    ("alter-user", "ALTER USER CURRENT_USER() IDENTIFIED BY 'x'"),
    ("rename-table", "RENAME TABLE orders TO o2"),
    ("grant", "GRANT ALL ON *.* TO CURRENT_USER()"),
    ("revoke", "REVOKE SELECT ON shop.* FROM CURRENT_USER()"),
    ("do", "DO SLEEP(2)"),
    ("do-get-lock-lower", "do get_lock('m17', 1)"),
    ("call", "CALL touch_proc()"),
    ("call-bare", "CALL touch_proc"),
    ("prepare", "PREPARE s FROM 'DELETE FROM orders'"),
    ("execute", "EXECUTE s"),
    ("execute-immediate", "EXECUTE IMMEDIATE 'DELETE FROM orders'"),
    ("deallocate", "DEALLOCATE PREPARE s"),
    ("begin", "BEGIN"),
    ("start-transaction", "START TRANSACTION"),
    ("start-transaction-read-write", "START TRANSACTION READ WRITE"),
    ("commit", "COMMIT"),
    ("rollback", "ROLLBACK"),
    ("savepoint", "SAVEPOINT s"),
    ("release-savepoint", "RELEASE SAVEPOINT s"),
    ("xa-start", "XA START 'x'"),
    ("kill", "KILL 1"),
    ("kill-query", "KILL QUERY 1"),
    ("shutdown", "SHUTDOWN"),
    ("flush", "FLUSH TABLES"),
    ("flush-privileges", "FLUSH PRIVILEGES"),
    ("reset", "RESET QUERY CACHE"),
    ("purge", "PURGE BINARY LOGS BEFORE NOW()"),
    ("install-plugin", "INSTALL PLUGIN x SONAME 'x.so'"),
    ("install-soname", "INSTALL SONAME 'ha_blackhole'"),
    ("uninstall-plugin", "UNINSTALL PLUGIN x"),
    ("load-data", "LOAD DATA INFILE '/etc/passwd' INTO TABLE breach_log"),
    ("load-data-local", "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE breach_log"),
    ("load-xml", "LOAD XML INFILE '/etc/passwd' INTO TABLE breach_log"),
    ("analyze-table", "ANALYZE TABLE orders"),
    ("analyze-select", "ANALYZE SELECT * FROM orders"),
    ("optimize-table", "OPTIMIZE TABLE orders"),
    ("check-table", "CHECK TABLE orders"),
    ("repair-table", "REPAIR TABLE orders"),
    ("checksum-table", "CHECKSUM TABLE orders"),
    ("cache-index", "CACHE INDEX orders IN default"),
    ("use", "USE mysql"),
    ("binlog", "BINLOG 'AAAA'"),
    ("change-master", "CHANGE MASTER TO MASTER_HOST='x'"),
    ("signal", "SIGNAL SQLSTATE '45000'"),
    ("show-processlist", "SHOW PROCESSLIST"),
    ("show-grants", "SHOW GRANTS"),
    ("show-variables", "SHOW VARIABLES"),
    ("describe", "DESCRIBE orders"),
    ("desc", "DESC orders"),
    ("explain", "EXPLAIN SELECT * FROM orders"),
    ("explain-analyze-delete", "EXPLAIN ANALYZE DELETE FROM orders"),
    ("explain-delete", "EXPLAIN DELETE FROM orders"),
    ("help", "HELP 'select'"),
    # More than one statement.
    ("multi", "SELECT 1; DELETE FROM orders"),
    ("multi-glued", "SELECT 1;DELETE FROM orders"),
    ("multi-newline", "SELECT 1\n;\nDELETE FROM orders"),
    ("multi-string-semicolon", "SELECT ';'; DELETE FROM orders"),
    ("multi-after-comment", "SELECT 1 /* ; */; DELETE FROM orders"),
    ("multi-reads", "SELECT 1; SELECT 2"),
    # System schemas: credentials and other sessions' statements.
    ("mysql-user", "SELECT user, authentication_string FROM mysql.user"),
    ("mysql-global-priv", "SELECT * FROM mysql.global_priv"),
    ("mysql-user-backticks", "SELECT * FROM `mysql`.`user`"),
    ("mysql-user-upper", "SELECT * FROM MYSQL.USER"),
    ("mysql-user-spaced", "SELECT * FROM mysql . user"),
    ("mysql-user-subquery", "SELECT (SELECT COUNT(*) FROM mysql.user) AS n"),
    ("performance-schema", "SELECT sql_text FROM performance_schema.events_statements_history"),
    ("sys-schema", "SELECT * FROM sys.session"),
]
for _name, _call in _SIDE_EFFECT_CALLS:
    ATTACKS.extend(_variants(_name, _call))


def _statement_variants(attack_id: str, sql: str) -> list[tuple[str, str]]:
    """A statement behind comments, white space and case: still refused by its words."""
    return [
        (f"{attack_id}-lower", sql.lower()),
        (f"{attack_id}-block-comment-first", f"/* read only */ {sql}"),
        (f"{attack_id}-line-comment-first", f"-- a read\n{sql}"),
        (f"{attack_id}-hash-comment-first", f"# a read\n{sql}"),
        (f"{attack_id}-leading-space", f" \n\t{sql};"),
    ]


_STATEMENTS_START = next(i for i, (a, _) in enumerate(ATTACKS) if a == "insert")
_STATEMENTS_END = next(i for i, (a, _) in enumerate(ATTACKS) if a == "multi")
for _id, _sql in list(ATTACKS[_STATEMENTS_START:_STATEMENTS_END]):
    ATTACKS.extend(_statement_variants(_id, _sql))

CONTROLS: list[tuple[str, str, Any]] = [
    ("select", "SELECT id, name FROM customers ORDER BY id", None),
    ("select-star-limit-offset", "SELECT * FROM orders ORDER BY id LIMIT 2 OFFSET 1", None),
    ("limit-comma", "SELECT * FROM orders ORDER BY id LIMIT 1, 2", None),
    (
        "join-aggregate",
        "SELECT c.country, COUNT(*) AS n, SUM(o.amount) AS total FROM orders o "
        "JOIN customers c ON c.id = o.customer_id GROUP BY c.country ORDER BY total DESC",
        None,
    ),
    (
        "left-join-using",
        "SELECT c.name, COUNT(o.id) AS orders FROM customers c LEFT JOIN orders o "
        "ON o.customer_id = c.id GROUP BY c.name HAVING COUNT(o.id) >= 0",
        None,
    ),
    (
        "window-rank",
        "SELECT customer_id, amount, RANK() OVER (PARTITION BY customer_id "
        "ORDER BY amount DESC) AS r FROM orders",
        None,
    ),
    (
        "window-running-total",
        "SELECT id, amount, SUM(amount) OVER (ORDER BY ordered_at ROWS BETWEEN "
        "UNBOUNDED PRECEDING AND CURRENT ROW) AS running FROM orders",
        None,
    ),
    (
        "window-named",
        "SELECT id, LAG(amount, 1) OVER w AS prev, LEAD(amount) OVER w AS next, "
        "ROW_NUMBER() OVER w AS n, NTILE(2) OVER w AS half, "
        "FIRST_VALUE(amount) OVER w AS first, CUME_DIST() OVER w AS cd "
        "FROM orders WINDOW w AS (ORDER BY id)",
        None,
    ),
    (
        "cte",
        "WITH paid AS (SELECT customer_id, amount FROM orders WHERE status = 'paid') "
        "SELECT customer_id, SUM(amount) AS total FROM paid GROUP BY customer_id",
        None,
    ),
    (
        "cte-recursive",
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) "
        "SELECT SUM(i) FROM n",
        None,
    ),
    (
        "cte-recursive-dates",
        "WITH RECURSIVE days AS (SELECT DATE('2024-04-01') AS d UNION ALL "
        "SELECT d + INTERVAL 1 DAY FROM days WHERE d < '2024-04-07') "
        "SELECT days.d, COUNT(o.id) FROM days LEFT JOIN orders o ON DATE(o.ordered_at) = days.d "
        "GROUP BY days.d ORDER BY days.d",
        None,
    ),
    ("rollup", "SELECT status, SUM(amount) FROM orders GROUP BY status WITH ROLLUP", None),
    (
        "rollup-two-levels",
        "SELECT YEAR(ordered_at) AS y, MONTH(ordered_at) AS m, SUM(amount) FROM orders "
        "GROUP BY YEAR(ordered_at), MONTH(ordered_at) WITH ROLLUP",
        None,
    ),
    (
        "case",
        "SELECT id, CASE WHEN amount >= 100 THEN 'large' WHEN amount >= 50 THEN 'medium' "
        "ELSE 'small' END AS size FROM orders",
        None,
    ),
    (
        "subquery-in",
        "SELECT name FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE amount > 50)",
        None,
    ),
    (
        "subquery-exists-correlated",
        "SELECT c.name FROM customers c WHERE EXISTS "
        "(SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.status = 'refunded')",
        None,
    ),
    (
        "subquery-scalar",
        "SELECT name, (SELECT MAX(amount) FROM orders o WHERE o.customer_id = c.id) AS top "
        "FROM customers c",
        None,
    ),
    (
        "derived-table",
        "SELECT AVG(t.total) FROM (SELECT SUM(amount) AS total FROM orders "
        "GROUP BY customer_id) AS t",
        None,
    ),
    (
        "union",
        "SELECT name FROM customers WHERE country = 'GB' UNION "
        "SELECT name FROM customers WHERE country = 'SE'",
        None,
    ),
    (
        "union-all-ordered",
        "(SELECT id FROM orders) UNION ALL (SELECT id FROM customers) ORDER BY id LIMIT 5",
        None,
    ),
    ("except", "SELECT id FROM customers EXCEPT SELECT customer_id FROM orders", None),
    ("intersect", "SELECT id FROM customers INTERSECT SELECT customer_id FROM orders", None),
    (
        "json-extract",
        "SELECT id, JSON_EXTRACT(payload, '$.device') AS device, "
        "JSON_UNQUOTE(JSON_EXTRACT(payload, '$.device')) AS device_text, "
        "JSON_LENGTH(payload, '$.tags') AS tags FROM events WHERE payload IS NOT NULL",
        None,
    ),
    (
        "json-value-contains",
        "SELECT id, JSON_VALUE(payload, '$.ms') AS ms FROM events "
        "WHERE JSON_CONTAINS(payload, '\"ios\"', '$.device')",
        None,
    ),
    (
        "json-table",
        "SELECT e.id, jt.tag FROM events e, JSON_TABLE(e.payload, '$.tags[*]' "
        "COLUMNS (tag VARCHAR(10) PATH '$')) AS jt",
        None,
    ),
    (
        "json-table-ordinality-nested",
        "SELECT jt.* FROM JSON_TABLE('[{\"a\": 1, \"b\": [1, 2]}]', '$[*]' COLUMNS ("
        "n FOR ORDINALITY, a INT PATH '$.a', NESTED PATH '$.b[*]' COLUMNS (b INT PATH '$'))"
        ") AS jt",
        None,
    ),
    (
        "json-build",
        "SELECT JSON_OBJECT('id', id, 'amount', amount) AS doc, JSON_ARRAY(id, status) FROM orders",
        None,
    ),
    ("json-agg", "SELECT customer_id, JSON_ARRAYAGG(id) FROM orders GROUP BY customer_id", None),
    (
        "json-modify-values",
        "SELECT JSON_SET(payload, '$.seen', 1), JSON_REMOVE(payload, '$.ms'), "
        "JSON_KEYS(payload) FROM events WHERE payload IS NOT NULL",
        None,
    ),
    (
        "dates",
        "SELECT DATE_FORMAT(ordered_at, '%Y-%m'), DATEDIFF(NOW(), ordered_at), "
        "TIMESTAMPDIFF(HOUR, ordered_at, NOW()), DATE_ADD(ordered_at, INTERVAL 1 MONTH), "
        "LAST_DAY(ordered_at), DAYNAME(ordered_at), WEEK(ordered_at), QUARTER(ordered_at), "
        "EXTRACT(YEAR FROM ordered_at), UNIX_TIMESTAMP(ordered_at) FROM orders",
        None,
    ),
    (
        "date-format-seconds",
        "SELECT DATE_FORMAT(ordered_at, '%H:%i:%s') FROM orders WHERE ordered_at >= "
        "CURDATE() - INTERVAL 5 YEAR",
        None,
    ),
    (
        "strings",
        "SELECT CONCAT(name, ' (', country, ')'), UPPER(name), LENGTH(name), "
        "SUBSTRING(name, 1, 2), SUBSTRING(name FROM 2 FOR 1), TRIM(LEADING 'A' FROM name), "
        "REPLACE(name, 'a', 'o'), LPAD(id, 4, '0'), LOCATE('a', name), "
        "REGEXP_REPLACE(name, '[aeiou]', '') FROM customers",
        None,
    ),
    (
        "group-concat",
        "SELECT country, GROUP_CONCAT(DISTINCT name ORDER BY name SEPARATOR ', ') "
        "FROM customers GROUP BY country",
        None,
    ),
    (
        "math-and-casts",
        "SELECT ROUND(AVG(amount), 2), FLOOR(SUM(amount)), CAST(SUM(amount) AS SIGNED), "
        "CAST(MAX(amount) AS DECIMAL(12, 1)), CONVERT(MIN(amount), CHAR), "
        "STDDEV_POP(amount), 10 DIV 3, 10 MOD 3, 10 % 3 FROM orders",
        None,
    ),
    (
        "null-handling",
        "SELECT id, IFNULL(customer_id, 0), COALESCE(payload, '{}'), NULLIF(kind, 'login'), "
        "IF(customer_id IS NULL, 'anon', 'known'), customer_id <=> NULL FROM events",
        None,
    ),
    ("like-percent", "SELECT name FROM customers WHERE name LIKE '%a%'", None),
    ("like-escape", "SELECT name FROM customers WHERE name LIKE 'A|_%' ESCAPE '|'", None),
    ("backslash-in-string", "SELECT 'C:\\\\temp' AS path, 'it''s' AS quote", None),
    ("regexp", "SELECT name FROM customers WHERE name REGEXP '^[A-C]'", None),
    (
        "between-in",
        "SELECT id FROM orders WHERE amount BETWEEN 10 AND 100 AND status IN ('paid', 'pending')",
        None,
    ),
    (
        "strings-with-markers",
        "SELECT '/*! not a comment */', '-- nor this', '# nor this', "
        "';', '%s', \"double\", `id` FROM orders LIMIT 1",
        None,
    ),
    (
        "comments",
        "-- the best customers\nSELECT /* columns */ id, name # trailing\nFROM customers",
        None,
    ),
    ("trailing-semicolon", "SELECT COUNT(*) FROM orders;", None),
    ("dual", "SELECT 1 + 1 FROM DUAL", None),
    (
        "information-schema",
        "SELECT table_name, table_rows FROM information_schema.tables "
        "WHERE table_schema = DATABASE()",
        None,
    ),
    (
        "session-reads",
        "SELECT DATABASE(), CURRENT_USER(), VERSION(), CONNECTION_ID(), "
        "@@version, @@global.max_connections, @undefined_var, FOUND_ROWS(), LAST_INSERT_ID()",
        None,
    ),
    ("uuid-rand", "SELECT UUID(), UUID_SHORT(), RAND(), MD5('x'), SHA2('x', 256)", None),
    ("values-derived", "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v", None),
    ("params-positional", "SELECT * FROM orders WHERE amount > %s AND status = %s", (50, "paid")),
    (
        "params-named",
        "SELECT * FROM orders WHERE status = %(status)s AND amount > %(min)s",
        {"status": "paid", "min": 10},
    ),
    ("params-limit", "SELECT id FROM orders ORDER BY id LIMIT %s", (2,)),
    (
        "params-interval",
        "SELECT id FROM orders WHERE ordered_at > DATE_SUB('2024-06-01', INTERVAL %s DAY)",
        (60,),
    ),
    (
        "params-with-percent-literals",
        "SELECT DATE_FORMAT(ordered_at, '%Y-%m-%d %H:%i:%s') FROM orders WHERE status LIKE %s",
        ("p%",),
    ),
    ("params-in-list", "SELECT id FROM orders WHERE id IN (%s, %s, %s)", (1, 2, 3)),
    ("params-modulo", "SELECT id % 2 AS parity FROM orders WHERE id > %s", (0,)),
]


# Fragments for a differential check against a real server: texts that hide SLEEP in
# comments, strings and identifiers, with every quoting and comment marker around it.
DIFFERENTIAL_FRAGMENTS = (
    "'", '"', "`", "\\", "/*", "*/", "/*!", "/*M!", "--", "-- ", "#", "\n", "\r", " ",
    "a", "1", ",", " SLEEP(0.3) ", ";", "*", "/", "+", "(", ")", "''", '""', "\\'", "x",
    "-", "!", "\t",
)  # fmt: skip


def differential_texts(seed: int, count: int) -> list[str]:
    """`count` random texts `SELECT 1 <fragments>` that each contain `SLEEP(0.3)`.

    Run every one the guard accepts on the server (in each sql_mode: '',
    NO_BACKSLASH_ESCAPES, ANSI_QUOTES, both) and time it: a call that sleeps means the
    guard and the server split the text differently. 150,000 draws gave ~1,800 accepted
    texts and no sleep on MariaDB 10.11 (run by hand for issue 17)."""
    import random

    rng = random.Random(seed)
    texts: list[str] = []
    while len(texts) < count:
        body = "".join(rng.choice(DIFFERENTIAL_FRAGMENTS) for _ in range(rng.randint(1, 9)))
        if "SLEEP" in body:
            texts.append("SELECT 1 " + body)
    return texts
