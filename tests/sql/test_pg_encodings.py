"""Issue 13 §3: every server encoding works, against real databases created with
`createdb -E SQL_ASCII|LATIN1|UTF8 -T template0 --locale=C`.

Text comes back as text (never base64, never `b'...'`), names and plans too; a SQL_ASCII
database's bytes are decoded as UTF-8 with replacement and the result says so; `check`
and every tool answer without a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from tests.sql.conftest import call, error_text, pg_settings, sql_client
from tests.sql.pg_cluster import PG_BIN, READER, Cluster, _as_postgres

ENCODINGS = ("SQL_ASCII", "LATIN1", "UTF8")


def _dbname(encoding: str) -> str:
    return "enc_" + encoding.lower()


@pytest.fixture(scope="module")
def encoded_databases(pg_cluster: Cluster) -> Iterator[Cluster]:
    for encoding in ENCODINGS:
        name = _dbname(encoding)
        command = [str(PG_BIN / "createdb"), "-h", str(pg_cluster.socket_dir)]
        command += ["-p", str(pg_cluster.port), "-U", "postgres", "-E", encoding]
        command += ["-T", "template0", "--locale=C", name]
        subprocess.run(_as_postgres(command), check=True, capture_output=True, timeout=60)
        with pg_cluster.admin() as admin:
            admin.execute(f"GRANT CONNECT ON DATABASE {name} TO {READER}")
        conninfo = pg_cluster.admin_conninfo.replace("dbname=shop", f"dbname={name}")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            # The session speaks UTF-8: the server converts to LATIN1; SQL_ASCII keeps
            # the bytes as sent. Row 3 (SQL_ASCII only) holds a byte that is not UTF-8.
            conn.execute("SET client_encoding = 'UTF8'")
            conn.execute(
                """
                REVOKE CREATE ON SCHEMA public FROM PUBLIC;
                CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL,
                    note varchar(20), code char(3), kind "char", tags text[], meta jsonb);
                CREATE INDEX items_name ON items (name);
                INSERT INTO items VALUES
                    (1, 'item 1', 'plain', 'abc', 'r', '{a,b}', '{"k": "v"}'),
                    (2, 'café', 'crème brûlée', 'xy', 'x', '{été}', '{"k": "naïve"}');
                GRANT USAGE ON SCHEMA public TO reader;
                GRANT SELECT ON items TO reader;
                """
            )
            if encoding == "SQL_ASCII":
                conn.execute("INSERT INTO items (id, name) VALUES (3, E'caf\\xe9')")
    yield pg_cluster


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_every_tool_returns_text(encoded_databases, tmp_path, encoding):
    cluster = encoded_databases
    settings = pg_settings(cluster, tmp_path, dbname=_dbname(encoding))
    undeclared = encoding == "SQL_ASCII"
    async with sql_client(settings) as client:
        tables = await call(client, "list_tables", database="pg")
        assert not tables.is_error, error_text(tables)
        assert {"schema_name": "public", "name": "items", "kind": "table"} in (
            tables.structured_content["tables"]
        )
        described = await call(client, "describe_table", database="pg", table="items")
        assert not described.is_error, error_text(described)
        columns = {c["name"]: c["type"] for c in described.structured_content["columns"]}
        assert columns["name"] == "text" and columns["kind"] == '"char"'
        assert described.structured_content["indexes"][0]["columns"] in (["id"], ["name"])

        rows = await call(
            client,
            "run_query",
            database="pg",
            sql="SELECT id, name, note, code, kind, tags, meta FROM items ORDER BY id",
        )
        assert not rows.is_error, error_text(rows)
        data = rows.structured_content
        assert data["rows"][:2] == [
            [1, "item 1", "plain", "abc", "r", ["a", "b"], {"k": "v"}],
            [2, "café", "crème brûlée", "xy ", "x", ["été"], {"k": "naïve"}],
        ]
        if undeclared:
            assert data["rows"][2][:2] == [3, "caf\ufffd"]
            assert "SQL_ASCII" in data["encoding_note"]
        else:
            assert data.get("encoding_note") is None

        found = await call(
            client, "run_query", database="pg", sql="SELECT id FROM items WHERE name = 'café'"
        )
        assert found.structured_content["rows"] == [[2]], error_text(found)
        param = await call(
            client,
            "run_query",
            database="pg",
            sql="SELECT id, $1::text FROM items WHERE note = $1",
            params=["crème brûlée"],
        )
        assert param.structured_content["rows"] == [[2, "crème brûlée"]], error_text(param)

        alias = await call(client, "run_query", database="pg", sql='SELECT 1 AS "été"')
        assert alias.structured_content["columns"][0]["name"] == "été", error_text(alias)
        missing = await call(client, "run_query", database="pg", sql='SELECT "naïve" FROM items')
        assert missing.is_error and 'column "naïve" does not exist' in error_text(missing)

        plan = await call(
            client, "explain_query", database="pg", sql="SELECT * FROM items WHERE id = 1"
        )
        assert not plan.is_error, error_text(plan)
        text = plan.structured_content["plan"]
        assert "items" in text and not text.startswith(("b'", 'b"'))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_check_answers_without_a_traceback(encoded_databases, tmp_path, encoding):
    cluster = encoded_databases
    pg_settings(cluster, tmp_path, dbname=_dbname(encoding))
    config = str(tmp_path / "pg-reader.toml")
    result = subprocess.run(
        [sys.executable, "-m", "mcp_fileserver", "check", "--config", config],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "MCP_FILESERVER_SANDBOX": "off",
            "PG_TEST_PASSWORD": cluster.reader_password,
        },
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "configuration OK" in result.stderr
