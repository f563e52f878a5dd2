"""PostgreSQL function policy: what a query may call, resolved against the server's catalog.

A layer of its own, beside the guard's deny-list (guard.py): every function, operator and
cast target a query names is looked up in `pg_catalog`, and the query is refused when it
could run

- a function that executes SQL given as text (denylist.py, plus any installed function
  whose text argument is named like a query: `sql`, `query`, `command`, ...);
- a deny-listed function (the same list as the guard's, so this layer holds alone);
- a volatile function (`pg_proc.provolatile = 'v'`: it may change state), an aggregate
  whose support functions are volatile, an operator whose function is volatile, or a cast
  to a type whose cast, input function or domain CHECK calls a volatile function --
  unless it is on the database's `allowed_volatile_functions` list (default:
  config.DEFAULT_ALLOWED_VOLATILE_FUNCTIONS).

Names are matched conservatively: a name is volatile when ANY function of that name, in
ANY schema and of any argument list, is volatile; the allow-list must cover every such
schema. What the query cannot name (functions inside views, implicit casts) is left to
the engine layers (READ ONLY transaction, session reset) and the role's privileges.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from pglast import parser as pg_parser

from mcp_fileserver.sql import pg_tree
from mcp_fileserver.sql.denylist import POSTGRES_FUNCTIONS, POSTGRES_SQL_TEXT_FUNCTIONS

# Text arguments with one of these names take a query (query_to_xml(query text, ...)).
_QUERY_ARGUMENT = r"(^|_)(sql|query|command|cmd|stmt|statement)(_?text|_?string)?$"

# One round trip per connection: every name the policy needs, lower-cased.
CATALOG_SQL = f"""
SELECT DISTINCT 'known', lower(p.proname), '' FROM pg_catalog.pg_proc p
UNION ALL
SELECT 'volatile', lower(p.proname), n.nspname
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.provolatile = 'v'
   OR EXISTS (
        SELECT 1 FROM pg_catalog.pg_aggregate a
        JOIN pg_catalog.pg_proc s ON s.oid IN (
            a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn,
            a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn)
        WHERE a.aggfnoid = p.oid AND s.provolatile = 'v')
UNION ALL
SELECT DISTINCT 'sql_text', lower(p.proname), n.nspname
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN LATERAL unnest(p.proargnames) WITH ORDINALITY AS a(name, i)
WHERE a.name ~* '{_QUERY_ARGUMENT}'
  AND coalesce(p.proargmodes[a.i], 'i') IN ('i', 'b', 'v')
  AND coalesce(p.proallargtypes[a.i - 1], p.proargtypes[a.i - 1])
      IN ('pg_catalog.text'::pg_catalog.regtype, 'pg_catalog.varchar'::pg_catalog.regtype)
UNION ALL
SELECT DISTINCT 'operator', o.oprname, n.nspname
FROM pg_catalog.pg_operator o
JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
WHERE p.provolatile = 'v'
UNION ALL
SELECT DISTINCT 'cast_type', lower(t.typname), n.nspname
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid = t.typinput AND p.provolatile = 'v')
   OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast c JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc
              WHERE c.casttarget = t.oid AND p.provolatile = 'v')
   OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k  -- a domain's CHECK runs on a cast
              JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_constraint'::regclass
                AND d.objid = k.oid AND d.refclassid = 'pg_catalog.pg_proc'::regclass
              JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid
              WHERE k.contypid = t.oid AND p.provolatile = 'v')
UNION ALL
SELECT DISTINCT 'attribute', lower(p.proname), n.nspname
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_type t ON t.oid = p.proargtypes[0]
WHERE p.provolatile = 'v' AND p.pronargs - p.pronargdefaults <= 1 AND p.pronargs >= 1
  AND t.typtype IN ('c', 'p')
