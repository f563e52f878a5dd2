"""One name search on two cores: the search worker walks subtrees ahead of this walk.

`search_names` walks in this process as always; between directories (`pump`) the worker
is handed subtrees not yet walked, up to `QUEUED` at a time so it never waits for the
next. The walk and the worker take turns among the subdirectories of an open directory
(`_second_left`), from the shallowest directory when the search looks long (nothing
matched yet, or few matches for its result limit) and from the deepest otherwise, so a
page that ends soon is helped near where it ends. The walk goes on; when it reaches a
handed-over subtree (`reached`) it takes what the worker reported: all of it when the
worker is done, else the part reported so far, and walks the rest itself (the worker
stops that subtree and goes on with the next). So the walk never waits for the worker,
and the answer is the one a single process gives:

- the worker walks by the same code and rules (`search.subtree_names`), from a directory
  descriptor opened here beneath the confined start (`O_NOFOLLOW`), so it can reach
  nothing this walk could not;
- reports are merged in walk order, and a subtree's count of entries, its last entry and
  the matches up to the result limit are exactly those this walk would have found;
- a directory reached twice (a bind mount) is skipped where a single walk would skip it:
  if a subtree the worker walked holds a directory this walk already entered, its report
  is dropped and the subtree is walked here;
- the worker stops at the walk's deadline, and within half a millisecond when told to
  (STOP); if it dies, what it reported is kept and the rest is walked here;
- a worker still finishing an earlier search's subtrees (or short of CPU on a busy
  machine) is not waited for: the search runs in this process alone.
"""

from __future__ import annotations

import bisect
import os
import pickle
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcp_fileserver.files.confine import DIR_FLAGS
from mcp_fileserver.files.walk import Budget, Frame, Shared

if TYPE_CHECKING:
    from mcp_fileserver.files.scan_worker import ScanWorker

POLL_EVERY = 2  # directories between reads of the worker's reports while it is busy
QUEUED = 2  # subtrees handed over at once: the worker starts the next without waiting
LEFTOVER_S = 2.0  # how long the next page may take a subtree the worker walked ahead
FIRST_AFTER = 256  # entries walked before a subtree is handed over while nothing matched
LONG_WALK = 20_000  # entries still to walk above which the largest subtrees are handed over


class _Subtree:
    """A subtree handed to the worker and what it has reported of it."""

    __slots__ = (
        "abandoned", "adopted", "capped", "counts", "done", "earlier", "final", "key", "keys",
        "kinds", "last", "paths", "reached", "rel", "stopping", "task", "time", "visited",
    )  # fmt: skip

    def __init__(
        self, task: int, key: tuple[int, int], rel: tuple[str, ...] = (), time: float = 0.0
    ) -> None:
        self.task = task
        self.key = key  # (st_dev, st_ino) of its directory
        self.rel = rel  # its path below the walk's start
        self.time = time  # when it was handed over (time.monotonic)
        self.reached = False  # the walk got there
        self.paths: list[str] = []
        self.kinds = ""
        self.counts: list[int] = []
        self.visited = 0
        self.last: tuple[tuple[str, ...], str] | None = None
        self.keys: list[tuple[int, int]] = []  # directories the worker entered in it
        self.final = False  # no more reports will come
        self.done = False  # walked whole
        self.capped = False  # stopped past the result limit: for this page only
        self.earlier = False  # handed over for an earlier page (`Leftovers`)
        self.abandoned = False  # reached before it was done: later reports are dropped
        self.stopping = False  # STOP sent
        self.adopted = False  # left by an earlier page, its final report counted as owed


_UNOPENED = _Subtree(-1, (-1, -1))  # a subdirectory that could not be opened to hand over


class Leftovers:
    """Subtrees the worker walked (whole, or a first part of: its last report arrives
    later) for one page of a search that the page never reached (it stopped at its
    result limit first): the next page of the same query takes them as if just walked,
    for `LEFTOVER_S` seconds after they were handed over, and only where the directory is
    still the same one (device and inode). So the worker's walk ahead of a page is not
    lost when the page ends; the price is that a change inside such a subtree in those
    seconds may not show on the next page, as if the walk had passed there a little
    earlier."""

    def __init__(self) -> None:
        self.query = ""
        self.subtrees: dict[tuple[str, ...], _Subtree] = {}

    def take(self, query: str, now: float) -> dict[tuple[str, ...], _Subtree]:
        """The subtrees left for `query` (and forget them)."""
        subtrees, self.subtrees = self.subtrees, {}
        if query != self.query:
            return {}
        return {rel: sub for rel, sub in subtrees.items() if now - sub.time <= LEFTOVER_S}

    def keep(self, query: str, subtrees: list[_Subtree]) -> None:
        self.query = query
        self.subtrees = {sub.rel: sub for sub in subtrees}


