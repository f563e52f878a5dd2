"""The second wall: the server process confines itself with the kernel after startup.

`apply_sandbox(settings)` turns on Landlock (files, TCP, IPC scoping), no_new_privs and
a zero core-dump limit; `plan_sandbox(settings)` says what it would do (for `check`);
`refuse_root(settings)` stops a root start unless explicitly allowed. The policy itself
is `compute_ruleset`, a pure function of the settings and the runtime. See
docs/sandbox.md for the guarantees and their limits.
"""

from mcp_fileserver.sandbox.enforce import ROOT_WARNING, apply_sandbox, plan_sandbox, refuse_root
from mcp_fileserver.sandbox.report import SandboxReport
from mcp_fileserver.sandbox.ruleset import PathRule, Ruleset, RuntimeFacts, compute_ruleset

__all__ = [
    "ROOT_WARNING",
    "PathRule",
    "Ruleset",
    "RuntimeFacts",
    "SandboxReport",
    "apply_sandbox",
    "compute_ruleset",
    "plan_sandbox",
    "refuse_root",
]
