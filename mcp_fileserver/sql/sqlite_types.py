"""Declared types of a SQLite result's columns, where SQLite itself would know them.

Python's sqlite3 does not expose `sqlite3_column_decltype`, and `cursor.description`
carries names only. SQLite's rule is simple: a result column that is a direct reference
to a table or view column has that column's declared type; any other expression has
none. This module applies the same rule to the parsed query (sqlglot, SQLite dialect):
a plain SELECT whose sources are tables or views of the main schema, and whose result
columns are `*`, `t.*` or (aliased) column references, gets each column's declared type
from `PRAGMA table_xinfo`. Everything else is None, never a guess: expressions,
aggregates, columns of subqueries and CTEs, compound SELECTs (UNION ...), ambiguous
unqualified names, and any query whose expansion does not match the cursor's column
count.
"""

from __future__ import annotations

import sqlite3

import sqlglot
from sqlglot import exp

TableColumns = list[tuple[str, str | None]]  # (name, declared type) in table order


def declared_types(conn: sqlite3.Connection, sql: str, count: int) -> list[str | None]:
    unknown: list[str | None] = [None] * count
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return unknown
    if not isinstance(tree, exp.Select):
        return unknown
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    sources: dict[str, TableColumns | None] = {}  # alias -> columns; None if not a table
    from_ = tree.args.get("from_") or tree.args.get("from")
    items = [from_.this] if isinstance(from_, exp.From) else []
    items += [join.this for join in tree.args.get("joins") or []]
    if not items:
        return unknown
    for item in items:
        alias = item.alias_or_name.lower()
        if (
            isinstance(item, exp.Table)
            and item.args.get("joins") is None
            and item.db.lower() in ("", "main")
            and not item.catalog
            and item.name.lower() not in cte_names
        ):
            sources[alias] = _table_columns(conn, item.name)
        else:
            sources[alias] = None
    types: list[str | None] = []
    for projection in tree.expressions:
        expanded = _expand(projection, sources)
        if expanded is None:
            return unknown
        types.extend(expanded)
    return types if len(types) == count else unknown


def _expand(
    projection: exp.Expression, sources: dict[str, TableColumns | None]
) -> list[str | None] | None:
    """Declared types this projection contributes; None when the count is unknowable."""
    if isinstance(projection, exp.Star):
        if any(columns is None for columns in sources.values()):
            return None
        return [decl for columns in sources.values() for _, decl in columns or ()]
    if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
        columns = sources.get(projection.table.lower())
        return None if columns is None else [decl for _, decl in columns]
    target = projection.this if isinstance(projection, exp.Alias) else projection
    if not isinstance(target, exp.Column) or not isinstance(target.this, exp.Identifier):
        return [None]
    name = target.name.lower()
    if target.table:
        return [_lookup(sources.get(target.table.lower()), name)]
    if any(columns is None for columns in sources.values()):
        return [None]
    found = [_lookup(columns, name) for columns in sources.values()]
    holders = [c for c in sources.values() if c and any(n.lower() == name for n, _ in c)]
    return [found[[*sources.values()].index(holders[0])]] if len(holders) == 1 else [None]


def _lookup(columns: TableColumns | None, name: str) -> str | None:
    for column, decl in columns or ():
        if column.lower() == name:
            return decl
    return None


def _table_columns(conn: sqlite3.Connection, table: str) -> TableColumns | None:
    quoted = '"' + table.replace('"', '""') + '"'
    try:
        rows = conn.execute(f"PRAGMA table_xinfo({quoted})").fetchall()
    except sqlite3.Error:  # interrupted, or refused: no type is better than no answer
        return None
    # hidden: 0 ordinary, 1 hidden (virtual tables; not in *), 2/3 generated columns
    columns = [(str(row[1]), str(row[2]) or None) for row in rows if row[6] != 1]
    return columns or None
