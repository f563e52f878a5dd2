"""Fixtures for the file tests: every test runs against both resolution mechanisms."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_fileserver.files import confine
from mcp_fileserver.files.confine import Method
from tests.files.helpers import Workspace, make_workspace

KERNEL_METHODS = [Method.OPENAT2, Method.WALK]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return make_workspace(tmp_path)


@pytest.fixture(params=KERNEL_METHODS, ids=lambda m: m.value)
def method(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Method:
    """openat2 and the O_NOFOLLOW walk; servers built in the test use this mechanism."""
    chosen: Method = request.param
    monkeypatch.setattr(confine, "default_method", lambda: chosen)
    return chosen
