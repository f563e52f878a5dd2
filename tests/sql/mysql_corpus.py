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

TABLES = ("events", "orders", "customers")  # in an order they can be dropped

ATTACKS: list[tuple[str, str]] = [
    # Executable comments: the server runs them, a parser drops them (DBHub's bypass).
    ("exec-comment", "SELECT /*! SLEEP(2) */ 1"),
    ("exec-comment-versioned", "SELECT /*!50000 SLEEP(2) */ 1"),
    ("exec-comment-mariadb", "SELECT /*M! SLEEP(2) */ 1"),
    ("exec-comment-mariadb-versioned", "SELECT /*M!100000 SLEEP(2) */ 1"),
    ("exec-comment-delete", "SELECT 1 /*!; DELETE FROM orders */"),
    ("exec-comment-union", "SELECT id FROM orders /*!UNION SELECT SLEEP(2)*/"),
    ("optimizer-hint-time", "SELECT /*+ MAX_EXECUTION_TIME(0) */ SLEEP(2)"),
    # Functions with side effects.
    ("sleep", "SELECT SLEEP(2)"),
    ("benchmark", "SELECT BENCHMARK(100000000, MD5('x'))"),
    ("get-lock", "SELECT GET_LOCK('m17', 10)"),
    ("load-file", "SELECT LOAD_FILE('/etc/passwd')"),
    # Files and variables.
    ("into-outfile", "SELECT * FROM orders INTO OUTFILE '/tmp/m17-out.txt'"),
    ("into-var", "SELECT amount INTO @a FROM orders LIMIT 1"),
    ("assign-var", "SELECT @a := amount FROM orders"),
    # Statements.
    ("delete", "DELETE FROM orders"),
    ("cte-update", "WITH x AS (SELECT 1) UPDATE orders SET amount = 0"),
    ("set", "SET @a = 1"),
    ("lock-tables", "LOCK TABLES orders READ"),
    ("handler", "HANDLER orders OPEN"),
    ("do", "DO SLEEP(2)"),
    ("call", "CALL p()"),
    ("for-update", "SELECT * FROM orders FOR UPDATE"),
    ("multi", "SELECT 1; DELETE FROM orders"),
]

CONTROLS: list[tuple[str, str, Any]] = [
    ("select", "SELECT id, name FROM customers ORDER BY id", None),
    (
        "join-aggregate",
        "SELECT c.country, COUNT(*) AS n, SUM(o.amount) AS total FROM orders o "
        "JOIN customers c ON c.id = o.customer_id GROUP BY c.country ORDER BY total DESC",
        None,
    ),
    (
        "window",
        "SELECT customer_id, amount, RANK() OVER (PARTITION BY customer_id "
        "ORDER BY amount DESC) AS r FROM orders",
        None,
    ),
    ("rollup", "SELECT status, SUM(amount) FROM orders GROUP BY status WITH ROLLUP", None),
    ("params-positional", "SELECT * FROM orders WHERE amount > %s AND status = %s", (50, "paid")),
    ("params-named", "SELECT * FROM orders WHERE status = %(status)s", {"status": "paid"}),
    ("percent-in-string", "SELECT name FROM customers WHERE name LIKE '%a%'", None),
]
