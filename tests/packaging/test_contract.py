"""The three Claude Desktop examples, print-config, the Dockerfile, the spec, the Makefile
and docs/deploy.md agree with what the project really provides, so none of them rots."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mcp_fileserver import cli, print_config
from tests.packaging import contract
from tests.packaging.artifacts import REPO

EXAMPLES = REPO / "config" / "claude_desktop"
DEPLOY_DOC = REPO / "docs" / "deploy.md"


@pytest.mark.parametrize("mode", print_config.MODES)
def test_claude_desktop_example(mode: str) -> None:
    config = json.loads((EXAMPLES / f"{mode}.json").read_text())
    entry = contract.single_entry(config)
    contract.CHECKS[mode](entry)


def test_examples_are_exactly_the_three_modes() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.json")) == sorted(print_config.MODES)


def test_docker_example_uses_the_image_tag_make_builds() -> None:
    entry = contract.single_entry(json.loads((EXAMPLES / "docker.json").read_text()))
    run = contract.split_docker_run(entry["args"])
    assert run.image == print_config.DOCKER_IMAGE
    makefile = contract.MAKEFILE.read_text()
    assert re.search(r"^IMAGE\s+\?= mcp-fileserver:\$\(VERSION\)$", makefile, re.M)


def test_print_config_flags_are_the_documented_strict_flags() -> None:
    assert list(print_config.DOCKER_STRICT_FLAGS) == contract.STRICT_RUN


def test_dockerfile_contract() -> None:
    (user,) = contract.dockerfile_instruction("USER")
    assert user == print_config.DOCKER_USER
    assert user.split(":")[0] != "0"
    (entrypoint,) = contract.dockerfile_instruction("ENTRYPOINT")
    argv = json.loads(entrypoint)
    assert argv[-1] == f"/app/{contract.spec_app_name()}"
    assert argv[0] in ("/usr/bin/tini", "/sbin/tini"), "an init forwards signals"
    env = contract.dockerfile_env()
    assert env["MCP_FILESERVER_LOG_DIR"] == print_config.DOCKER_LOGS
    assert contract.dockerfile_instruction("FROM") == [], "one FROM line per stage split"
    text = contract.DOCKERFILE.read_text()
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert default and re.fullmatch(r"python:3\.1[1-9][\w.-]*-slim-bookworm", default.group(1))
    assert re.search(r"^FROM scratch$", text, re.M), "the runtime stage starts empty"


def test_spec_builds_the_console_script_name() -> None:
    assert contract.spec_app_name() == contract.console_script_name()
    assert Path("dist", "mcp-fileserver", "mcp-fileserver") == print_config.BINARY_RELATIVE_PATH
    makefile = contract.MAKEFILE.read_text()
    assert "--distpath dist \\" in makefile, "make binary must build into dist/"


def test_deploy_doc_shows_the_strict_run_line_and_every_mode() -> None:
    text = re.sub(r"\s*\\\n\s*", " ", DEPLOY_DOC.read_text())
    assert "docker run " + " ".join(contract.STRICT_RUN) in text
    for mode in print_config.MODES:
        assert f"print-config claude --mode {mode}" in text
    for target in ("make binary", "make binary-onefile", "make docker"):
        assert target in text


def run_print_config(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code = cli.main(["print-config", "claude", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in __import__("os").environ if k.startswith("MCP_FILESERVER_")]:
        monkeypatch.delenv(key)
    (tmp_path / "docs").mkdir()
    (tmp_path / "more").mkdir()
    (tmp_path / "docs" / "app.db").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_print_config_installed(capsys, workspace: Path) -> None:
    config = run_print_config(capsys, "--allow", "docs", "--db", "app=sqlite:///docs/app.db")
    parsed = contract.check_installed_entry(contract.single_entry(config))
    assert parsed.allow == [str(workspace / "docs")]
    assert parsed.db == [f"app=sqlite:///{workspace / 'docs' / 'app.db'}"]


def test_print_config_binary(capsys, workspace: Path) -> None:
    fake = workspace / "opt" / "mcp-fileserver" / "mcp-fileserver"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    config = run_print_config(
        capsys, "--mode", "binary", "--executable", str(fake), "--allow", "docs"
    )
    entry = contract.single_entry(config)
    assert entry["command"] == str(fake)
    contract.check_binary_entry(entry)


def test_print_config_binary_missing_is_a_clear_error(capsys, workspace: Path) -> None:
    code = cli.main(
        ["print-config", "claude", "--mode", "binary", "--executable", "nope", "--allow", "docs"]
    )
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "make binary" in err and "Traceback" not in err


def test_print_config_docker_mounts_every_path(capsys, workspace: Path) -> None:
    config = run_print_config(
        capsys,
        "--mode",
        "docker",
        "--allow",
        "docs",
        "--allow",
        "more",
        "--db",
        "app=sqlite:///docs/app.db",
    )
    run = contract.check_docker_entry(contract.single_entry(config))
    assert run.values("-v") == [
        f"{workspace / 'docs'}:/data/docs:ro",
        f"{workspace / 'more'}:/data/more:ro",
        f"{workspace / 'docs' / 'app.db'}:/db/app.db:ro",
        "mcp-fileserver-logs:/logs",
    ]
    assert run.command == [
        "--allow",
        "/data/docs",
        "--allow",
        "/data/more",
        "--db",
        "app=sqlite:////db/app.db",
    ]


def test_print_config_docker_keeps_network_only_for_postgres(
    capsys, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASS_FOR_TEST", "s3cret-value-1234")
    url = "postgresql://reader:${PGPASS_FOR_TEST}@db.internal:5432/shop"
    code = cli.main(["print-config", "claude", "--mode", "docker", "--db", f"shop={url}"])
    out, err = capsys.readouterr()
    assert code == 0, err
    entry = contract.single_entry(json.loads(out))
    run = contract.check_docker_entry(entry, network=True)
    assert "--network" not in run.flags()
    assert f"shop={url}" in run.command
    assert "s3cret-value-1234" not in out + err, "a secret value must never be printed"
    assert "PGPASS_FOR_TEST" in err, "the operator is told which variable to provide"


def test_print_config_config_file_is_absolute(capsys, workspace: Path) -> None:
    (workspace / "server.toml").write_text('[files]\nallowed_dirs = ["docs"]\n')
    config = run_print_config(capsys, "--config", "server.toml")
    parsed = contract.check_installed_entry(contract.single_entry(config))
    assert parsed.config == str(workspace / "server.toml")
    docker = run_print_config(capsys, "--mode", "docker", "--config", "server.toml")
    run = contract.check_docker_entry(contract.single_entry(docker))
    assert f"{workspace / 'server.toml'}:/config/config.toml:ro" in run.values("-v")
    assert run.command[:2] == ["--config", "/config/config.toml"]


def test_print_config_without_anything_to_serve_fails(capsys, workspace: Path) -> None:
    code = cli.main(["print-config", "claude"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "nothing to serve" in err


def test_print_config_help_lists_modes() -> None:
    parser = cli.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["print-config", "claude", "--mode", "podman"])


@pytest.mark.parametrize("as_root", [True, False])
def test_print_config_as_root_says_the_snippet_would_refuse_root(
    capsys, workspace: Path, monkeypatch: pytest.MonkeyPatch, as_root: bool
) -> None:
    monkeypatch.setattr(print_config, "running_as_root", lambda: as_root)
    assert cli.main(["print-config", "claude", "--allow", "docs"]) == 0
    _, err = capsys.readouterr()
    assert ("print-config as root" in err) is as_root
    assert cli.main(["print-config", "claude", "--allow", "docs", "--allow-root"]) == 0
    _, err = capsys.readouterr()
    assert "print-config as root" not in err  # the snippet carries --allow-root: it starts
