"""Configuration: sources, precedence, secrets and fail-fast validation."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mcp_fileserver.config import ConfigFile
from mcp_fileserver.errors import ConfigError
from tests.conftest import REPO, make_settings


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    names = ("toml", "dotenv", "env", "cli")
    made = {name: tmp_path / f"root-{name}" for name in names}
    for path in made.values():
        path.mkdir()
    return made


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_file_matches_code() -> None:
    documented = tomllib.loads((REPO / "config" / "defaults.toml").read_text())
    assert ConfigFile.model_validate(documented) == ConfigFile()


def test_example_file_is_valid_schema() -> None:
    example = tomllib.loads((REPO / "config" / "example.toml").read_text())
    parsed = ConfigFile.model_validate(example)
    assert "bookshop" in parsed.databases


def test_precedence_cli_env_dotenv_toml(tmp_path: Path, dirs: dict[str, Path]) -> None:
    config = write_config(tmp_path / "c.toml", f'[files]\nallowed_dirs = ["{dirs["toml"]}"]\n')
    (tmp_path / ".env").write_text(f"MCP_FILESERVER_ALLOWED_DIRS={dirs['dotenv']}\n")

    assert make_settings(config=config).allowed_dirs == (dirs["dotenv"].resolve(),)
    env = {"MCP_FILESERVER_ALLOWED_DIRS": str(dirs["env"])}
    assert make_settings(config=config, env=env).allowed_dirs == (dirs["env"].resolve(),)
    assert make_settings(config=config, env=env, allow=[dirs["cli"]]).allowed_dirs == (
        dirs["cli"].resolve(),
    )
    (tmp_path / ".env").unlink()
    assert make_settings(config=config).allowed_dirs == (dirs["toml"].resolve(),)


def test_env_file_is_never_searched_upward(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / ".env").write_text(f"MCP_FILESERVER_ALLOWED_DIRS={tmp_path}\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    with pytest.raises(ConfigError, match="nothing to serve"):
        make_settings()


def test_relative_allowed_dirs_resolve_against_config_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    config = write_config(tmp_path / "c.toml", '[files]\nallowed_dirs = ["data"]\n')
    assert make_settings(config=config).allowed_dirs == ((tmp_path / "data").resolve(),)


def test_allowed_dirs_are_real_paths(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert make_settings(allow=[tmp_path / "link"]).allowed_dirs == (real.resolve(),)


@pytest.mark.parametrize(
    ("make_dir", "message"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "not a directory"),
        (lambda p: Path("/"), "filesystem root"),
    ],
)
def test_bad_allowed_dir_is_refused(tmp_path: Path, make_dir, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_settings(allow=[make_dir(tmp_path)])


def test_nothing_configured_is_refused() -> None:
    with pytest.raises(ConfigError, match="nothing to serve"):
        make_settings()


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", "[files]\nmax_read_byte = 5\n")
    with pytest.raises(ConfigError, match=r"unknown key 'files\.max_read_byte'"):
        make_settings(config=config, allow=[tmp_path])


def test_invalid_value_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", "[files]\nmax_read_bytes = 0\n")
    with pytest.raises(ConfigError, match=r"files\.max_read_bytes"):
        make_settings(config=config, allow=[tmp_path])


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p / "absent.toml", "does not exist"),
        (lambda p: p, "is a directory"),
        (lambda p: write_config(p / "bad.toml", "[files\n"), "not valid TOML"),
    ],
)
def test_unreadable_config_is_refused(tmp_path: Path, setup, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_settings(config=setup(tmp_path), allow=[tmp_path])


def test_literal_secret_in_toml_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", '[audit]\nhmac_key = "hunter2hunter2"\n')
    with pytest.raises(ConfigError, match=r"literal secret.*\$\{VAR\}"):
        make_settings(config=config, allow=[tmp_path])


def test_literal_password_in_url_is_refused(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml",
        '[databases.pg]\nurl = "postgresql://app:hunter2@localhost/db"\n',
    )
    with pytest.raises(ConfigError, match="literal password"):
        make_settings(config=config, allow=[tmp_path])
    with pytest.raises(ConfigError, match="literal password"):
        make_settings(allow=[tmp_path], db=["pg=postgresql://app:hunter2@localhost/db"])


def test_secret_resolution_sources_and_masking(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "run-secrets"
    secrets_dir.mkdir()
    (secrets_dir / "FROM_FILE").write_text("file-secret-value\n")
    (tmp_path / ".env").write_text("FROM_DOTENV=dotenv-secret-value\n")
    config = write_config(
        tmp_path / "c.toml",
        f'[secrets]\ndir = "{secrets_dir}"\n'
        '[audit]\nhmac_key = "${FROM_FILE}"\n'
        '[databases.a]\nurl = "postgresql://u:${FROM_ENV}@h/db"\n'
        '[databases.b]\nurl = "postgresql://u@h/db"\npassword = "${FROM_DOTENV}"\n',
    )
    settings = make_settings(config=config, allow=[tmp_path], env={"FROM_ENV": "env-secret-value"})
    assert settings.hmac_key == "file-secret-value"
    assert settings.database("a").password == "env-secret-value"
    assert settings.database("b").password == "dotenv-secret-value"
    described = repr(settings.describe()) + repr(settings)
    for secret in ("file-secret-value", "env-secret-value", "dotenv-secret-value"):
        assert secret in settings.secrets.values
        assert secret not in described
        assert settings.secrets.mask(f"x{secret}y") == "x***y"


def test_unresolved_reference_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", '[audit]\nhmac_key = "${NOPE_NOT_SET}"\n')
    with pytest.raises(ConfigError, match=r"\$\{NOPE_NOT_SET\} is not set"):
        make_settings(config=config, allow=[tmp_path])


def test_database_urls(tmp_path: Path) -> None:
    db_file = tmp_path / "x.db"
    db_file.write_bytes(b"")
    config = write_config(tmp_path / "c.toml", '[databases.rel]\nurl = "sqlite:///x.db"\n')
    settings = make_settings(
        config=config,
        db=[f"abs=sqlite:///{db_file}", "pg=postgresql://reader@127.0.0.1:6543/shop"],
        env={"MCP_FILESERVER_DB_ENVDB": "postgresql://u@h/d"},
    )
    assert settings.database("rel").path == db_file.resolve()
    assert settings.database("abs").path == db_file.resolve()
    pg = settings.database("pg")
    assert (pg.host, pg.port, pg.user, pg.dbname) == ("127.0.0.1", 6543, "reader", "shop")
    assert settings.database("envdb").engine == "postgresql"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("noequals", "expected NAME=URL"),
        ("bad name=sqlite:///x.db", "database name"),
        ("m=oracle://h/db", "unsupported URL scheme"),
        ("s=sqlite:///does-not-exist.db", "does not exist"),
        ("s=sqlite:///:memory:", "in-memory"),
    ],
)
def test_bad_database_spec_is_refused(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_settings(allow=[tmp_path], db=[spec])


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_fileserver", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def test_cli_config_error_is_one_line_exit_2(tmp_path: Path) -> None:
    for args in (("--allow", "/"), ("check",), ("check", "--allow", str(tmp_path / "nope"))):
        proc = run_cli(*args)
        assert proc.returncode == 2, proc
        assert proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mcp-fileserver: error: "), proc.stderr


def test_cli_check_prints_masked_settings(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml", '[databases.pg]\nurl = "postgresql://u:${PGPW}@127.0.0.1/db"\n'
    )
    proc = run_cli(
        "check",
        "--config",
        str(config),
        "--allow",
        str(tmp_path),
        "--sandbox",
        "off",
        env={"PGPW": "s3cret-pg-password"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "s3cret-pg-password" not in proc.stdout + proc.stderr
    assert str(tmp_path.resolve()) in proc.stdout


def test_cli_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("mcp-fileserver ")
