"""Modes, root refusal and the `check` plan: the paths that stop before any change to
the process, so they run in-process."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mcp_fileserver.errors import ConfigError
from mcp_fileserver.sandbox import apply_sandbox, plan_sandbox, process, refuse_root
from mcp_fileserver.sandbox import landlock as ll
from tests.conftest import make_settings


def test_off_changes_nothing_and_says_so(tmp_path: Path) -> None:
    report = apply_sandbox(make_settings(allow=[tmp_path], sandbox="off"))
    assert report.status == "off" and not report.active
    assert report.not_enforced == ("disabled by configuration (sandbox mode off)",)
    assert not process.no_new_privs()  # the test process itself was left alone


@pytest.mark.parametrize("mode", ["on", "require"])
def test_other_platforms_are_off_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setattr(process, "is_linux", lambda: False)
    settings = make_settings(allow=[tmp_path], sandbox=mode)
    if mode == "require":
        with pytest.raises(ConfigError, match="needs Linux"):
            apply_sandbox(settings)
        return
    report = apply_sandbox(settings)
    assert report.status == "off"
    assert "the sandbox uses Linux Landlock" in report.not_enforced[0]
    assert plan_sandbox(settings).status == "off"


def test_require_without_landlock_fails_before_touching_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ll, "abi_version", lambda: 0)
    settings = make_settings(allow=[tmp_path], sandbox="require", log_dir=tmp_path / "l")
    with pytest.raises(ConfigError, match="does not offer Landlock") as info:
        apply_sandbox(settings)
    assert "\n" not in str(info.value)
    assert not process.no_new_privs()
    assert not (tmp_path / "l").exists()


def test_require_with_threads_running_fails_before_touching_the_process(
    tmp_path: Path,
) -> None:
    if ll.abi_version() == 0:
        pytest.skip("the kernel offers no Landlock")
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        settings = make_settings(allow=[tmp_path], sandbox="require")
        with pytest.raises(ConfigError, match=r"thread\(s\) started before the sandbox"):
            apply_sandbox(settings)
    finally:
        stop.set()
        thread.join()
    assert not process.no_new_privs()


def test_root_is_refused_unless_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "running_as_root", lambda: True)
    with pytest.raises(ConfigError, match=r"refusing to run as root.*--allow-root"):
        refuse_root(make_settings(allow=[tmp_path]))
    allowed = make_settings(allow=[tmp_path], env={"MCP_FILESERVER_ALLOW_ROOT": "1"})
    assert refuse_root(allowed) is True
    monkeypatch.setattr(process, "running_as_root", lambda: False)
    assert refuse_root(make_settings(allow=[tmp_path])) is False


def test_plan_lists_rules_and_features_without_applying(tmp_path: Path) -> None:
    settings = make_settings(
        allow=[tmp_path],
        log_dir=tmp_path / "logs",
        db=["pg=postgresql://u@127.0.0.1:6432/app"],
        sandbox="on",
    )
    plan = plan_sandbox(settings).as_dict()
    assert plan["landlock_abi"] == ll.abi_version()
    paths = {rule["path"]: rule for rule in plan["ruleset"]["paths"]}
    assert paths[str(tmp_path)]["access"] == ["read_file", "read_dir"]
    assert paths[str(tmp_path)]["reason"] == "allowed directory"
    assert "write_file" in paths[str(tmp_path / "logs")]["access"]
    assert plan["ruleset"]["tcp_connect_ports"] == [6432]
    assert plan["ruleset"]["tcp_bind_ports"] == []
    assert str(tmp_path / "logs") not in {p["path"] for p in plan["skipped_paths"]}
    assert not (tmp_path / "logs").exists()  # planning changes nothing
    assert not process.no_new_privs()
    if ll.abi_version() >= 4:
        assert plan["status"] == "planned"
        assert any(item.startswith("TCP") for item in plan["enforced"])
