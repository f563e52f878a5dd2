"""Issue 19: the file tools at real scale, side by side with rg -j1, find and the Node server.

Generates one large tree (default ~100k files, ~15k directories, ~1.5 GB, 40% of the files
binary, a `.git` directory and a `.gitignore`d `build/`), then, on that same tree and in
one run, times (median of interleaved repetitions, page cache warm):

- `search_file_contents` vs `rg -j1` doing the same work: same files (`--hidden
  --no-require-git -g '!.git'`: hidden files searched, .gitignore honoured, `.git`
  skipped, binary files skipped by both), same matches (counts are checked equal);
- `search_files` vs `find -name` with the same directories pruned (following
  `next_cursor` when there are more than `max_results` matches);
- `directory_tree` of one half of the tree (~57k entries) vs the Node filesystem server;
- four content searches in flight on one connection vs the same four in series.

Our server runs with its shipped defaults (audit on) except rate limiting (off). Budgets:
contents <= 1.5x rg -j1, names <= 1.5x find, tree <= 0.7x Node, in flight <= 1.0x series.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import (
    INSTALLED_COMMAND,
    markdown_table,
    node,
    npm_package_entry,
    npm_package_version,
    ours_env,
    report,
    write_files_config,
)
from rpc import Server, child_env

NODE_FS = "@modelcontextprotocol/server-filesystem"
RARE = "ZEBRA_QUUX_17"  # a rare literal, ~190 lines
REGEX = r"fn_[a-z]+_7\d\d\("  # a regex, ~200 lines
PARALLEL = ["ZEBRA_QUUX_17", "OKAPI_42", "TAPIR_99", "NARWHAL_3"]

# The floor: the least a Python walk does (sorted os.scandir recursion, .git and build/
# pruned, no deny-list, no .gitignore parsing, no cursor, no protocol), as a separate
# process so its CPU time is measured like rg's and find's.
FLOOR_WALK = """
import fnmatch, os, sys
root, mode, arg = sys.argv[1], sys.argv[2], sys.argv[3].encode()
out = []
def walk(path):
    entries = sorted(os.scandir(path), key=lambda e: e.name)
    for e in entries:
        if e.name in (".git", "build") and path == root:
            continue
        if e.is_dir(follow_symlinks=False):
            if mode == "names" and fnmatch.fnmatchcase(e.name, sys.argv[3]):
                out.append(e.path)
            walk(e.path)
        elif mode == "names":
            if fnmatch.fnmatchcase(e.name, sys.argv[3]):
                out.append(e.path)
        elif e.is_file(follow_symlinks=False):
            fd = os.open(e.path, os.O_RDONLY)
            data = os.read(fd, 8192)
            if b"\\0" not in data:
                if len(data) == 8192:
                    data += os.read(fd, 1 << 30)
                if data.find(arg) >= 0:
                    out.append(e.path)
            os.close(fd)
walk(root)
print(len(out))
"""


# The confined floor: the same name walk as FLOOR_WALK's, by descriptor as a walk that
# cannot be raced out of its root must go (each directory opened relative to its parent
# with O_NOFOLLOW, fstat'd for the loop check, listed from the descriptor, closed). It
# prices what confinement alone costs, beside find and the path-based floor.
FLOOR_WALK_CONFINED = """
import fnmatch, os, stat, sys
root, glob = sys.argv[1], sys.argv[2]
FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
out = []
def walk(fd, path, seen):
    st = os.fstat(fd)
    key = (st.st_dev, st.st_ino)
    if key in seen:
        return
    seen.add(key)
    entries = sorted(os.scandir(fd), key=lambda e: e.name)
    for e in entries:
        if e.name in (".git", "build") and path == root:
            continue
        if fnmatch.fnmatchcase(e.name, glob):
            out.append(path + "/" + e.name)
        if e.is_dir(follow_symlinks=False):
            child = os.open(e.name, FLAGS, dir_fd=fd)
            try:
                walk(child, path + "/" + e.name, seen)
            finally:
                os.close(child)
    seen.discard(key)
