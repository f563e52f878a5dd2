"""The functions a MySQL/MariaDB query may call: an allow-list of pure built-ins.

Any other name is refused by construction: a user-defined (loadable) function such as
`sys_exec` or a stored function can do anything, and the server resolves an unqualified
name that is not a built-in to a stored function of the current database. So a name is
allowed only when it is a built-in of BOTH MySQL 8.0.21+ and MariaDB 10.6+ (every name
below is in MariaDB 10.11's information_schema.SQL_FUNCTIONS or KEYWORDS): a name built
in on one server only (`NVL`, `MEDIAN` on MariaDB; `REGEXP_LIKE`, `ANY_VALUE` on MySQL)
could be a stored function on the other. A qualified call (`db.f()`) always names a
stored function and is refused too.

The deny-list (denylist.MYSQL_FUNCTIONS) names the known side effects, so that their
refusal says why and counts as a violation; it is not what keeps the rest out.
"""

from __future__ import annotations

BUILT_IN_FUNCTIONS = frozenset(
    {
        # Control flow and comparison.
        "if", "ifnull", "nullif", "coalesce", "greatest", "least", "isnull", "interval",
        "strcmp",
        # Casts.
        "cast", "convert", "binary",
        # Strings.
        "ascii", "bin", "bit_length", "char", "char_length", "character_length", "concat",
        "concat_ws", "elt", "export_set", "field", "find_in_set", "format", "from_base64",
        "to_base64", "hex", "unhex", "insert", "instr", "lcase", "lower", "left", "length",
        "locate", "lpad", "ltrim", "make_set", "mid", "oct", "octet_length", "ord",
        "position", "quote", "repeat", "replace", "reverse", "right", "rpad", "rtrim",
        "soundex", "space", "substr", "substring", "substring_index", "trim", "ucase",
        "upper", "weight_string", "regexp_instr", "regexp_replace", "regexp_substr",
        "match",
        # Numbers.
        "abs", "acos", "asin", "atan", "atan2", "ceil", "ceiling", "conv", "cos", "cot",
        "crc32", "degrees", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi",
        "pow", "power", "radians", "rand", "round", "sign", "sin", "sqrt", "tan",
        "truncate", "bit_count",
        # Dates and times.
        "adddate", "addtime", "convert_tz", "curdate", "current_date", "current_time",
        "current_timestamp", "curtime", "date", "date_add", "date_format", "date_sub",
        "datediff", "day", "dayname", "dayofmonth", "dayofweek", "dayofyear", "extract",
        "from_days", "from_unixtime", "get_format", "hour", "last_day", "localtime",
        "localtimestamp", "makedate", "maketime", "microsecond", "minute", "month",
        "monthname", "now", "period_add", "period_diff", "quarter", "sec_to_time", "second",
        "str_to_date", "subdate", "subtime", "sysdate", "time", "time_format",
        "time_to_sec", "timediff", "timestamp", "timestampadd", "timestampdiff", "to_days",
        "to_seconds", "unix_timestamp", "utc_date", "utc_time", "utc_timestamp", "week",
        "weekday", "weekofyear", "year", "yearweek",
        # Aggregates.
        "avg", "bit_and", "bit_or", "bit_xor", "count", "group_concat", "max", "min",
        "std", "stddev", "stddev_pop", "stddev_samp", "sum", "var_pop", "var_samp",
        "variance", "json_arrayagg", "json_objectagg",
        # Window functions.
        "cume_dist", "dense_rank", "first_value", "lag", "last_value", "lead", "nth_value",
        "ntile", "percent_rank", "rank", "row_number",
        # JSON (values in, values out: JSON_SET and friends return a new document).
        "json_array", "json_array_append", "json_array_insert", "json_contains",
        "json_contains_path", "json_depth", "json_extract", "json_insert", "json_keys",
        "json_length", "json_merge_patch", "json_merge_preserve",
        "json_object", "json_quote", "json_remove", "json_replace", "json_search",
        "json_set", "json_type", "json_unquote", "json_valid", "json_value",
        # Information about the session (read only; LAST_INSERT_ID only without an
        # argument: with one it sets the session's value).
        "charset", "coercibility", "collation", "connection_id", "current_user",
        "current_role", "database", "schema", "found_rows", "last_insert_id", "row_count",
        "user", "session_user", "system_user", "version",
        # Hashes, encodings, addresses, identifiers.
        "md5", "sha", "sha1", "sha2", "compress", "uncompress", "uncompressed_length",
        "aes_encrypt", "aes_decrypt", "inet_aton", "inet_ntoa", "inet6_aton", "inet6_ntoa",
        "is_ipv4", "is_ipv6", "is_ipv4_compat", "is_ipv4_mapped", "uuid", "uuid_short",
        # Row constructor (`ROW(1, 2)`, `VALUES ROW(...)`).
        "row",
    }
)  # fmt: skip

