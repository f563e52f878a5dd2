"""What run_query sends: complete structured content, and a compact text for the model."""

from __future__ import annotations

import json

from tests.sql.conftest import call, error_text, sql_client, sqlite_settings


async def test_text_and_structured_content_carry_the_same_rows(tmp_path):
    setup = sqlite_settings(tmp_path, max_rows=2)
    async with sql_client(setup.settings) as client:
        result = await call(
            client, "run_query", database="shop", sql="SELECT id, title, cover FROM books"
        )
    data = result.structured_content  # the client validated it against the output schema
    assert data["rows"] == [[1, "Things Fall Apart", "iVBORw=="], [2, "A Wizard of Earthsea", None]]
    assert data["truncated_reason"] == "max_rows"
    header, columns, types, rows = result.content[0].text.split("\n")
    assert header.startswith("2 row(s) from shop, more rows exist (max_rows reached)")
    assert json.loads(columns.removeprefix("columns: ")) == ["id", "title", "cover"]
    assert len(json.loads(types.removeprefix("types: "))) == 3
    assert json.loads(rows.removeprefix("rows: ")) == data["rows"]


async def test_sqlite_reports_declared_types_of_column_references_only(tmp_path):
    setup = sqlite_settings(tmp_path)
    queries = {
        "SELECT * FROM authors": ["INTEGER", "TEXT", "TEXT", "TEXT"],
        "SELECT b.title AS t, a.name, b.price * 2, count(*) FROM books b "
        "JOIN authors a ON a.id = b.author_id": ["TEXT", "TEXT", None, None],
        "SELECT * FROM book_titles": ["TEXT", "TEXT"],
        "WITH x AS (SELECT id FROM books) SELECT id FROM x": [None],
        "SELECT id FROM books UNION SELECT id FROM authors": [None],
        "SELECT id FROM books JOIN authors ON 1 = 1": [None],  # ambiguous: SQLite refuses
    }
    async with sql_client(setup.settings) as client:
        for sql, expected in queries.items():
            result = await call(client, "run_query", database="shop", sql=sql)
            if result.is_error:
                assert expected == [None] and "ambiguous" in error_text(result)
                continue
            types = [c["type"] for c in result.structured_content["columns"]]
            assert types == expected, sql