top = os.open(root, FLAGS)
walk(top, root, set())
os.close(top)
print(len(out))
"""

# -- the tree ----------------------------------------------------------------------------


def make_tree(root: Path, files: int, seed: int = 19) -> dict[str, int]:
    """A repository-like tree; returns what it holds."""
    rng = random.Random(seed)
    words = [f"{w}{i}" for i in range(400) for w in ("alpha", "beta", "gamma", "delta")]
    pool_lines = []
    for i in range(200_000):
        n = rng.randrange(3, 12)
        line = " ".join(rng.choice(words) for _ in range(n))
        if i % 997 == 0:
            line += f" fn_{rng.choice(['ab', 'cd', 'xyz'])}_{rng.randrange(700, 800)}(x)"
        pool_lines.append(("    " * rng.randrange(0, 3) + line + "\n").encode())
    pool = b"".join(pool_lines)
    noise = rng.randbytes(1 << 22)
    dirs_count = max(1, files * 15 // 100)
    leaf_dirs: list[Path] = []
    for i in range(dirs_count):
        part = f"part{i % 2}"
        path = root / part / f"d{i % 15:02d}" / f"m{(i // 15) % 40:02d}" / f"leaf{i:05d}"
        leaf_dirs.append(path)
    for d in leaf_dirs:
        d.mkdir(parents=True, exist_ok=True)
    stats = {"files": 0, "bytes": 0, "binary": 0}
    extras = {name: 0 for name in PARALLEL}
    for i in range(files):
        d = leaf_dirs[i % len(leaf_dirs)]
        if rng.random() < 0.42:
            size = rng.randrange(2_000, 42_000)
            start = rng.randrange(0, len(noise) - size)
            data = b"\0PNG\0\0" + noise[start : start + size]
            name = f"img{i:06d}.bin"
            stats["binary"] += 1
        else:
            size = rng.randrange(500, 20_000)
            start = pool.find(b"\n", rng.randrange(0, len(pool) - size - 1)) + 1
            data = pool[start : start + size]
            data = data[: data.rfind(b"\n") + 1]
            for needle in PARALLEL:
                if rng.random() < 0.0035:
                    cut = data.find(b"\n", len(data) // 2) + 1
                    data = data[:cut] + f"x = '{needle}'\n".encode() + data[cut:]
                    extras[needle] += 1
            name = f"mod{i:06d}.{('py', 'js', 'md', 'txt')[i % 4]}"
        (d / name).write_bytes(data)
        stats["files"] += 1
        stats["bytes"] += len(data)
    (root / ".gitignore").write_text("build/\n*.log\n")
    for j in range(300):  # ignored and .git content also holds the literal: must be skipped
        for sub in ("build", ".git/objects"):
            p = root / sub / f"{j % 30:02d}" / f"o{j}.txt"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(f"{RARE} ignored\n")
    stats["dirs"] = sum(1 for _ in root.rglob("*") if _.is_dir())
    return stats


# -- timing ------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def server_cpu(server: Server) -> Callable[[], float]:
    """User + system time of the whole server process, exited worker threads included,
    plus its live child processes (the content-search worker) (/proc/<pid>/stat, clock
    ticks: coarse, but these calls take seconds)."""
    tick = os.sysconf("SC_CLK_TCK")

    def one(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / tick

    def children(pid: int) -> list[int]:
        found: list[int] = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                found.extend(int(p) for p in (task / "children").read_text().split())
            except OSError:
                continue
        return found

    def read() -> float:
        pid = server.proc.pid
        return one(pid) + sum(one(child) for child in children(pid))

    return read


Timings = dict[str, dict[str, list[float]]]


def interleaved(
    actions: dict[str, tuple[Callable[[], Any], Callable[[], float]]], reps: int
) -> Timings:
    """Wall and CPU seconds of each action, `reps` times in shuffled order after a warm-up.

    CPU time (the server process's threads; rg's and find's own rusage) is the figure
    that holds on a shared, loaded machine, where wall time mostly measures the queue."""
    times: Timings = {k: {"wall": [], "cpu": []} for k in actions}
    for fn, _ in actions.values():
        fn()  # warm up (page cache, imports)
    for r in range(reps):
        order = list(actions)
        random.Random(r).shuffle(order)
        for name in order:
            fn, cpu = actions[name]
            c0 = cpu()
            wall = timed(fn)[0]
            times[name]["wall"].append(wall)
            times[name]["cpu"].append(cpu() - c0)
    return times


def med(values: list[float]) -> float:
    return statistics.median(values)


def run(argv: list[str]) -> bytes:
    return subprocess.run(argv, check=False, capture_output=True).stdout


def ours_all_pages(server: Server, tool: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Every match, following next_cursor."""
    matches: list[dict[str, Any]] = []
    cursor = None
    while True:
        call = dict(args, cursor=cursor) if cursor else args
        result = server.call_tool(tool, call)["structuredContent"]
        matches.extend(result["matches"])
        cursor = result.get("next_cursor")
        if not cursor:
            return matches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="files in the tree")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the tree here")
    parser.add_argument(
        "--only",
        choices=SECTIONS,
        action="append",
        help="measure only these sections (repeatable); all by default",
    )
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=_fast_tmp()))
    root = (args.keep or base / "tree").resolve()
    try:
        if not (root / ".gitignore").exists():
            gen_s, stats = timed(lambda: make_tree(root, args.files))
            print(f"generated {stats} in {gen_s:.1f} s", flush=True)
        else:
            stats = {"files": args.files, "reused": True}
        body, data = measure(base, root, args.reps, tuple(args.only or SECTIONS))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    data["tree"] = stats
    report(
        "Issue 19: file tools at scale vs rg -j1, find and the Node server",
        f"make bench-files-scale  # .venv/bin/python bench/bench_files_scale.py "
        f"--files {args.files} --reps {args.reps}"
        + "".join(f" --only {o}" for o in args.only or ()),
        f"Tree: {stats}\n\n{body}",
        data,
    )


