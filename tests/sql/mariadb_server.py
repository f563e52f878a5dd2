"""A throwaway MariaDB server for the tests: install a data folder, start, accounts, stop.

`mariadb-install-db` then `mariadbd`, both with `--no-defaults` (no /etc/mysql config is
read), in a temporary folder, listening on a free loopback port and a private socket,
binary log off. As root (CI), the server runs as the `mysql` user (`--user=mysql`) in a
folder that user owns; otherwise as the current user. Missing binaries are an error,
never a skip: CI must prove the MariaDB suite ran.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from tests.sql.mysql_corpus import MARIADB_SETUP_SQL, SCHEMA_SQL

MARIADBD = Path(
    os.environ.get("MCP_FILESERVER_TEST_MARIADBD")
    or ("/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None)
    or shutil.which("mariadbd")  # Homebrew, other prefixes
    or "/usr/sbin/mariadbd"
)
INSTALL_DB = Path(shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db")
DBNAME = "shop"
# Accounts: name -> what it is for.
READER = "reader"  # SELECT on shop.* only: the least-privilege recipe of docs/sql.md
WRITER = "writer"  # ALL on shop.*, FILE and PROCESS: refused unless allowed
ROLED = "roled"  # SELECT only through its default role: accepted
SNEAKY = "sneaky"  # SELECT, plus a non-default role holding FILE: refused
# SELECT only, authenticated by ed25519: libmariadb loads client_ed25519.so from its plugin
# folder at connect (the frozen build ships that folder; the sandbox must allow it).
ED25519 = "edreader"
ACCOUNTS = (READER, WRITER, ROLED, SNEAKY, ED25519)


@dataclass
class MariaDB:
    root: Path
    port: int
    socket_path: Path
    out_dir: Path  # secure_file_priv: the only folder INTO OUTFILE could write
    passwords: dict[str, str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def url(self, account: str = READER, password_var: str = "MARIADB_TEST_PASSWORD") -> str:
        return f"mariadb://{account}:${{{password_var}}}@127.0.0.1:{self.port}/{DBNAME}"

    def admin(self, database: str | None = DBNAME) -> pymysql.connections.Connection:
        return pymysql.connect(
            unix_socket=str(self.socket_path),
            user="root",
            password="",
            database=database,
            autocommit=True,
            charset="utf8mb4",
        )

    def connect(self, account: str) -> pymysql.connections.Connection:
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user=account,
            password=self.passwords[account],
            database=DBNAME,
            autocommit=True,
            charset="utf8mb4",
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_root() -> bool:
    return os.geteuid() == 0


def start_server() -> MariaDB:
    if not MARIADBD.exists() or not INSTALL_DB.exists():
        raise RuntimeError(
            f"MariaDB server binaries not found ({MARIADBD}, {INSTALL_DB}): run `make system` "
            "(apt-get install mariadb-server); the MariaDB tests must run, not skip"
        )
    root = Path(tempfile.mkdtemp(prefix="mcpfs-mariadb-"))
    data, run, out = root / "data", root / "run", root / "out"
    run.mkdir()
    out.mkdir()
    user_args: list[str] = []
    if _as_root():
        mysql = pwd.getpwnam("mysql")
        for path in (root, run, out):
            os.chown(path, mysql.pw_uid, mysql.pw_gid)
        user_args = ["--user=mysql"]
    install = subprocess.run(
        [
            str(INSTALL_DB),
            "--no-defaults",
            "--auth-root-authentication-method=normal",
            f"--datadir={data}",
            "--skip-test-db",
            "--skip-name-resolve",
            *user_args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if install.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"mariadb-install-db failed: {install.stderr[-2000:]}")
    port = _free_port()
    server = MariaDB(
        root=root,
        port=port,
        socket_path=run / "sock",
        out_dir=out,
        passwords={name: secrets.token_urlsafe(18) for name in ACCOUNTS},
    )
    server.process = subprocess.Popen(
        [
            str(MARIADBD),
            "--no-defaults",
            *user_args,
            f"--datadir={data}",
            f"--socket={server.socket_path}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--skip-log-bin",
            "--skip-name-resolve",
            f"--pid-file={run / 'pid'}",
            f"--log-error={run / 'error.log'}",
            f"--secure-file-priv={out}",
            "--innodb-buffer-pool-size=32M",
            "--innodb-flush-log-at-trx-commit=0",
            "--max-connections=400",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(server)
        with server.admin(database=None) as conn:
            _load_fixture(conn, server)
    except BaseException:
        stop_server(server)
        raise
    return server


def _wait_ready(server: MariaDB, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            break
        try:
            server.admin(database=None).close()
            return
        except pymysql.MySQLError:
            time.sleep(0.1)
    log = server.root / "run" / "error.log"
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"mariadbd did not start: {tail}")


def stop_server(server: MariaDB) -> None:
    try:
        if server.process is not None and server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout=10)
    finally:
        shutil.rmtree(server.root, ignore_errors=True)


def restart_server(server: MariaDB) -> None:
    """Stop and start the same server (same data, port and accounts)."""
    assert server.process is not None
    args = list(server.process.args)  # type: ignore[arg-type]
    server.process.terminate()
    server.process.wait(timeout=30)
    server.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_ready(server)


def _load_fixture(conn: pymysql.connections.Connection, server: MariaDB) -> None:
    p = server.passwords
    statements = [
        f"CREATE DATABASE {DBNAME}",
        f"USE {DBNAME}",
        *SCHEMA_SQL,
        *MARIADB_SETUP_SQL,
        "CREATE TABLE big (n INT PRIMARY KEY, h CHAR(32) NOT NULL)",
        "SET SESSION max_recursive_iterations = 100000",
        "INSERT INTO big WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g "
        "WHERE n < 50000) SELECT n, MD5(n) FROM g",
        "CREATE TABLE kinds ("
        " id INT PRIMARY KEY AUTO_INCREMENT, price DECIMAL(10, 2) NOT NULL DEFAULT 0.00,"
        " born DATE, seen DATETIME(3), took TIME, flags BIT(10), doc JSON,"
        " tags SET('a', 'b', 'c'), mood ENUM('calm', 'busy') DEFAULT 'calm',"
        " raw VARBINARY(16), yr YEAR, ratio DOUBLE, note TEXT,"
        " UNIQUE KEY kinds_born_seen (born, seen))",
        "INSERT INTO kinds (price, born, seen, took, flags, doc, tags, mood, raw, yr, ratio,"
        " note) VALUES (12345678.90, '1958-06-17', '2026-01-02 03:04:05.678', '838:59:59',"
        " b'1000000001', '{\"pages\": 209}', 'a,c', 'busy', x'89504e47', 2026, 0.5,"
        " 'naïve \\\\ \"quoted\"')",
        "CREATE VIEW paid AS SELECT id, amount FROM orders WHERE status = 'paid'",
        "CREATE PROCEDURE touch() UPDATE orders SET amount = amount + 1",
        "CREATE FUNCTION bump() RETURNS INT MODIFIES SQL DATA"
        " BEGIN UPDATE orders SET amount = amount + 1; RETURN 1; END",
        # Accounts (docs/sql.md's recipe for the reader).
        f"CREATE USER {READER}@'%' IDENTIFIED BY '{p[READER]}'",
        f"GRANT SELECT ON {DBNAME}.* TO {READER}@'%'",
        f"CREATE USER {WRITER}@'%' IDENTIFIED BY '{p[WRITER]}'",
        f"GRANT ALL PRIVILEGES ON {DBNAME}.* TO {WRITER}@'%'",
        f"GRANT FILE, PROCESS ON *.* TO {WRITER}@'%'",
        "CREATE ROLE read_role",
        f"GRANT SELECT ON {DBNAME}.* TO read_role",
        f"CREATE USER {ROLED}@'%' IDENTIFIED BY '{p[ROLED]}'",
        f"GRANT read_role TO {ROLED}@'%'",
        f"SET DEFAULT ROLE read_role FOR {ROLED}@'%'",
        "CREATE ROLE file_role",
        "GRANT FILE ON *.* TO file_role",
        f"CREATE USER {SNEAKY}@'%' IDENTIFIED BY '{p[SNEAKY]}'",
        f"GRANT SELECT ON {DBNAME}.* TO {SNEAKY}@'%'",
        f"GRANT file_role TO {SNEAKY}@'%'",
        "INSTALL SONAME 'auth_ed25519'",
        f"CREATE USER {ED25519}@'%' IDENTIFIED VIA ed25519 USING PASSWORD('{p[ED25519]}')",
        f"GRANT SELECT ON {DBNAME}.* TO {ED25519}@'%'",
    ]
    with conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def fingerprint(
    server: MariaDB, conn: pymysql.connections.Connection | None = None
) -> dict[str, object]:
    """Everything an attack could change, read as root (on `conn` when given)."""
    with contextlib.ExitStack() as stack:
        if conn is None:
            conn = stack.enter_context(server.admin())
        cursor = stack.enter_context(conn.cursor())

        def one(sql: str) -> object:
            cursor.execute(sql)
            return cursor.fetchall()

        return {
            "checksums": one("CHECKSUM TABLE customers, orders, events, breach_log, big, kinds"),
            "sequence": one("SELECT next_not_cached_value FROM order_seq"),
            "tables": one(
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', "
                "'performance_schema', 'sys') ORDER BY 1, 2"
            ),
            "databases": one("SHOW DATABASES"),
            "routines": one("SELECT ROUTINE_NAME FROM information_schema.ROUTINES ORDER BY 1"),
            "users": one("SELECT user, host FROM mysql.user ORDER BY 1, 2"),
            "grants": one(f"SHOW GRANTS FOR {READER}@'%'"),
            "locks": one("SELECT IS_USED_LOCK('m17'), IS_USED_LOCK('m17b')"),
            "globals": one("SELECT @@global.max_statement_time, @@global.read_only"),
        }


@contextlib.contextmanager
def admin_session(server: MariaDB):  # type: ignore[no-untyped-def]
    conn = server.admin()
    try:
        yield conn
    finally:
        conn.close()
