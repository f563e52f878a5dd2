"""MariaDB/MySQL layer 3: what an account could do beyond reading, from its grants.

Read from `SHOW GRANTS` for the account, each role it holds (granted, default or not: a
query could `SET ROLE` to any of them) and MariaDB's `PUBLIC`. An allow-list, not a
deny-list: every privilege but `SELECT`, `SHOW VIEW`, `SHOW DATABASES` and `USAGE` is a
finding (writes, DDL, FILE, SUPER, PROCESS, EXECUTE, LOCK TABLES, ..., `ALL PRIVILEGES`),
and so are `WITH GRANT OPTION`, `WITH ADMIN OPTION` and `SELECT` on every database or on
the `mysql` schema (account password hashes). A grant line that cannot be read is a
finding too: the parser fails closed. Findings never repeat a whole grant line (MariaDB's
carry password hashes).
"""

from __future__ import annotations

from dataclasses import dataclass

READ_PRIVILEGES = frozenset({"SELECT", "SHOW VIEW", "SHOW DATABASES", "USAGE"})
# SELECT here reads other accounts' password hashes (mysql.user / mysql.global_priv).
_SYSTEM_SCHEMAS = ("*.*", "`mysql`.")


@dataclass(frozen=True)
class Grant:
    privileges: tuple[str, ...]  # upper case, column lists dropped; empty for a role grant
    target: str | None  # `db`.`table`, `db`.*, *.*, PROCEDURE `db`.`p`; None: a role grant
    roles: tuple[str, ...]  # the roles a role grant gives
    grant_option: bool  # WITH GRANT OPTION / WITH ADMIN OPTION


def parse_grant(line: str) -> Grant | None:
    """One `SHOW GRANTS` line, or None when it is not a GRANT this parser can read."""
    text = line.strip()
    if not text.upper().startswith("GRANT "):
        return None
    body = text[len("GRANT ") :]
    to_at = _top_level(body, " TO ")
    if to_at is None:
        return None
    head, tail = body[:to_at], body[to_at + len(" TO ") :]
    option = " WITH GRANT OPTION" in _unquoted(tail) or " WITH ADMIN OPTION" in _unquoted(tail)
    on_at = _top_level(head, " ON ")
    if on_at is None:
        roles = tuple(part.strip() for part in _split_top_level(head) if part.strip())
        return Grant((), None, roles, option)
    privileges = tuple(
        _privilege_name(part) for part in _split_top_level(head[:on_at]) if part.strip()
    )
    return Grant(privileges, head[on_at + len(" ON ") :].strip(), (), option)


def findings(lines: list[str], source: str) -> list[str]:
    """Every privilege beyond reading in `lines` (the grants of `source`), one phrase each."""
    found: list[str] = []
    for line in lines:
        upper = line.strip().upper()
        if upper.startswith(("SET DEFAULT ROLE", "REVOKE ")):
            continue  # a default-role setting; MySQL's partial revokes only take away
        grant = parse_grant(line)
        if grant is None:
            found.append(f"{source} has a grant that could not be read")
            continue
        if grant.target is None:
            if grant.grant_option:
                found.append(f"{source} may grant role(s) {', '.join(grant.roles)} to others")
            continue
        beyond = [p for p in grant.privileges if p not in READ_PRIVILEGES]
        if beyond:
            found.append(f"{source} has {', '.join(beyond)} on {grant.target}")
        if grant.grant_option:
            found.append(f"{source} has GRANT OPTION on {grant.target}")
        if "SELECT" in grant.privileges and grant.target.startswith(_SYSTEM_SCHEMAS):
            found.append(
                f"{source} has SELECT on {grant.target}, which reaches the mysql schema "
                "(account password hashes)"
            )
    return found


def role_names(lines: list[str]) -> list[str]:
    """The roles granted in `lines`, as quoted in them (`r` or `r`@`%`)."""
    names: list[str] = []
    for line in lines:
        grant = parse_grant(line)
        if grant is not None and grant.target is None:
            names.extend(role for role in grant.roles if role not in names)
    return names


def _privilege_name(part: str) -> str:
    name = part.split("(", 1)[0]  # SELECT (`a`, `b`): column privileges
    return " ".join(name.split()).upper()


def _scan(text: str) -> list[tuple[int, str]]:
    """(index, character) of every character outside quotes and parentheses."""
    out: list[tuple[int, str]] = []
    quote: str | None = None
    depth = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quote is not None:
            if ch == "\\" and quote != "`":
                i += 2
                continue
            if ch == quote:
                if i + 1 < len(text) and text[i + 1] == quote:
                    i += 2
                    continue
                quote = None
        elif ch in "`'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append((i, ch))
        i += 1
    return out


def _unquoted(text: str) -> str:
    """`text` with quoted parts and parenthesised parts blanked out."""
    chars = [" "] * len(text)
    for i, ch in _scan(text):
        chars[i] = ch
    return "".join(chars)


def _top_level(text: str, needle: str) -> int | None:
    index = _unquoted(text).find(needle)
    return None if index < 0 else index


def _split_top_level(text: str) -> list[str]:
    commas = [i for i, ch in _scan(text) if ch == ","]
    parts, last = [], 0
    for at in commas:
        parts.append(text[last:at])
        last = at + 1
    parts.append(text[last:])
    return parts