def _fast_tmp() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


SECTIONS = ("contents", "names", "tree", "in-flight")


def measure(
    base: Path, root: Path, reps: int, only: tuple[str, ...] = SECTIONS
) -> tuple[str, dict[str, Any]]:
    config = write_files_config(base, root)
    ours_argv = [str(INSTALLED_COMMAND), "--config", str(config)]
    # The same server with its search worker off: what one process does (names rows).
    alone_config = base / "alone.toml"
    alone_text = config.read_text().replace("[files]\n", "[files]\nsearch_worker = false\n", 1)
    alone_config.write_text(alone_text.replace('/audit"', '/audit-alone"'))
    assert "search_worker = false" in alone_text and "audit-alone" in alone_config.read_text()
    alone_argv = [str(INSTALLED_COMMAND), "--config", str(alone_config)]
    node_argv = [node(), str(npm_package_entry(NODE_FS, "dist/index.js")), str(root)]
    rg = shutil.which("rg") or "rg"
    rg_base = [rg, "-j1", "--hidden", "--no-require-git", "-g", "!.git", "-n", "--no-heading"]
    prune = ["(", "-path", str(root / ".git"), "-o", "-path", str(root / "build"), ")", "-prune"]
    rows: list[list[object]] = []
    data: dict[str, Any] = {}
    with (
        Server(ours_argv, env=ours_env()) as ours,
        Server(alone_argv, env=ours_env()) as alone,
        Server(node_argv, env=child_env()) as nd,
    ):
        ours.initialize()
        alone.initialize()
        nd.initialize()

        def content_row(label: str, pattern: str, regex: bool) -> None:
            flag = ["-e", pattern] if regex else ["-F", "-e", pattern]
            args = {"path": str(root), "pattern": pattern, "regex": regex}
            got = ours_all_pages(ours, "search_file_contents", args)
            rg_lines = run([*rg_base, *flag, str(root)]).splitlines()
            assert len(got) == len(rg_lines), (label, len(got), len(rg_lines))
            t = interleaved(
                {
                    "ours": (
                        lambda: ours_all_pages(ours, "search_file_contents", args),
                        server_cpu(ours),
                    ),
                    "rg": (lambda: run([*rg_base, *flag, str(root)]), children_cpu),
                },
                reps,
            )
            _row(rows, data, f"search_file_contents {label} ({len(got)} lines)", t, "rg", 1.5)

        if "contents" in only:
            content_row("literal", RARE, False)
            floor_c = [sys.executable, "-c", FLOOR_WALK, str(root), "contents", RARE]
            t = interleaved(
                {
                    "python floor": (lambda: run(floor_c), children_cpu),
                    "rg": (lambda: run([*rg_base, "-F", "-e", RARE, str(root)]), children_cpu),
                },
                reps,
            )
            _row(rows, data, "floor: bare Python walk + read + find, literal", t, "rg", 1.5)
            content_row("regex", REGEX, True)

        names = (("rare", "mod0001*.py"), ("common", "*.md")) if "names" in only else ()
        for label, glob in names:
            args = {"path": str(root), "pattern": glob}
            got = ours_all_pages(ours, "search_files", args)
            find_argv = ["find", str(root), *prune, "-o", "-name", glob, "-print"]
            found = run(find_argv).splitlines()
            assert len(got) == len(found), (label, len(got), len(found))
            assert ours_all_pages(alone, "search_files", args) == got
            t = interleaved(
                {
                    "ours": (
                        lambda a=args: ours_all_pages(ours, "search_files", a),
                        server_cpu(ours),
                    ),
                    "one process": (
                        lambda a=args: ours_all_pages(alone, "search_files", a),
                        server_cpu(alone),
                    ),
                    "find": (lambda f=find_argv: run(f), children_cpu),
                },
                reps,
            )
            name = f"search_files {label} `{glob}` ({len(got)} paths)"
            _row(rows, data, name, {k: t[k] for k in ("ours", "find")}, "find", 1.5)
            lone = {k: t[k] for k in ("one process", "find")}
            _row(rows, data, f"{name}, search worker off", lone, "find", 1.5)

        if "names" in only:
            floor_n = [sys.executable, "-c", FLOOR_WALK, str(root), "names", "mod0001*.py"]
            find_rare = ["find", str(root), *prune, "-o", "-name", "mod0001*.py", "-print"]
            t = interleaved(
                {
                    "python floor": (lambda: run(floor_n), children_cpu),
                    "find": (lambda: run(find_rare), children_cpu),
                },
                reps,
            )
            _row(rows, data, "floor: bare Python scandir walk, names", t, "find", 1.5)
            floor_fd = [sys.executable, "-c", FLOOR_WALK_CONFINED, str(root), "mod0001*.py"]
            assert run(floor_fd).strip() == run(floor_n).strip()
            t = interleaved(
                {
                    "confined floor": (lambda: run(floor_fd), children_cpu),
                    "find": (lambda: run(find_rare), children_cpu),
                },
                reps,
            )
            _row(rows, data, "floor: bare Python walk by descriptor, names", t, "find", 1.5)
        if "tree" in only:
            tree_row(ours, nd, root, reps, rows, data)
        if "in-flight" in only:
            in_flight_row(ours, root, reps, rows, data)
        data["node_version"] = npm_package_version(NODE_FS)
    header = ["measurement", "ours s", "baseline", "baseline s", "wall ratio"]
    header += ["CPU s ours / baseline", "CPU ratio", "budget"]
    table = markdown_table(header, rows)
    return table, data


