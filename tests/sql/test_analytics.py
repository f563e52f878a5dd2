"""The analytics control corpus through the real tools, every layer on: it must run and
give exactly the expected values on both engines (tests/sql/analytics.py)."""

from __future__ import annotations

import pytest

from tests.sql.analytics import ANALYTICS, Analytic
from tests.sql.conftest import call, error_text, pg_settings, sql_client, sqlite_settings


@pytest.mark.parametrize("query", [a for a in ANALYTICS if a.postgres], ids=lambda a: a.id)
async def test_analytics_on_postgres(pg_cluster, tmp_path, query: Analytic):
    settings = pg_settings(pg_cluster, tmp_path, timeout_s=30)
    async with sql_client(settings) as client:
        result = await call(client, "run_query", database="pg", sql=query.postgres)
        assert not result.is_error, error_text(result)
        assert result.structured_content["rows"] == query.expected
        plan = await call(client, "explain_query", database="pg", sql=query.postgres)
        assert not plan.is_error, error_text(plan)


@pytest.mark.parametrize("query", [a for a in ANALYTICS if a.sqlite], ids=lambda a: a.id)
async def test_analytics_on_sqlite(tmp_path, query: Analytic):
    settings = sqlite_settings(tmp_path, timeout_s=30).settings
    async with sql_client(settings) as client:
        result = await call(client, "run_query", database="shop", sql=query.sqlite)
        assert not result.is_error, error_text(result)
        expected = query.sqlite_expected if query.sqlite_expected is not None else query.expected
        assert result.structured_content["rows"] == expected