class SplitWalk:
    """The `walk.Helper` of one name search holding the search worker (`acquire`d)."""

    def __init__(
        self,
        worker: ScanWorker,
        spec: tuple[str, Any, Any],
        budget: Budget,
        max_results: int,
        found: Callable[[], int],
        leftovers: Leftovers | None = None,
        query: str = "",
    ) -> None:
        self.worker = worker
        self.spec = pickle.dumps(spec)  # pattern, deny-list, filters: once per search
        self.budget = budget
        self.max_results = max_results
        self.found = found  # how many matches the search holds so far
        self.due: list[_Subtree] = []  # handed over, final report still to come (in order)
        self.tasks: dict[int, _Subtree] = {}
        self.countdown = 0
        self.lost = False
        self.leftovers, self.query = leftovers, query
        self.cached = leftovers.take(query, time.monotonic()) if leftovers else {}
        for sub in self.cached.values():
            sub.earlier = True
            if not sub.final:  # its reports are still to come: take them, not drop them
                sub.adopted = True
                self.tasks[sub.task] = sub

    # -- walk.Helper ------------------------------------------------------------------

    def listed(self, frame: Frame) -> None:
        """Mark the subdirectories an earlier page's worker walked whole (`Leftovers`)."""
        cached = self.cached
        if not cached:
            return
        rel, names, entries = frame.rel, frame.names, frame.entries
        for index in frame.dirs:
            sub = cached.get((*rel, names[index]))
            if sub is None:
                continue
            try:
                st = entries[index].stat(follow_symlinks=False)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == sub.key:
                frame.delegated[index] = sub

    def pump(self, stack: list[Frame]) -> None:
        """Read the worker's reports now and then; hand it a subtree when it is free."""
        if self.lost:
            return
        if self.due:
            self.countdown -= 1
            if self.countdown > 0:
                return
            self.countdown = POLL_EVERY
            self._read()
            if len(self.due) >= QUEUED or self.lost:
                return
        self._hand_over(stack)

    def reached(self, frame: Frame, index: int, seen: set[tuple[int, int]]) -> Shared | None:
        sub = frame.delegated.pop(index)
        assert isinstance(sub, _Subtree)
        if sub is _UNOPENED:
            return None
        sub.reached = True
        if not sub.final and not self.lost:
            self._read()
        if not sub.final:  # walk the rest here; the worker moves on
            sub.abandoned = True
            self._stop(sub)
            self._settle(sub)
        if sub.capped and sub.earlier:
            return None  # its count was for the page it was walked for: walk it here
        if sub.key in seen:  # entered before: a single walk skips it here
            return Shared([], "", [], 0, None, True)
        if not seen.isdisjoint(sub.keys):
            return None  # it holds a directory entered before: walk it here
        seen.update(sub.keys)
        if sub.done:
            seen.add(sub.key)
        return Shared(sub.paths, sub.kinds, sub.counts, sub.visited, sub.last, sub.done)

    # -- the worker -------------------------------------------------------------------

    def _hand_over(self, stack: list[Frame]) -> None:
        budget = self.budget
        found = self.found()
        if found == 0 and budget.visited < FIRST_AFTER:
            return  # too early to tell a long walk from a short one
        need = max(self.max_results - found, 0)
        # Entries still to walk: the matches needed at the rate they have come so far.
        ahead = need * budget.visited / found if found else float("inf")
        inner = stack[:-1] if ahead > LONG_WALK else stack[-2::-1]
        frames = (*inner, stack[-1])  # the directory being listed last: its subtrees are next
        for frame in frames:
            if len(frame.rel) + 1 < budget.max_depth:  # else the walk does not enter them
                index = _second_left(frame)
                if index >= 0:
                    break
        else:
            return
        name = frame.names[index]
        try:
            fd = os.open(name, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=frame.fd)
        except OSError:
            frame.delegated[index] = _UNOPENED  # the walk meets the failure itself
            return
        try:
            st = os.fstat(fd)
            rel = (*frame.rel, name)
            sub = _Subtree(self.worker.new_task(), (st.st_dev, st.st_ino), rel, time.monotonic())
            cap = need
            task = (
                sub.task, rel, frame.layers, name not in frame.matched, cap,
                budget.deadline, budget.max_depth,
            )  # fmt: skip
            if not self._send(lambda: self.worker.send_names(fd, self.spec, task)):
                return
        except OSError:
            frame.delegated[index] = _UNOPENED
            return
        finally:
            os.close(fd)
        self.tasks[sub.task] = sub
        frame.delegated[index] = sub
        self.due.append(sub)
        self.countdown = POLL_EVERY

    def _read(self) -> None:
        """Take in every report that has arrived (never waits); what an earlier search
        left owed (its stopped subtrees' last reports) is dropped."""
        worker = self.worker
        try:
            while worker.poll():
                reply = worker.receive()
                if isinstance(reply, tuple) and reply[0] in self.tasks:
                    self._take(reply)
                else:
                    worker.settle(reply)
        except (OSError, EOFError):
            self._lose()

    def _take(self, report: tuple[Any, ...]) -> None:
        task, final, done, paths, kinds, counts, visited, last, keys = report
        sub = self.tasks[task]  # `_read` passes on only this search's reports
        if not sub.abandoned:
            if paths:
                sub.paths.extend(paths.split("\0"))
                sub.kinds += kinds
                sub.counts.extend(counts)
            sub.visited = visited
            sub.last = last
            sub.keys.extend(keys)
            sub.done = done is True
            sub.capped = done is None
        if final:
            sub.final = True
            if sub in self.due:
                self.due.remove(sub)
            self._settle(sub)

    def _settle(self, sub: _Subtree) -> None:
        """An earlier page's subtree is no longer owed to it: its final report has come,
        or it was abandoned here (its final report is then dropped as owed)."""
        if sub.adopted and sub.final:
            sub.adopted = False
            self.worker.owed -= 1
        elif sub.adopted and sub.abandoned:
            sub.adopted = False
            del self.tasks[sub.task]

    def _send(self, send: Callable[[], None]) -> bool:
        try:
            send()
        except OSError:
            self._lose()
            return False
        return True

    def _stop(self, sub: _Subtree) -> None:
        if not self.lost and not sub.stopping:
            sub.stopping = True
            self._send(lambda: self.worker.send_stop(sub.task))

    def _lose(self) -> None:
        """The worker died: nothing more comes; what it reported stands."""
        self.lost = True
        self.due.clear()

    def close(self) -> None:
        """Stop the walk in progress, keep what it walked ahead for the next page, and
        give the worker back (the next search that takes it reads the reports still due:
        the next page of this query takes them, any other search drops them). The
        leftovers are kept before the worker is given back: only its holder uses them."""
        for sub in self.due:
            self._stop(sub)
        if self.leftovers is not None:
            ahead = {id(s): s for s in (*self.tasks.values(), *self.cached.values())}
            self.leftovers.keep(
                self.query,
                [
                    s
                    for s in ahead.values()
                    if not (s.reached or s.abandoned or s.capped or self.lost)
                ],
            )
        self.worker.release(0 if self.lost else len(self.due))  # with any still owed before


def _second_left(frame: Frame) -> int:
    """A subdirectory of `frame` neither walked nor handed over yet, or -1: the first one
    with more such before it than handed-over ones.

    Never the first left: the walk gets there next, and would take over a subtree the
    worker has only begun. So the walk and the worker take turns: while the walk does
    one subtree the worker does the next, which is then usually done when the walk gets
    there; equal shares, little done twice, never far ahead of the walk (a search that
    stops at its result limit wastes little)."""
    dirs, delegated = frame.dirs, frame.delegated
    left = handed = 0
    for i in range(bisect.bisect_left(dirs, frame.pos), len(dirs)):
        index = dirs[i]
        if index in delegated:
            handed += 1
        elif left > handed:
            return index
        else:
            left += 1
    return -1
