"""What every benchmark shares: where the servers are, how to measure, how to report.

Conventions: measurements alternate between the servers being compared (round-robin in a
shuffled order each round) so background load on this shared machine hits both sides
alike; every server is warmed up before timing; ratios are always against a baseline
measured in the same run, never against a number from another day.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
NODE_MODULES = BENCH / "node_modules"
NODE_BIN = NODE_MODULES / ".bin"
OUT = BENCH / "out"

# The installed console script of the interpreter running the benchmarks (the venv's).
INSTALLED_COMMAND = Path(sys.executable).parent / "mcp-fileserver"
FROZEN_ONEDIR = REPO / "dist" / "mcp-fileserver" / "mcp-fileserver"

ONE_KIB_TEXT = ("The quick brown fox jumps over the lazy dog. 0123456789\n" * 19)[:1023] + "\n"


class MissingPeer(RuntimeError):
    """A comparison server (npm package, frozen build) is not installed."""


def node() -> str:
    """Node.js >= 22 (pinned in bench/package.json), else one on PATH if new enough."""
    pinned = NODE_BIN / "node"
    candidate = str(pinned) if pinned.exists() else shutil.which("node")
    if candidate is None:
        raise MissingPeer("Node.js not found: run `make peers`")
    version = subprocess.run(
        [candidate, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 22:
        raise MissingPeer(f"Node.js {version} is too old (need 22): run `make peers`")
    return candidate


def npm_package_entry(package: str, relative: str) -> Path:
    """The JS entry point of a pinned npm package, or `MissingPeer`."""
    path = NODE_MODULES / package / relative
    if not path.exists():
        raise MissingPeer(f"{package} is not installed in bench/node_modules: run `make peers`")
    return path


def npm_package_version(package: str) -> str:
    data = json.loads((NODE_MODULES / package / "package.json").read_text())
    return str(data["version"])


def ours_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for our server: nothing inherited from the developer's MCP_FILESERVER_*.

    As root (CI, containers) the server refuses to start unless told it is intended.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_FILESERVER_")}
    if os.geteuid() == 0:
        env["MCP_FILESERVER_ALLOW_ROOT"] = "1"
    env.update(extra or {})
    return env


# -- workloads -------------------------------------------------------------------------


def make_file_workspace(base: Path) -> Path:
    """A root with a 1 KiB text file (`note.txt`) and a little company around it."""
    root = base / "root"
    (root / "docs").mkdir(parents=True)
    (root / "note.txt").write_text(ONE_KIB_TEXT, encoding="utf-8")
    for i in range(20):
        (root / "docs" / f"doc{i:02}.md").write_text(f"# Doc {i}\n\nbody {i}\n", encoding="utf-8")
    return root


BENCH_QUERY = "SELECT id, name, price FROM items WHERE category = 7 ORDER BY id"
BENCH_QUERY_PARAMS = "SELECT id, name, price FROM items WHERE category = ? ORDER BY id"
ITEMS = 10_000
CATEGORIES = 500  # 10,000 items / 500 categories = 20 rows per category


def make_sqlite_db(path: Path) -> Path:
    """10,000 items with an index on `category`; `BENCH_QUERY` returns exactly 20 rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    try:
        con.executescript(
            """
            CREATE TABLE items (
                id INTEGER PRIMARY KEY,
                category INTEGER NOT NULL,
                name TEXT NOT NULL,
                price REAL NOT NULL
            );
            CREATE INDEX items_category ON items (category);
            """
        )
        con.executemany(
            "INSERT INTO items (category, name, price) VALUES (?, ?, ?)",
            ((i % CATEGORIES, f"item-{i}", i * 0.25) for i in range(ITEMS)),
        )
        con.commit()
        rows = con.execute(BENCH_QUERY).fetchall()
        plan = " ".join(str(r[-1]) for r in con.execute("EXPLAIN QUERY PLAN " + BENCH_QUERY))
    finally:
        con.close()
    assert len(rows) == 20, rows
    assert "items_category" in plan, plan
    return path


def write_config(path: Path, body: str) -> Path:
    path.write_text(body.strip() + "\n", encoding="utf-8")
    return path


def toml_str(value: Path | str) -> str:
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def write_files_config(base: Path, root: Path) -> Path:
    """Our server's config for the file-tool comparisons: `root` readable, audit on (its
    log under `base`), rate limiting off so it cannot interfere with the figures."""
    return write_config(
        base / "ours.toml",
        f"""
        [files]
        allowed_dirs = [{toml_str(root)}]
        [audit]
        log_dir = {toml_str(base / "audit")}
        [rate_limit]
        enabled = false
        """.replace("        ", ""),
    )


def write_audit_config(path: Path, root: Path, log_dir: Path, *, audited: bool) -> Path:
    """A server config for issue 4's comparisons: `root` readable, auditing and the
    monitor both on or both off, rate limiting off in both so it cannot interfere."""
    enabled = "true" if audited else "false"
    return write_config(
        path,
        f"""
        [files]
        allowed_dirs = [{toml_str(root)}]
        [audit]
        enabled = {enabled}
        log_dir = {toml_str(log_dir)}
        [monitor]
        enabled = {enabled}
        [rate_limit]
        enabled = false
        """.replace("        ", ""),
    )


# -- statistics ------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of non-empty samples."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Series:
    """Samples (seconds) for one server in one measurement."""

    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def p50_ms(self) -> float:
        return percentile(self.samples, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.samples, 99) * 1000

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.samples) * 1000


