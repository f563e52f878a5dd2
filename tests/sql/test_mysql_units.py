"""MariaDB/MySQL without a server: URL forms and settings, literals for bound values."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_fileserver.errors import ConfigError, InvalidRequest
from mcp_fileserver.sql.guard import Dialect, check_read_only
from mcp_fileserver.sql.mysql_literal import literal
from mcp_fileserver.sql.mysql_params import bind_parameters
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("url", "engine"),
    [
        ("mariadb://reader:${PW}@db.internal:3307/shop", "mariadb"),
        ("mariadb+pymysql://reader:${PW}@db.internal:3307/shop", "mariadb"),
        ("mysql://reader:${PW}@db.internal:3307/shop", "mysql"),
        ("MySQL+PyMySQL://reader:${PW}@db.internal:3307/shop", "mysql"),
    ],
)
def test_url_forms(tmp_path: Path, url: str, engine: str) -> None:
    settings = make_settings(db=[f"m={url}"], env={"PW": "s3cret-value"}, log_dir=tmp_path)
    db = settings.database("m")
    assert db is not None
    assert (db.engine, db.host, db.port, db.user, db.dbname, db.password) == (
        engine,
        "db.internal",
        3307,
        "reader",
        "shop",
        "s3cret-value",
    )
    assert "s3cret-value" not in repr(settings.describe())
    assert settings.describe()["databases"][0]["url"].startswith(f"{engine}://reader:***@")


def test_port_default_tls_options_and_socket(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        "[databases.m]\n"
        'url = "mariadb://reader@db/shop?ssl_ca=/etc/ca.pem&ssl_verify_identity=true"\n'
        'password = "${PW}"\n'
        "allow_privileged_role = true\n"
        "[databases.s]\n"
        'url = "mysql://reader@/shop?unix_socket=/run/mysqld/mysqld.sock"\n'
    )
    settings = make_settings(config=config, env={"PW": "pw-value-123"}, log_dir=tmp_path)
    m, s = settings.database("m"), settings.database("s")
    assert m is not None and s is not None
    assert m.port == 3306 and m.password == "pw-value-123" and m.allow_privileged_role
    assert dict(m.options) == {"ssl_ca": "/etc/ca.pem", "ssl_verify_identity": "true"}
    assert dict(s.options) == {"unix_socket": "/run/mysqld/mysqld.sock"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mariadb://reader:hunter2@db/shop", "literal password"),
        ("mariadb://reader@db/shop?ssl_key_password=hunter2", "literal secret"),
        ("mariadb://reader@db/shop?init_command=SET+GLOBAL+x%3D1", "unknown URL parameter"),
        ("mariadb://reader@db/shop?local_infile=1", "unknown URL parameter"),
        ("mariadb://reader@db/shop?ssl_verify_cert=maybe", "true or false"),
        ("mariadb://reader@db/", "names its database"),
        ("mariadb://reader@/shop", "needs a host"),
        ("mysql://reader@db:port/shop", "not a number"),
    ],
)
def test_bad_urls_are_refused_clearly(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_settings(db=[f"m={url}"], log_dir=tmp_path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "NULL"),
        (True, "TRUE"),
        (-5, "(-5)"),
        (7, "7"),
        (-0.5, "(-0.5)"),
        ("it's", "'it''s'"),
        ("a\\b", "_utf8mb4 X'615c62'"),
        ("nul\x00", "_utf8mb4 X'6e756c00'"),
        ("naïve", "'naïve'"),
    ],
)
def test_literals_read_the_same_under_every_sql_mode(value: object, expected: str) -> None:
    assert literal(value) == expected


def test_bound_text_is_what_the_guard_judges() -> None:
    hostile = "x' UNION SELECT LOAD_FILE('/etc/passwd') -- "
    final = bind_parameters(
        "SELECT name FROM t WHERE name = %s AND n = 1-%s", [hostile, -1], literal
    )
    assert final == (
        "SELECT name FROM t WHERE name =  'x'' UNION SELECT LOAD_FILE(''/etc/passwd'') -- '  "
        "AND n = 1- (-1) "
    )
    check_read_only(final, Dialect.MYSQL)  # one string, not a UNION
    with pytest.raises(InvalidRequest):
        literal(float("nan"))
    with pytest.raises(InvalidRequest):
        literal([1, 2])


@pytest.mark.parametrize(
    ("scheme", "engine", "driver"),
    [
        ("mariadb", "mariadb", "mariadbconnector"),
        ("mariadb+mariadbconnector", "mariadb", "mariadbconnector"),
        ("mariadb+pymysql", "mariadb", "pymysql"),
        ("mysql", "mysql", "mariadbconnector"),
        ("mysql+pymysql", "mysql", "pymysql"),
    ],
)
def test_the_scheme_picks_the_engine_and_the_driver(
    tmp_path: Path, scheme: str, engine: str, driver: str
) -> None:
    settings = make_settings(db=[f"m={scheme}://reader@db/shop"], log_dir=tmp_path)
    (database,) = settings.databases
    assert (database.engine, database.driver) == (engine, driver)


def test_a_key_password_needs_pymysql(tmp_path: Path) -> None:
    url = "mariadb://reader@db/shop?ssl_key=${KEY_FILE}&ssl_key_password=${KEY_PW}"
    with pytest.raises(ConfigError, match=r"needs the PyMySQL driver: write mariadb\+pymysql"):
        make_settings(db=[f"m={url}"], log_dir=tmp_path, env={"KEY_PW": "x", "KEY_FILE": "/k.pem"})
    pymysql_url = url.replace("mariadb://", "mariadb+pymysql://")
    (database,) = make_settings(
        db=[f"m={pymysql_url}"], log_dir=tmp_path, env={"KEY_PW": "x", "KEY_FILE": "/k.pem"}
    ).databases
    assert dict(database.options)["ssl_key_password"] == "x"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, {}),
        (
            {"ssl_ca": "/ca.pem", "ssl_verify_identity": "true"},
            {"ssl": True, "ssl_ca": "/ca.pem", "ssl_verify_cert": True},
        ),
        ({"ssl_verify_cert": "false"}, {"ssl": True, "ssl_verify_cert": False}),
        (
            {"ssl_cert": "/c.pem", "ssl_key": "/k.pem"},
            {"ssl": True, "ssl_cert": "/c.pem", "ssl_key": "/k.pem", "ssl_verify_cert": False},
        ),
    ],
)
def test_the_c_driver_maps_the_tls_options(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, str], expected: dict[str, object]
) -> None:
    """Any ssl_* option makes TLS required, as PyMySQL reads them; verification on when
    ssl_verify_cert or ssl_verify_identity says so; nothing else reaches the driver."""
    import mariadb

    from mcp_fileserver.sql import mysql_drivers

    seen: dict[str, object] = {}

    def fake_connect(**kwargs: object) -> object:
        seen.update(kwargs)
        raise mariadb.OperationalError("stop here")

    monkeypatch.setattr(mariadb, "connect", fake_connect)
    driver = mysql_drivers.MariaDBConnectorDriver()
    target = mysql_drivers.Target(
        host="localhost", port=3306, user="u", password="p", database="shop",
        connect_timeout=2, read_timeout=3, write_timeout=3, program_name="x", options=options,
    )  # fmt: skip
    with pytest.raises(mariadb.OperationalError):
        driver.connect(target)
    tls = {k: v for k, v in seen.items() if k.startswith("ssl")}
    assert tls == expected
    assert seen["host"] in ("127.0.0.1", "::1")  # "localhost" would mean the UNIX socket
    assert seen["local_infile"] is False and seen["client_flag"] == 0
    assert "default_file" not in seen and "unix_socket" not in seen
