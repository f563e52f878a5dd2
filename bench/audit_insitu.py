"""Issue 4, a profiler rather than a benchmark: where the audit's cost goes, in the server.

`bench_audit.py` gives the client's view: p50 and throughput with auditing on and off.
Between two runs of it on this 2-core VM the difference moves by a few points, too much
to judge a change of 5 us. This script times the audited servers from the inside, under
the same interleaving (several processes per configuration, shuffled blocks of calls):

- **own**: the audit middleware's own time per call (everything in `on_call_tool`
  except the tool), median per process. Steady to about 1 us between processes.
- **server p50**: from a request's bytes arriving on stdin to its response being handed
  to the stdout pipe, for audited and unaudited servers alike.
- **segments**: the same span cut at the tool function's entry and exit: A (parse,
  dispatch, middleware before the tool), B (the tool, with its thread hop), C (result,
  middleware after the tool, serialisation).

It copies the package to a temporary folder and inserts the timers there (exact text
replacements; it stops if the source no longer matches), so the tree under test is
never touched. Named variants apply further replacements to an audited copy, to size a
part of the audit by leaving it out (`--variant`, repeatable; see VARIANTS). They are
measurements only: several are unsafe to ship. `spin` replaces the audit's work by a
busy wait of the same length, which shows how much of the client's delta a pure delay
of that size causes.

    make audit-insitu   # or: .venv/bin/python bench/audit_insitu.py --variant no-record-write
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import statistics
import tempfile
import time
from pathlib import Path

from common import (
    INSTALLED_COMMAND,
    REPO,
    make_file_workspace,
    markdown_table,
    ours_env,
    report,
    write_audit_config,
)
from rpc import Server

READ_TOOL = "read_text_file"
Patch = tuple[str, str, str]  # (file under mcp_fileserver/, old text, new text)

# The timers. stdio: a request's arrival and its response's departure, and SIGUSR1 to
# print the medians (and start afresh). tools: the tool function's entry and exit.
# middleware: its own time before and after the tool.
_TIMERS: list[Patch] = [
    (
        "stdio.py",
        "class LineReader(asyncio.Protocol):",
        """import time as _t
import statistics as _st
import signal as _sig
_IN = [0.0]
_TOOL = [0.0, 0.0]
_SPANS: list = []
_OWN: list = []
_SPIN = [float(us) / 1e6 for us in os.environ.get("AUDIT_INSITU_SPIN_US", "10,47").split(",")]


def _dump(*_args):
    if _SPANS:
        med = [_st.median(s[i] for s in _SPANS) * 1e6 for i in range(4)]
        os.write(2, ("INSITU-SERVER %.2f %.2f %.2f %.2f\\n" % tuple(med)).encode())
    if _OWN:
        med = [_st.median(s[i] for s in _OWN) * 1e6 for i in range(3)]
        os.write(2, ("INSITU-OWN %.2f %.2f %.2f\\n" % tuple(med)).encode())
    _SPANS.clear()
    _OWN.clear()


_sig.signal(_sig.SIGUSR1, _dump)


