"""Issue 13 §2: no side effect reaches past a call, against a real PostgreSQL 15.

Every member of the class (tests/sql/attacks.py: POSTGRES_SIDE_EFFECTS) is sent with
every layer on, with the guard off (the function policy, engine and role hold), and with
the guard and the function policy off (the engine and the role hold). After each one a
second session of the same role proves it was not killed or cancelled and received no
notification, and the server's lock table proves no advisory lock outlived the call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from tests.sql.attacks import POSTGRES_SIDE_EFFECTS
from tests.sql.conftest import call, error_text, pg_fingerprint, pg_settings, sql_client
from tests.sql.pg_cluster import DBNAME, READER, Cluster

CLEAN_STATE = [["on", "4MB", 0]]  # read-only, default work_mem, not listening
LAYERS = {
    "all-layers": {"guard": True, "function_policy": True},
    "no-guard": {"guard": False, "function_policy": True},
    "engine-only": {"guard": False, "function_policy": False},
}


class Witness:
    """A second session of the reader role, listening on channel `witness`."""

    def __init__(self, cluster: Cluster) -> None:
        self.conn = psycopg.connect(
            host="127.0.0.1",
            port=cluster.port,
            user=READER,
            dbname=DBNAME,
            password=cluster.reader_password,
            autocommit=True,
        )
        self.heard: list[str] = []
        self.conn.add_notify_handler(lambda n: self.heard.append(n.payload))
        self.conn.execute("LISTEN witness")
        self.pid = int(self.conn.info.backend_pid)

    def alive(self) -> bool:
        """Runs a statement, which also delivers any pending notification."""
        try:
            return self.conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.Error:
            return False

    def close(self) -> None:
        self.conn.close()


@contextmanager
def witness(cluster: Cluster) -> Iterator[Witness]:
    w = Witness(cluster)
    try:
        yield w
    finally:
        w.close()


def advisory_locks(cluster: Cluster) -> int:
    with cluster.admin() as admin:
        row = admin.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
    return int(row[0]) if row else -1


def test_the_witness_can_see_each_effect(pg_cluster: Cluster) -> None:
    """The proofs below can fail: a committed NOTIFY, a held lock and a kill all show."""
    with witness(pg_cluster) as w, pg_cluster.admin() as admin:
        admin.execute("SELECT pg_notify('witness', 'control')")
        assert w.alive() and w.heard == ["control"]
        admin.execute("SELECT pg_advisory_lock(1)")
        assert advisory_locks(pg_cluster) == 1
        admin.execute("SELECT pg_advisory_unlock_all()")
        admin.execute("SELECT pg_terminate_backend(%s)", (w.pid,))
        assert not w.alive()


@pytest.mark.parametrize("layers", list(LAYERS))
async def test_no_side_effect_outlives_a_call(pg_cluster, tmp_path, layers):
    settings = pg_settings(pg_cluster, tmp_path, timeout_s=10)
    flags = LAYERS[layers]
    before = pg_fingerprint(pg_cluster)
    failures: list[str] = []
    async with sql_client(settings, **flags) as client:
        for attack in POSTGRES_SIDE_EFFECTS:
            with witness(pg_cluster) as w:
                sql = attack.render(w.pid)
                refused_by_policy = (flags["guard"] and attack.guard_refuses) or (
                    flags["function_policy"] and attack.policy_refuses
                )
                may_kill = attack.engine_kills and not flags["function_policy"]
                problems: list[str] = []
                # Checked right after each call, before any other call could clean up.
                for tool in ("run_query", "explain_query"):
                    result = await call(client, tool, database="pg", sql=sql)
                    # Plain EXPLAIN plans without executing: only layer 1 refuses it.
                    must_refuse = refused_by_policy or (
                        attack.engine_refuses and tool == "run_query"
                    )
                    problems += [
                        f"{tool} succeeded" * (must_refuse and not result.is_error),
                        f"{tool} showed a traceback" * ("Traceback" in error_text(result)),
                        f"{tool}: second session killed" * (not may_kill and not w.alive()),
                        f"{tool}: notification delivered {w.heard}" * bool(w.heard),
                        f"{tool}: advisory lock held after the call"
                        * (advisory_locks(pg_cluster) != 0),
                    ]
                state = await call(
                    client,
                    "run_query",
                    database="pg",
                    sql="SELECT current_setting('transaction_read_only'), "
                    "current_setting('work_mem'), "
                    "(SELECT count(*) FROM pg_listening_channels())",
                )
                problems += [
                    "next call failed" * state.is_error,
                    f"session state leaked {state.structured_content}"
                    * (not state.is_error and state.structured_content["rows"] != CLEAN_STATE),
                    "database changed" * (pg_fingerprint(pg_cluster) != before),
                ]
                failures += [f"{attack.id}: {p}" for p in problems if p]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("attack", POSTGRES_SIDE_EFFECTS, ids=lambda a: a.id)
def test_the_guard_alone_refuses_what_it_names(attack):
    from mcp_fileserver.errors import Refusal
    from mcp_fileserver.sql.guard import Dialect, check_read_only

    if not attack.guard_refuses:
        check_read_only(attack.render(1), Dialect.POSTGRESQL)  # the catalog's job
        return
    with pytest.raises(Refusal):
        check_read_only(attack.render(1), Dialect.POSTGRESQL)


async def test_a_function_created_after_connecting_is_judged_too(pg_cluster, tmp_path):
    settings = pg_settings(pg_cluster, tmp_path)
    async with sql_client(settings) as client:
        first = await call(client, "run_query", database="pg", sql="SELECT 1")
        assert not first.is_error, error_text(first)  # the catalog is read now
        with pg_cluster.admin() as admin:
            admin.execute(
                "CREATE FUNCTION public.created_later() RETURNS int LANGUAGE sql VOLATILE "
                "AS 'SELECT 1'; GRANT EXECUTE ON FUNCTION public.created_later() TO PUBLIC"
            )
        try:
            late = await call(client, "run_query", database="pg", sql="SELECT created_later()")
            assert late.is_error
            assert "created_later() is volatile" in error_text(late)
        finally:
            with pg_cluster.admin() as admin:
                admin.execute("DROP FUNCTION public.created_later()")
