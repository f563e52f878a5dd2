"""What run_query sends: complete structured content, and a compact text for the model."""

from __future__ import annotations

import json

from tests.sql.conftest import call, sql_client, sqlite_settings


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