class LineReader(asyncio.Protocol):""",
    ),
    (
        "stdio.py",
        "    def data_received(self, data: bytes) -> None:\n",
        "    def data_received(self, data: bytes) -> None:\n        _IN[0] = _t.perf_counter()\n",
    ),
    (
        "stdio.py",
        '        self._transport.write(text.encode("utf-8"))\n',
        '        self._transport.write(text.encode("utf-8"))\n'
        "        _now = _t.perf_counter()\n"
        "        if _TOOL[0] > _IN[0]:\n"
        "            _SPANS.append((_now - _IN[0], _TOOL[0] - _IN[0], _TOOL[1] - _TOOL[0],"
        " _now - _TOOL[1]))\n",
    ),
    (
        "files/tools.py",
        "        found = await confined(ctx, service.read_text_file, path, head=head, tail=tail)\n"
        "        return answer(found, answers.text_file)\n",
        "        from mcp_fileserver import stdio as _sd\n"
        "        _sd._TOOL[0] = _sd._t.perf_counter()\n"
        "        found = await confined(ctx, service.read_text_file, path, head=head, tail=tail)\n"
        "        _r = answer(found, answers.text_file)\n"
        "        _sd._TOOL[1] = _sd._t.perf_counter()\n"
        "        return _r\n",
    ),
    (
        "audit/middleware.py",
        "        started = time.perf_counter()\n",
        "        started = time.perf_counter()\n        _t2 = 0.0\n",
    ),
    (
        "audit/middleware.py",
        "                result = await call_next(context)\n",
        "                _t1 = time.perf_counter()\n"
        "                result = await call_next(context)\n"
        "                _t2 = time.perf_counter()\n",
    ),
    (
        "audit/middleware.py",
        "            return result\n        finally:\n            self.in_flight -= 1\n",
        "            if _t2:\n"
        "                from mcp_fileserver import stdio as _sd\n"
        "                _t3 = time.perf_counter()\n"
        "                _sd._OWN.append((_t1 - started + _t3 - _t2, _t1 - started, _t3 - _t2))\n"
        "            return result\n        finally:\n            self.in_flight -= 1\n",
    ),
]

VARIANTS: dict[str, list[Patch]] = {
    # No monitor scan of the arguments (the lockout check stays).
    "no-scan": [
        ("audit/middleware.py", "                    findings = monitor.scan(arguments)\n", "")
    ],
    # The record is built but not chained, hashed or written.
    "no-record-write": [("audit/log.py", "        self.sink.write(head)\n", "")],
    # Chained and written, without the SHA-256.
    "no-hash": [
        ("audit/records.py", '    digest = hasher(body.encode("ascii"))', '    digest = "0" * 64')
    ],
    # Written without the folder lock and the stat that follows other processes' writes.
    "no-lock-stat": [
        (
            "audit/sink.py",
            "            self._lock_file()\n            try:\n",
            "            try:\n",
        ),
        (
            "audit/sink.py",
            "            finally:\n                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)\n\n"
            "    @property",
            "            finally:\n                pass\n\n    @property",
        ),
        ("audit/sink.py", "                self._sync_with_disk()\n", ""),
    ],
    # The record written just after the response instead of before it: what a design
    # that gives up "no result before its record" would cost (measured, not proposed).
    "write-after-response": [
        (
            "audit/log.py",
            "        self.sink.write(head)\n",
            "        from mcp_fileserver import stdio as _sd\n"
            "        _sd._AFTER.append((self.sink, head))\n",
        ),
        ("stdio.py", "_SPANS: list = []\n", "_SPANS: list = []\n_AFTER: list = []\n"),
        (
            "stdio.py",
            "        _now = _t.perf_counter()\n",
            "        _now = _t.perf_counter()\n"
            "        while _AFTER:\n"
            "            _sink, _head = _AFTER.pop(0)\n"
            "            _sink.write(_head)\n",
        ),
    ],
    # The audit's work replaced by a busy wait of about the same length (see --spin-us).
    "spin": [
        (
            "audit/middleware.py",
            "        self._require_audit()\n        self.in_flight += 1\n",
            "        if True:\n"
            "            from mcp_fileserver import stdio as _sd\n"
            "            _s0 = time.perf_counter()\n"
            "            while time.perf_counter() - _s0 < _sd._SPIN[0]:\n"
            "                pass\n"
            "            _s1 = time.perf_counter()\n"
            "            _r = await call_next(context)\n"
            "            _s2 = time.perf_counter()\n"
            "            while time.perf_counter() - _s2 < _sd._SPIN[1]:\n"
            "                pass\n"
            "            _s3 = time.perf_counter()\n"
            "            _sd._OWN.append((_s1 - _s0 + _s3 - _s2, _s1 - _s0, _s3 - _s2))\n"
            "            return _r\n"
            "        self._require_audit()\n        self.in_flight += 1\n",
        )
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=8, help="processes per configuration")
    parser.add_argument("--rounds", type=int, default=4, help="shuffled rounds of 100 calls")
    parser.add_argument("--variant", action="append", default=[], choices=sorted(VARIANTS))
    parser.add_argument(
        "--spin-us",
        default="10,47",
        help="the spin variant's busy wait before,after the tool (us); "
        "default: what the audit itself took on the 2-core VM",
    )
    parser.add_argument("--quick", action="store_true", help="two processes, one round")
    args = parser.parse_args()
    instances, rounds = max(1, args.instances), max(1, args.rounds)
    if args.quick:
        instances, rounds = 2, 1
    spin = [float(us) for us in args.spin_us.split(",")]
    if len(spin) != 2:
        parser.error("--spin-us takes two numbers: before,after")

    with tempfile.TemporaryDirectory(prefix="audit-insitu-") as tmp:
        base = Path(tmp)
        trees = {"audited": _instrumented(base / "audited", [])}
        for name in args.variant:
            trees[name] = _instrumented(base / name, VARIANTS[name])
        root = make_file_workspace(base)
        target = {"path": str(root / "note.txt")}
        specs = [(name, True, tree) for name, tree in trees.items()] * instances
        specs += [("unaudited", False, trees["audited"])] * instances
        servers: list[tuple[str, Server, Path]] = []
        try:
            for index, (name, audited, tree) in enumerate(specs):
                config = write_audit_config(
                    base / f"instance-{index}.toml", root, base / f"audit-{index}", audited=audited
                )
                stderr = base / f"stderr-{index}.log"
                server = Server(
                    [str(INSTALLED_COMMAND), "--config", str(config)],
                    env=ours_env({"PYTHONPATH": str(tree), "AUDIT_INSITU_SPIN_US": args.spin_us}),
                    stderr_path=stderr,
                )
                servers.append((name, server, stderr))
            for _, server, _ in servers:
                server.initialize()
                for _ in range(200):
                    server.call_tool(READ_TOOL, target)
                os.kill(server.proc.pid, signal.SIGUSR1)  # forget the warm-up
            client: dict[str, list[float]] = {}
            rng = random.Random(1)
            for _ in range(rounds):
                order = list(servers)
                rng.shuffle(order)
                for name, server, _ in order:
                    samples = client.setdefault(name, [])
                    for _ in range(100):
                        start = time.perf_counter()
                        server.call_tool(READ_TOOL, target)
                        samples.append(time.perf_counter() - start)
            for _, server, _ in servers:
                os.kill(server.proc.pid, signal.SIGUSR1)
                server.call_tool(READ_TOOL, target)  # lets the handler run and print
        finally:
            for _, server, _ in servers:
                server.close()
        own: dict[str, list[tuple[float, ...]]] = {}
        spans: dict[str, list[tuple[float, ...]]] = {}
        for name, _, stderr in servers:
            text = stderr.read_text(errors="replace")
            if "Traceback" in text:
                raise SystemExit(f"a {name} server failed:\n{text[-3000:]}")
            server_lines = re.findall(r"INSITU-SERVER ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)", text)
            spans.setdefault(name, []).append(tuple(map(float, server_lines[-1])))
            if name != "unaudited":
                own_lines = re.findall(r"INSITU-OWN ([\d.]+) ([\d.]+) ([\d.]+)", text)
                own.setdefault(name, []).append(tuple(map(float, own_lines[-1])))

    names = [*trees, "unaudited"]
    base_server = statistics.mean(s[0] for s in spans["unaudited"])
    base_client = statistics.median(client["unaudited"]) * 1e6
    rows = []
    for name in names:
        server_p50 = statistics.mean(s[0] for s in spans[name])
        client_p50 = statistics.median(client[name]) * 1e6
        mine = own.get(name)
        rows.append(
            [
                name,
                f"{statistics.mean(o[0] for o in mine):.1f}" if mine else "-",
                f"{min(o[0] for o in mine):.1f}-{max(o[0] for o in mine):.1f}" if mine else "-",
                f"{statistics.mean(o[1] for o in mine):.1f}" if mine else "-",
                f"{statistics.mean(o[2] for o in mine):.1f}" if mine else "-",
                f"{server_p50:.0f} ({server_p50 - base_server:+.0f})",
                " / ".join(f"{statistics.mean(s[i] for s in spans[name]):.0f}" for i in (1, 2, 3)),
                f"{client_p50:.0f} ({client_p50 - base_client:+.0f})",
            ]
        )
    body = "\n".join(
        [
            f"`{READ_TOOL}` on a 1 KiB file; {instances} processes per configuration; "
            f"{rounds} shuffled rounds of 100 calls per process after 200 warm-up calls. "
            "Times in us; own and server figures are the mean over processes of each "
            "process's median.",
            "",
            markdown_table(
                [
                    "configuration",
                    "own",
                    "own, range over processes",
                    "own before tool",
                    "own after tool",
                    "server p50 (vs unaudited)",
                    "segments A / B / C",
                    "client p50 (vs unaudited)",
                ],
                rows,
            ),
        ]
    )
    data = {
        "instances": instances,
        "rounds": rounds,
        "own_us": own,
        "server_us": spans,
        "client_p50_us": {n: statistics.median(v) * 1e6 for n, v in client.items()},
    }
    report(_title(), _command(args.variant), body, data)


def _instrumented(destination: Path, patches: list[Patch]) -> Path:
    """A copy of the package with the timers (and a variant's patches) inserted."""
    package = destination / "mcp_fileserver"
    shutil.copytree(REPO / "mcp_fileserver", package, ignore=shutil.ignore_patterns("__pycache__"))
    for relative, old, new in [*_TIMERS, *patches]:
        path = package / relative
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(
                f"{relative} no longer contains, exactly once, the text this profiler "
                f"patches:\n{old}\nUpdate bench/audit_insitu.py to the new source."
            )
        path.write_text(text.replace(old, new, 1))
    return destination


def _title() -> str:
    return "Issue 4: the audit's own time per call, measured in the server"


def _command(variants: list[str]) -> str:
    extra = "".join(f" --variant {v}" for v in variants)
    return f".venv/bin/python bench/audit_insitu.py{extra}"


if __name__ == "__main__":
    main()
