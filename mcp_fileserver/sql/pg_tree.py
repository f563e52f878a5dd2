"""Reading pglast's JSON parse trees: every node, and the names of called functions.

A node is recognised by its fields, not by the key it hangs under: pglast writes a
generic node as `{"FuncCall": {...}}` but a typed field as `"typeName": {...}`, so
matching on keys alone would miss the typed ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def nodes(tree: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (key, dict) pair in the tree, depth first, without recursion."""
    stack: list[Any] = [tree]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            for key, value in current.items():
                if isinstance(value, dict):
                    yield key, value
                    stack.append(value)
                elif isinstance(value, list):
                    stack.append(value)
        elif isinstance(current, list):
            stack.extend(item for item in current if isinstance(item, dict | list))


def last_name(parts: Any) -> str | None:
    """The last element of a name list (`[schema, name]` -> name), as written."""
    if not isinstance(parts, list) or not parts or not isinstance(parts[-1], dict):
        return None
    name = parts[-1].get("String", {}).get("sval")
    return name if isinstance(name, str) else None


def called_function(node: dict[str, Any]) -> str | None:
    """The function a FuncCall node calls (by its `funcname` field), else None."""
    return last_name(node.get("funcname")) if "funcname" in node else None
