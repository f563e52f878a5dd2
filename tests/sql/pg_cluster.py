"""A throwaway PostgreSQL 15 cluster for the tests: initdb, start, roles, stop.

PostgreSQL refuses to run as root, so when the tests run as root the cluster runs as the
`postgres` user (`runuser`), in a temporary folder that user owns. The server listens on
a free loopback port and a private socket folder; nothing outside the folder is touched.
Missing binaries are an error, never a skip: CI must prove the PostgreSQL suite ran.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

PG_BIN = Path(os.environ.get("MCP_FILESERVER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
DBNAME = "shop"
READER = "reader"
WRITER = "writer"


@dataclass
class Cluster:
    root: Path
    port: int
    socket_dir: Path
    reader_password: str
    writer_password: str

    @property
    def admin_conninfo(self) -> str:
        return f"host={self.socket_dir} port={self.port} user=postgres dbname={DBNAME}"

    def url(self, role: str = READER, password_var: str = "PG_READER_PASSWORD") -> str:
        return f"postgresql://{role}:${{{password_var}}}@127.0.0.1:{self.port}/{DBNAME}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_conninfo, autocommit=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


def _run(args: list[str], **kwargs: object) -> None:
    result = subprocess.run(
        _as_postgres(args), capture_output=True, text=True, timeout=120, **kwargs
    )
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr[-2000:]}")


def start_cluster() -> Cluster:
    initdb = PG_BIN / "initdb"
    if not initdb.exists():
        raise RuntimeError(
            f"PostgreSQL 15 binaries not found in {PG_BIN} (apt-get install postgresql-15); "
            "the PostgreSQL tests must run, not skip"
        )
    root = Path(tempfile.mkdtemp(prefix="mcpfs-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
    _run(
        [
            str(initdb),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ]
    )
    port = _free_port()
    options = (
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=40"
    )
    pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log")]
    _run([*pg_ctl, "-w", "-t", "60", "-o", options, "start"])
    cluster = Cluster(
        root=root,
        port=port,
        socket_dir=sockets,
        reader_password=secrets.token_urlsafe(18),
        writer_password=secrets.token_urlsafe(18),
    )
    with psycopg.connect(
        f"host={sockets} port={port} user=postgres dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(f"CREATE DATABASE {DBNAME}")
    with cluster.admin() as conn:
        _load_fixture(conn, cluster)
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    try:
        _run(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(cluster.root / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ]
        )
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)


def _load_fixture(conn: psycopg.Connection, cluster: Cluster) -> None:
    conn.execute(
        f"""
        CREATE ROLE {READER} LOGIN PASSWORD '{cluster.reader_password}';
        CREATE ROLE {WRITER} LOGIN PASSWORD '{cluster.writer_password}';
        REVOKE CREATE ON SCHEMA public FROM PUBLIC;
        CREATE TABLE authors (
            id serial PRIMARY KEY,
            name text NOT NULL UNIQUE,
            country text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00'
        );
        CREATE TABLE books (
            id serial PRIMARY KEY,
            author_id int NOT NULL REFERENCES authors(id),
            title text NOT NULL,
            price numeric(8, 2) NOT NULL,
            published date,
            cover bytea,
            tags text[],
            meta jsonb,
            uid uuid
        );
        CREATE INDEX books_author ON books(author_id);
        CREATE VIEW book_titles AS SELECT b.title, a.name FROM books b JOIN authors a
            ON a.id = b.author_id;
        CREATE TABLE big AS SELECT g AS n, md5(g::text) AS h FROM generate_series(1, 50000) g;
        CREATE SEQUENCE counter;
        INSERT INTO authors (name, country) VALUES
            ('Chinua Achebe', 'Nigeria'), ('Ursula K. Le Guin', 'United States'),
            ('Haruki Murakami', 'Japan');
        INSERT INTO books (author_id, title, price, published, cover, tags, meta, uid) VALUES
            (1, 'Things Fall Apart', 10.99, '1958-06-17', '\\x89504e47', '{{classic,africa}}',
             '{{"pages": 209}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
            (2, 'A Wizard of Earthsea', 9.99, '1968-11-01', NULL, '{{fantasy}}', NULL, NULL),
            (3, 'Norwegian Wood', 15.95, '1987-09-04', NULL, NULL, '{{"pages": 296}}', NULL);
        -- Side effects a query can reach without naming a side-effect function: a
        -- volatile user function, an operator, a cast and an aggregate built on it.
        CREATE EXTENSION dblink;
        CREATE EXTENSION tablefunc;
        CREATE FUNCTION public.side_effect(a int, b int) RETURNS int LANGUAGE plpgsql AS $f$
            BEGIN
                PERFORM pg_advisory_lock(a * 100 + b);
                PERFORM pg_notify('witness', 'side_effect');
                RETURN a + b;
            END $f$;
        CREATE OPERATOR public.### (FUNCTION = public.side_effect, LEFTARG = int, RIGHTARG = int);
        CREATE TYPE public.marker AS (x int);
        CREATE FUNCTION public.to_marker(int) RETURNS public.marker LANGUAGE plpgsql AS $f$
            BEGIN PERFORM pg_advisory_lock($1 + 1000); RETURN ROW($1)::public.marker; END $f$;
        CREATE CAST (int AS public.marker) WITH FUNCTION public.to_marker(int);
        CREATE FUNCTION public.lock_step(s int, v int) RETURNS int LANGUAGE plpgsql AS $f$
            BEGIN PERFORM pg_advisory_lock(2000 + v); RETURN coalesce(s, 0) + v; END $f$;
        CREATE AGGREGATE public.lock_agg(int) (SFUNC = public.lock_step, STYPE = int);
        CREATE FUNCTION public.lock_check(v int) RETURNS boolean LANGUAGE plpgsql AS $f$
            BEGIN PERFORM pg_advisory_lock(3000 + v); RETURN true; END $f$;
        CREATE DOMAIN public.checked AS int CHECK (public.lock_check(VALUE));
        GRANT USAGE ON SCHEMA public TO {READER}, {WRITER};
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER};
        GRANT SELECT ON counter TO {READER};
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {WRITER};
        """
    )
