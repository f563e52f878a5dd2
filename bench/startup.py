"""Startup: spawn -> `initialize` answered, and spawn -> first `tools/list` answered.

The first `tools/list` and the first tool call are also compared with the steady-state
latency of the same request on the same process: a server that defers imports to the
first request pays for them there, and this exposes it.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rpc import Server

# A factory spawns a fresh server process; `probe` is the tool call used for "first call".
Spawn = Callable[[], Server]


@dataclass(frozen=True)
class Probe:
    tool: str
    arguments: Mapping[str, Any]


@dataclass
class StartupSeries:
    name: str
    to_initialize: list[float] = field(default_factory=list)
    to_tools_list: list[float] = field(default_factory=list)
    cpu_to_tools_list: list[float] = field(default_factory=list)
    first_list: list[float] = field(default_factory=list)
    steady_list: list[float] = field(default_factory=list)
    first_call: list[float] = field(default_factory=list)
    steady_call: list[float] = field(default_factory=list)


def med_ms(values: Sequence[float]) -> float:
    return statistics.median(values) * 1000


TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far.

    Unlike wall time, this barely depends on what else the machine is running, so it
    shows the startup work itself on a busy shared machine (resolution: one clock tick).
    """
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def _one_start(spawn: Spawn, probe: Probe | None, series: StartupSeries) -> None:
    clock = time.perf_counter
    server = spawn()
    try:
        server.initialize()
        t_init = clock()
        server.list_tools()
        t_list = clock()
        series.cpu_to_tools_list.append(cpu_seconds(server.proc.pid))
        series.to_initialize.append(t_init - server.spawned_at)
        series.to_tools_list.append(t_list - server.spawned_at)
        series.first_list.append(t_list - t_init)
        steady = []
        for _ in range(5):
            start = clock()
            server.list_tools()
            steady.append(clock() - start)
        series.steady_list.append(statistics.median(steady))
        if probe is not None:
            start = clock()
            server.call_tool(probe.tool, probe.arguments)
            series.first_call.append(clock() - start)
            steady = []
            for _ in range(5):
                start = clock()
                server.call_tool(probe.tool, probe.arguments)
                steady.append(clock() - start)
            series.steady_call.append(statistics.median(steady))
    finally:
        server.close()


def measure_startup(
    spawners: Mapping[str, Spawn],
    *,
    reps: int,
    probes: Mapping[str, Probe] | None = None,
    warmup: int = 1,
    seed: int = 2,
) -> dict[str, StartupSeries]:
    """`reps` cold starts of each server, alternating in a shuffled order each round."""
    probes = probes or {}
    rng = random.Random(seed)
    names = list(spawners)
    for name in names:  # page cache, .pyc files, V8 code cache: not what we measure
        for _ in range(warmup):
            _one_start(spawners[name], probes.get(name), StartupSeries(name))
    results = {name: StartupSeries(name) for name in names}
    for _ in range(reps):
        rng.shuffle(names)
        for name in names:
            _one_start(spawners[name], probes.get(name), results[name])
    return results