def tree_row(
    ours: Server, nd: Server, root: Path, reps: int, rows: list[list[object]], data: dict[str, Any]
) -> None:
    """`directory_tree` of one half of the tree beside the Node server."""
    half = str(root / "part0")
    tree_args = {"path": half, "max_depth": 256, "max_entries": 100_000}
    tree = ours.call_tool("directory_tree", tree_args)["structuredContent"]
    assert tree["stopped_by"] is None, tree["stopped_by"]
    t = interleaved(
        {
            "ours": (lambda: ours.call_tool("directory_tree", tree_args), server_cpu(ours)),
            "node": (lambda: nd.call_tool("directory_tree", {"path": half}), server_cpu(nd)),
        },
        reps,
    )
    _row(rows, data, f"directory_tree part0 ({tree['entries']} entries)", t, "node", 0.7)


def in_flight_row(
    ours: Server, root: Path, reps: int, rows: list[list[object]], data: dict[str, Any]
) -> None:
    """Four content searches in flight on one connection beside the same four in series."""

    def series() -> None:
        for needle in PARALLEL:
            ours.call_tool("search_file_contents", {"path": str(root), "pattern": needle})

    def in_flight() -> None:
        ids = [
            ours.send_request(
                "tools/call",
                {"name": "search_file_contents", "arguments": {"path": str(root), "pattern": n}},
            )
            for n in PARALLEL
        ]
        for i in ids:
            assert "error" not in ours.wait(i)

    t = interleaved(
        {"in flight": (in_flight, server_cpu(ours)), "series": (series, server_cpu(ours))},
        reps,
    )
    _row(rows, data, "4 content searches: in flight vs series", t, "series", 1.0)


def _row(
    rows: list[list[object]],
    data: dict[str, Any],
    label: str,
    t: Timings,
    baseline: str,
    budget: float,
) -> None:
    ours_name = next(k for k in t if k != baseline)
    ours, base = med(t[ours_name]["wall"]), med(t[baseline]["wall"])
    ours_cpu, base_cpu = med(t[ours_name]["cpu"]), med(t[baseline]["cpu"])
    r = ours / base if base else float("nan")
    r_cpu = ours_cpu / base_cpu if base_cpu else float("nan")
    verdict = "within" if r <= budget else "OVER"
    rows.append(
        [
            label,
            f"{ours:.3f}",
            baseline,
            f"{base:.3f}",
            f"{r:.2f}x",
            f"{ours_cpu:.3f} / {base_cpu:.3f}",
            f"{r_cpu:.2f}x",
            f"<= {budget}x (wall {verdict})",
        ]
    )
    data[label] = {"ours": t[ours_name], baseline: t[baseline], "ratio": r, "cpu_ratio": r_cpu}
    print(rows[-1], flush=True)


if __name__ == "__main__":
    main()