# Built-ins whose names both servers reserve: `IF (a, 1, 2)` still calls the built-in.
# Any other built-in written with a space or a comment before `(` is refused: for COUNT,
# SUM, MAX, CAST, TRIM, NOW, SUBSTRING, the window functions and the rest of the
# IGNORE_SPACE list, the server then reads the name as a stored function's
# (`count (1)` calls `shop.count()`, checked on MariaDB 10.11).
RESERVED_FUNCTIONS = frozenset(
    {
        "if", "char", "left", "right", "replace", "insert", "mod", "database", "schema",
        "interval", "match", "convert", "repeat",
    }
)  # fmt: skip

# Words that may stand before `(` without calling anything, because both servers reserve
# them (no function can take such a name unquoted).
STRUCTURAL_KEYWORDS = frozenset(
    {
        "in", "exists", "as", "on", "using", "from", "join", "where", "and", "or", "not",
        "xor", "select", "all", "distinct", "when", "then", "else", "case", "by", "having",
        "is", "like", "between", "with", "div", "regexp", "rlike", "limit", "index", "key",
        "partition", "for", "values", "inner", "cross", "outer", "natural",
        "straight_join", "order", "group", "range", "asc", "desc", "collate", "null",
        "true", "false", "union",
    }
)  # fmt: skip

# Words the servers do not all reserve (so `word(...)` can name a stored function), that
# take `(` only after a certain token: `SUM(x) OVER (...)`, `MATCH (a) AGAINST (...)`,
# `JSON_TABLE(doc, '$[*]' COLUMNS (...))`, `x = ANY (SELECT ...)`, a set operation after
# the end of a query block. Elsewhere they are calls, and refused.
AFTER_CLOSE = frozenset({"over", "against"})
AFTER_STRING = frozenset({"columns"})
AFTER_COMPARISON = frozenset({"any", "some"})
SET_OPERATIONS = frozenset({"except", "intersect"})
# JSON_TABLE: the guard accepts its node only as a table in FROM.
TABLE_FUNCTIONS = frozenset({"json_table"})

# Type names that are reserved words in both servers: never a function name unquoted, so
# `(` after one is a type's length (CAST(x AS DECIMAL(10, 2)), CONVERT(x, CHAR(5))).
RESERVED_TYPE_WORDS = frozenset(
    {
        "char", "varchar", "character", "varcharacter", "binary", "varbinary", "decimal",
        "dec", "numeric", "int", "integer", "tinyint", "smallint", "mediumint", "bigint",
        "float", "double", "real", "blob", "tinyblob", "mediumblob", "longblob",
        "tinytext", "mediumtext", "longtext", "unsigned",
    }
)  # fmt: skip

# Other type names: DATETIME(6) is a type after AS (CAST) or a column name (JSON_TABLE),
# but a call anywhere else -- and DATETIME() is no built-in, so a stored function.
TYPE_WORDS = frozenset(
    {
        "nchar", "nvarchar", "fixed", "bit", "datetime", "timestamp", "time", "date",
        "year", "text", "enum", "json", "signed",
    }
)  # fmt: skip