"""


@dataclass(frozen=True)
class FunctionCatalog:
    """What one database's catalog says, as lower-cased name -> schemas."""

    known: frozenset[str]  # every function name, to notice one created since the read
    volatile: dict[str, frozenset[str]]
    sql_text: dict[str, frozenset[str]]
    volatile_operators: dict[str, frozenset[str]]
    volatile_cast_types: dict[str, frozenset[str]]
    # Volatile functions of one composite/pseudo-type argument: `t.f` calls f(t).
    attribute_callable: dict[str, frozenset[str]]

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, str]]) -> FunctionCatalog:
        found: dict[str, dict[str, set[str]]] = {
            k: {} for k in ("known", "volatile", "sql_text", "operator", "cast_type", "attribute")
        }
        for kind, name, schema in rows:
            found[kind].setdefault(name, set()).add(schema)

        def frozen(kind: str) -> dict[str, frozenset[str]]:
            return {name: frozenset(schemas) for name, schemas in found[kind].items()}

        return cls(
            known=frozenset(found["known"]),
            volatile=frozen("volatile"),
            sql_text=frozen("sql_text"),
            volatile_operators=frozen("operator"),
            volatile_cast_types=frozen("cast_type"),
            attribute_callable=frozen("attribute"),
        )


@dataclass(frozen=True)
class References:
    """Every function, operator, type and attribute name a query spells out."""

    functions: tuple[str, ...]
    operators: tuple[str, ...]
    types: tuple[str, ...]
    attributes: tuple[str, ...]


def refusal_reason(
    sql: str, catalog: FunctionCatalog, allowed_volatile: Iterable[str]
) -> str | None:
    """Why `sql` may not run on this database, or None. Unparsable text is left to the
    guard and the server, which refuse it."""
    refs = references(sql)
    if refs is None:
        return None
    allowed = frozenset(entry.lower() for entry in allowed_volatile)
    for name in refs.functions:
        if name in catalog.sql_text or POSTGRES_SQL_TEXT_FUNCTIONS.denies(name):
            return f"function {name}() runs SQL given as text"
        if POSTGRES_FUNCTIONS.denies(name):
            return f"function {name}() is not allowed"
        if _refused(name, catalog.volatile.get(name), allowed):
            return f"function {name}() is volatile (it may change state)"
    for name in refs.attributes:
        if _refused(name, catalog.attribute_callable.get(name), allowed):
            return f"{name} calls a volatile function"
    for name in refs.operators:
        if name in catalog.volatile_operators:
            return f"operator {name} calls a volatile function"
    for name in refs.types:
        if name in catalog.volatile_cast_types:
            return f"a cast to {name} calls a volatile function"
    return None


def is_stale(sql: str, catalog: FunctionCatalog) -> bool:
    """True when `sql` calls a function the catalog did not hold when it was read (one
    created since): the caller reads the catalog again before judging."""
    refs = references(sql)
    return refs is not None and any(name not in catalog.known for name in refs.functions)


def _refused(name: str, schemas: frozenset[str] | None, allowed: frozenset[str]) -> bool:
    if not schemas:
        return False
    if name in allowed:
        return False
    return any(f"{schema.lower()}.{name}" not in allowed for schema in schemas)


@lru_cache(maxsize=1024)
def references(sql: str) -> References | None:
    """The names `sql` refers to (lower-cased), or None when it does not parse."""
    try:
        tree = json.loads(pg_parser.parse_sql_json(sql))
    except Exception:  # the guard and the server refuse what does not parse
        return None
    functions: set[str] = set()
    operators: set[str] = set()
    types: set[str] = set()
    attributes: set[str] = set()
    for _key, node in pg_tree.nodes(tree):
        function = pg_tree.called_function(node)
        if function is not None:
            functions.add(function.lower())
        if str(node.get("kind", "")).startswith("AEXPR_"):
            _add(operators, pg_tree.last_name(node.get("name")), lower=False)
        if "names" in node and "typemod" in node:  # a TypeName
            _add(types, pg_tree.last_name(node.get("names")))
        fields = node.get("fields")
        if isinstance(fields, list) and len(fields) >= 2:  # a qualified ColumnRef
            _add(attributes, pg_tree.last_name(fields))
    return References(
        functions=tuple(sorted(functions)),
        operators=tuple(sorted(operators)),
        types=tuple(sorted(types)),
        attributes=tuple(sorted(attributes)),
    )


def _add(found: set[str], name: str | None, *, lower: bool = True) -> None:
    if name is not None:
        found.add(name.lower() if lower else name)
