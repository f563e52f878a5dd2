"""The analytics control corpus (issue 13 §2): real analytical SQL that every layer must
let through, with its exact result, on PostgreSQL and, where the feature exists, SQLite.

The tables are the test fixtures (tests/sql/conftest.py, tests/sql/pg_cluster.py):
authors, books and big (n = 1..N). A `None` query means the engine lacks the feature
(SQLite 3.40 has no WITHIN GROUP, GROUPING SETS, DISTINCT ON, LATERAL, regex operators,
ordered aggregates or generate_series in Python's build).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Analytic:
    id: str
    postgres: str | None
    sqlite: str | None
    expected: list[list[Any]]
    sqlite_expected: list[list[Any]] | None = None  # when the engines' values differ


ANALYTICS = [
    Analytic(
        "percentile-cont-within-group",
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY n), "
        "percentile_disc(0.9) WITHIN GROUP (ORDER BY n) FROM big WHERE n <= 10",
        None,
        [[5.5, 9]],
    ),
    Analytic(
        "window-frame-rows",
        "SELECT n, sum(n) OVER (ORDER BY n ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) "
        "FROM big WHERE n <= 4 ORDER BY n",
        "SELECT n, sum(n) OVER (ORDER BY n ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) "
        "FROM big WHERE n <= 4 ORDER BY n",
        [[1, 3], [2, 6], [3, 9], [4, 7]],
    ),
    Analytic(
        "window-frame-range-and-ranking",
        "SELECT title, rank() OVER (ORDER BY price DESC), "
        "count(*) OVER (ORDER BY price RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), "
        "lag(title) OVER (ORDER BY price) FROM books ORDER BY price",
        "SELECT title, rank() OVER (ORDER BY price DESC), "
        "count(*) OVER (ORDER BY price RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), "
        "lag(title) OVER (ORDER BY price) FROM books ORDER BY price",
        [
            ["A Wizard of Earthsea", 3, 1, None],
            ["Things Fall Apart", 2, 2, "A Wizard of Earthsea"],
            ["Norwegian Wood", 1, 3, "Things Fall Apart"],
        ],
    ),
    Analytic(
        "aggregate-filter",
        "SELECT count(*) FILTER (WHERE n % 2 = 0), sum(n) FILTER (WHERE n > 5) "
        "FROM big WHERE n <= 10",
        "SELECT count(*) FILTER (WHERE n % 2 = 0), sum(n) FILTER (WHERE n > 5) "
        "FROM big WHERE n <= 10",
        [[5, 40]],
    ),
    Analytic(
        "rollup",
        "SELECT a.country, count(b.id) FROM authors a JOIN books b ON b.author_id = a.id "
        "GROUP BY ROLLUP (a.country) ORDER BY a.country NULLS LAST",
        None,
        [["Japan", 1], ["Nigeria", 1], ["United States", 1], [None, 3]],
    ),
    Analytic(
        "grouping-sets",
        "SELECT n % 2 AS parity, n % 3 AS third, sum(n), grouping(n % 2, n % 3) "
        "FROM big WHERE n <= 6 GROUP BY GROUPING SETS ((n % 2), (n % 3), ()) "
        "ORDER BY 4, 1, 2",
        None,
        [
            [0, None, 12, 1],
            [1, None, 9, 1],
            [None, 0, 9, 2],
            [None, 1, 5, 2],
            [None, 2, 7, 2],
            [None, None, 21, 3],
        ],
    ),
    Analytic(
        "distinct-on",
        "SELECT DISTINCT ON (n % 3) n % 3 AS k, n FROM big WHERE n <= 9 ORDER BY n % 3, n DESC",
        None,
        [[0, 9], [1, 7], [2, 8]],
    ),
    Analytic(
        "lateral",
        "SELECT a.name, t.title FROM authors a CROSS JOIN LATERAL "
        "(SELECT title FROM books b WHERE b.author_id = a.id ORDER BY price DESC LIMIT 1) t "
        "ORDER BY a.name",
        None,
        [
            ["Chinua Achebe", "Things Fall Apart"],
            ["Haruki Murakami", "Norwegian Wood"],
            ["Ursula K. Le Guin", "A Wizard of Earthsea"],
        ],
    ),
    Analytic(
        "nested-ctes-three-levels",
        "WITH x AS (WITH y AS (WITH z AS (SELECT n FROM big WHERE n <= 10) "
        "SELECT n FROM z WHERE n % 2 = 0) SELECT sum(n) AS s, count(*) AS c FROM y) "
        "SELECT s, c FROM x",
        "WITH x AS (WITH y AS (WITH z AS (SELECT n FROM big WHERE n <= 10) "
        "SELECT n FROM z WHERE n % 2 = 0) SELECT sum(n) AS s, count(*) AS c FROM y) "
        "SELECT s, c FROM x",
        [[30, 5]],
    ),
    Analytic(
        "bounded-recursive-cte",
        "WITH RECURSIVE fib(i, a, b) AS (SELECT 1, 0, 1 UNION ALL "
        "SELECT i + 1, b, a + b FROM fib WHERE i < 10) SELECT a FROM fib WHERE i = 10",
        "WITH RECURSIVE fib(i, a, b) AS (SELECT 1, 0, 1 UNION ALL "
        "SELECT i + 1, b, a + b FROM fib WHERE i < 10) SELECT a FROM fib WHERE i = 10",
        [[34]],
    ),
    Analytic(
        "jsonb-operators",
        "SELECT title, meta->>'pages', (meta->'pages')::int + 1, meta @> '{\"pages\": 209}' "
        "FROM books WHERE meta ? 'pages' ORDER BY title",
        "SELECT title, json_object('pages', length(title)) ->> '$.pages', "
        "json_extract(json_object('pages', length(title)), '$.pages') + 1, 0 "
        "FROM books WHERE author_id IN (1, 3) ORDER BY title",
        [["Norwegian Wood", "296", 297, False], ["Things Fall Apart", "209", 210, True]],
        [["Norwegian Wood", 14, 15, 0], ["Things Fall Apart", 17, 18, 0]],
    ),
    Analytic(
        "jsonb-aggregates",
        "SELECT jsonb_agg(title ORDER BY title), jsonb_object_agg(title, price), "
        "jsonb_build_object('n', count(*)) FROM books WHERE meta IS NOT NULL",
        "SELECT json_group_array(title), json_group_object(title, price), "
        "json_object('n', count(*)) FROM (SELECT * FROM books WHERE author_id IN (1, 3) "
        "ORDER BY title)",
        [
            [
                ["Norwegian Wood", "Things Fall Apart"],
                {"Norwegian Wood": 15.95, "Things Fall Apart": 10.99},
                {"n": 2},
            ]
        ],
        [
            [
                '["Norwegian Wood","Things Fall Apart"]',
                '{"Norwegian Wood":15.95,"Things Fall Apart":10.99}',
                '{"n":2}',
            ]
        ],
    ),
    Analytic(
        "regex-operators",
        "SELECT title, title ~ 'o{2}' , regexp_replace(title, '\\s+', '_', 'g'), "
        "substring(title from '[A-Z][a-z]+$') FROM books WHERE title ~* '^(a|n)' "
        "ORDER BY title",
        None,
        [
            ["A Wizard of Earthsea", False, "A_Wizard_of_Earthsea", "Earthsea"],
            ["Norwegian Wood", True, "Norwegian_Wood", "Wood"],
        ],
    ),
    Analytic(
        "ordered-string-and-array-agg",
        "SELECT string_agg(name, '; ' ORDER BY name DESC), array_agg(id ORDER BY id DESC) "
        "FROM authors",
        None,
        [["Ursula K. Le Guin; Haruki Murakami; Chinua Achebe", [3, 2, 1]]],
    ),
    Analytic(
        "group-concat",
        "SELECT string_agg(name, '; ') FROM (SELECT name FROM authors ORDER BY name) s",
        "SELECT group_concat(name, '; ') FROM (SELECT name FROM authors ORDER BY name)",
        [["Chinua Achebe; Haruki Murakami; Ursula K. Le Guin"]],
    ),
    Analytic(
        "date-trunc",
        "SELECT date_trunc('decade', published)::date, count(*) FROM books GROUP BY 1 ORDER BY 1",
        "SELECT strftime('%Y-%m-01', updated_at), count(*) FROM authors "
        "WHERE updated_at IS NOT NULL GROUP BY 1 ORDER BY 1",
        [["1950-01-01", 1], ["1960-01-01", 1], ["1980-01-01", 1]],
        [["2026-01-01", 2]],
    ),
    Analytic(
        "small-generate-series",
        "SELECT sum(g), sum(g * g), max(d)::date FROM generate_series(1, 10) g, "
        "generate_series('2026-01-01'::date, '2026-01-03'::date, interval '1 day') d",
        None,
        [[165, 1155, "2026-01-03"]],
    ),
    Analytic(
        "allowed-volatile-functions",
        "SELECT random() < 1, clock_timestamp() IS NOT NULL, "
        "length(gen_random_uuid()::text), pg_total_relation_size('books') > 0",
        "SELECT random() IS NOT NULL, 1, 36, 1",
        [[True, True, 36, True]],
        [[1, 1, 36, 1]],
    ),
    Analytic(
        "stable-functions",
        "SELECT now() >= '2026-01-01', current_setting('transaction_read_only'), "
        "to_char(1234.5, 'FM9999.00'), age('2026-03-01'::date, '2026-01-01'::date)::text",
        None,
        [[True, "on", "1234.50", "2 mons"]],
    ),
]