def interleave(
    actions: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    per_round: int,
    seed: int = 1,
) -> dict[str, Series]:
    """Time `per_round` consecutive calls of each action, `rounds` times, in shuffled order."""
    rng = random.Random(seed)
    series = {name: Series(name) for name in actions}
    names = list(actions)
    clock = time.perf_counter
    for _ in range(rounds):
        rng.shuffle(names)
        for name in names:
            action, samples = actions[name], series[name].samples
            for _ in range(per_round):
                start = clock()
                action()
                samples.append(clock() - start)
    return series


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline > 0 else "n/a"


def verdict(value: float, baseline: float, budget: float) -> str:
    if baseline <= 0:
        return "n/a"
    return "within budget" if value / baseline <= budget else "OVER BUDGET"


# -- reporting -------------------------------------------------------------------------


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_facts() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts: dict[str, Any] = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_avg_1_5_15": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "commit": git_commit(),
    }
    try:
        import fastmcp

        facts["fastmcp"] = fastmcp.__version__
    except ImportError:
        pass
    try:
        facts["node"] = subprocess.run(
            [node(), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (MissingPeer, OSError, subprocess.CalledProcessError):
        facts["node"] = "not installed"
    return facts


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report(title: str, command: str, body: str, data: Mapping[str, Any]) -> None:
    """Print a markdown section and keep the raw figures in bench/out/<name>.json."""
    facts = machine_facts()
    facts_line = ", ".join(f"{k}: {v}" for k, v in facts.items())
    print(f"## {title}\n\nCommand: `{command}`\n\nMachine: {facts_line}\n\n{body}\n", flush=True)
    OUT.mkdir(exist_ok=True)
    name = Path(sys.argv[0]).stem
    (OUT / f"{name}.md").write_text(
        f"## {title}\n\nCommand: `{command}`\n\nMachine: {facts_line}\n\n{body}\n"
    )
    (OUT / f"{name}.json").write_text(
        json.dumps({"title": title, "command": command, "machine": facts, **data}, indent=2)
    )


def fmt_ms(value: float) -> str:
    return f"{value:.2f}"


def pipelined_rate(
    server: Any, tool: str, arguments: Mapping[str, Any], *, total: int, window: int
) -> float:
    """Calls per second with `window` requests in flight on one connection."""
    return pipelined_calls_rate(
        server, [{"name": tool, "arguments": dict(arguments)}], total=total, window=window
    )


def pipelined_calls_rate(
    server: Any, calls: Sequence[Mapping[str, Any]], *, total: int, window: int
) -> float:
    """Calls per second with `window` requests in flight on one connection, sending the
    `tools/call` params in `calls` in turn.

    Every response is checked: a refusal (rate limit, error) aborts the benchmark rather
    than being counted as a fast call.
    """
    start = time.perf_counter()
    sent = done = 0
    while sent < min(window, total):
        server.send_request("tools/call", calls[sent % len(calls)])
        sent += 1
    while done < total:
        response = server.wait()
        done += 1
        result = response.get("result") or {}
        if "error" in response or result.get("isError"):
            names = "/".join(sorted({str(c["name"]) for c in calls}))
            raise RuntimeError(f"{names} failed under load: {json.dumps(response)[:300]}")
        if sent < total:
            server.send_request("tools/call", calls[sent % len(calls)])
            sent += 1
    return total / (time.perf_counter() - start)


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time used so far by the live threads of process `pid` (user and kernel), from
    /proc/<pid>/task/*/schedstat; None off Linux.

    Not `startup.cpu_seconds` (/proc/<pid>/stat): that counts in clock ticks, too coarse
    for a run of a few hundred calls. A thread that ends between two readings takes its
    time with it; take both readings around one short run (the servers' worker threads
    outlive it)."""
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():
        return None
    total = 0
    for task in tasks.iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total / 1e9


def interleaved_rates(
    actions: Mapping[str, Callable[[], float]], *, rounds: int, seed: int = 3
) -> dict[str, list[float]]:
    """Run each rate measurement `rounds` times, alternating servers in a shuffled order."""
    rng = random.Random(seed)
    names = list(actions)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        rng.shuffle(names)
        for name in names:
            rates[name].append(actions[name]())
    return rates


DBHUB = "@bytebase/dbhub"


def ours_and_dbhub(
    ours_config: Path, dbhub_config: Path, base: Path, ours_extra_env: Mapping[str, str]
) -> tuple[Any, Any]:
    """Our installed server and DBHub, each on its config, both logging to one stderr file
    in `base` (bench_sql.py and bench_mysql.py compare the two on the same database)."""
    from rpc import Server, child_env

    stderr_log = base / "stderr.log"
    ours = Server(
        [str(INSTALLED_COMMAND), "--config", str(ours_config)],
        env=ours_env(ours_extra_env),
        stderr_path=stderr_log,
    )
    entry = npm_package_entry(DBHUB, "dist/index.js")
    dbhub = Server(
        [node(), str(entry), "--transport", "stdio", "--config", str(dbhub_config)],
        env=child_env(),
        cwd=base,
        stderr_path=stderr_log,
    )
    return ours, dbhub


def refused_write(ours: Any, dbhub: Any) -> None:
    """Both sides are in read-only mode: a DELETE must be refused by each."""
    for server, tool, args in (
        (ours, "run_query", {"database": "bench", "sql": "DELETE FROM items"}),
        (dbhub, "execute_sql", {"sql": "DELETE FROM items"}),
    ):
        result = server.request("tools/call", {"name": tool, "arguments": args})
        if not result.get("isError"):
            raise SystemExit(f"{tool} accepted a DELETE: not a read-only comparison")
