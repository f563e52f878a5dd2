"""Run Python code in a child process confined by the exact sandbox the server applies.

The child parses the given command line with the server's own parser, loads the
settings the server would load, calls `apply_sandbox` (which computes the ruleset with
`compute_ruleset`), then runs the test's code. No hook exists in the server for this:
the child uses the public sandbox API and then plain `open()`, `socket`, `os`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mcp_fileserver.sandbox import landlock

ABI = landlock.abi_version()

_PRELUDE = """
import json, os, socket, sys
from mcp_fileserver.cli import build_parser, cli_options
from mcp_fileserver.config import load_settings
from mcp_fileserver.errors import ConfigError
from mcp_fileserver.sandbox import apply_sandbox, landlock, process

out = {}

def attempt(fn):
    try:
        fn()
        return "ok"
    except PermissionError:
        return "denied"
    except OSError as exc:
        return f"errno {exc.errno}"

def read(path):
    with open(path, "rb") as fh:
        return fh.read()

def write(path, data=b"x", mode="ab"):
    with open(path, mode) as fh:
        fh.write(data)

{before}
settings = load_settings(cli_options(build_parser().parse_args(json.loads(sys.argv[1]))))
try:
    report = apply_sandbox(settings)
except ConfigError as exc:
    print(json.dumps({"error": str(exc)}))
    raise SystemExit(0)
out["report"] = report.as_dict()
"""


def run_sandboxed(
    args: Sequence[str],
    body: str,
    *,
    before: str = "",
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> dict[str, Any]:
    """Apply the server's sandbox for `args` in a child, run `body`, return its `out`."""
    code = (
        _PRELUDE.replace("{before}", textwrap.dedent(before))
        + textwrap.dedent(body)
        + "\nprint(json.dumps(out))\n"
    )
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    child_env["MCP_FILESERVER_ALLOW_ROOT"] = "1"
    child_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env,
        cwd=str(cwd) if cwd else None,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])
