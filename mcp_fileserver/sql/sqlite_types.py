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
count. The query's shape is cached by its text (parsing is the only costly step); the
table columns are read on every call, so a schema change is seen at once.
"""

from __future__ import annotations

import functools
import sqlite3

import sqlglot
from sqlglot import exp

TableColumns = list[tuple[str, str | None]]  # (name, declared type) in table order
# A projection: ("*",), ("t.*", alias), ("col", qualifier or "", name) or ("expr",).
Projection = tuple[str, ...]
Shape = tuple[tuple[tuple[str, str | None], ...], tuple[Projection, ...]]


def declared_types(conn: sqlite3.Connection, sql: str, count: int) -> list[str | None]:
    unknown: list[str | None] = [None] * count
    shape = _shape(sql)
    if shape is None:
        return unknown
    source_list, projections = shape
    sources: dict[str, TableColumns | None] = {
        alias: (_table_columns(conn, table) if table is not None else None)
        for alias, table in source_list
    }
    types: list[str | None] = []
    for projection in projections:
        expanded = _expand(projection, sources)
        if expanded is None:
            return unknown
        types.extend(expanded)
    return types if len(types) == count else unknown


@functools.lru_cache(maxsize=512)
def _shape(sql: str) -> Shape | None:
    """Sources (alias, table or None) and projections of a plain SELECT, else None."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return None
    if not isinstance(tree, exp.Select):
        return None
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    from_ = tree.args.get("from_") or tree.args.get("from")
    items = [from_.this] if isinstance(from_, exp.From) else []
    items += [join.this for join in tree.args.get("joins") or []]
    if not items:
        return None
    sources: list[tuple[str, str | None]] = []
    for item in items:
        plain_table = (
            isinstance(item, exp.Table)
            and isinstance(item.this, exp.Identifier)
            and item.db.lower() in ("", "main")
            and not item.catalog
            and item.name.lower() not in cte_names
        )
        sources.append((item.alias_or_name.lower(), item.name if plain_table else None))
    projections: list[Projection] = []
    for projection in tree.expressions:
        if isinstance(projection, exp.Star):
            projections.append(("*",))
        elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
            projections.append(("t.*", projection.table.lower()))
        else:
            target = projection.this if isinstance(projection, exp.Alias) else projection
            if isinstance(target, exp.Column) and isinstance(target.this, exp.Identifier):
                projections.append(("col", target.table.lower(), target.name.lower()))
            else:
                projections.append(("expr",))
    return tuple(sources), tuple(projections)


def _expand(
    projection: Projection, sources: dict[str, TableColumns | None]
) -> list[str | None] | None:
    """Declared types this projection contributes; None when the count is unknowable."""
    kind = projection[0]
    if kind == "*":
        if any(columns is None for columns in sources.values()):
            return None
        return [decl for columns in sources.values() for _, decl in columns or ()]
    if kind == "t.*":
        columns = sources.get(projection[1])
        return None if columns is None else [decl for _, decl in columns]
    if kind == "expr":
        return [None]
    _, qualifier, name = projection
    if qualifier:
        return [_lookup(sources.get(qualifier), name)]
    if any(columns is None for columns in sources.values()):
        return [None]
    holders = [c for c in sources.values() if c and any(n.lower() == name for n, _ in c)]
    return [_lookup(holders[0], name)] if len(holders) == 1 else [None]


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
