"""Token buckets for tool calls: one per tool, one for all tools together, and one for
every name that is not a tool.

A bucket may run into debt by up to `max_wait_s` seconds of refill: a call over the rate
then waits for its token (`reserve` says how long) instead of failing, so a burst a
little larger than the bucket only slows down. A call that would wait longer is refused
with the time after which a retry succeeds; nothing is consumed then.

Why not fastmcp's `RateLimitingMiddleware`: it refuses at the protocol level (a JSON-RPC
error, not a tool result the model can read and act on), counts every request including
`initialize`, `tools/list` and pings, has no per-tool bucket, and would sit outside the
audit so refused calls would go unrecorded. These buckets only see `tools/call`, run
inside the audit layer, and take no lock: they run on the event loop without awaiting.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from mcp_fileserver.config import RateLimitSettings
from mcp_fileserver.errors import RateLimited

# The bucket of every tool name the server does not have; it is not a valid tool name,
# so it can never be confused with one.
UNKNOWN_TOOLS = "(unknown tools)"


class TokenBucket:
    def __init__(self, rate: float, burst: int, max_wait_s: float) -> None:
        self.rate = rate
        self.burst = burst
        self.floor = -rate * max_wait_s  # the debt a waiting call may run into
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_after_take(self) -> float:
        """Seconds a call taking a token now would wait for it (0: available now)."""
        after = self.tokens - 1
        return 0.0 if after >= 0 else -after / self.rate

    def retry_s(self) -> float:
        """Seconds until a call would be admitted again (its wait within the bound)."""
        return max(0.0, (self.floor - (self.tokens - 1)) / self.rate)


class RateLimiter:
    """The buckets of a fixed set of tool names; any other name uses `UNKNOWN_TOOLS`."""

    def __init__(self, settings: RateLimitSettings, tools: Iterable[str] = ()) -> None:
        self.settings = settings
        wait = settings.max_wait_s
        self._total = TokenBucket(settings.total_per_s, settings.total_burst, wait)
        self._per_tool = {
            name: TokenBucket(settings.per_tool_per_s, settings.per_tool_burst, wait)
            for name in tools
        }
        self._unknown = TokenBucket(settings.per_tool_per_s, settings.per_tool_burst, wait)

    def reserve(self, tool: str) -> float:
        """Take a token for a call of `tool` (any other name: `UNKNOWN_TOOLS`) and return
        how long the call must wait for it; raise `RateLimited` if that is too long.

        Unknown names take from their own bucket only, never from the shared total, so
        a client inventing names cannot slow down the real tools."""
        now = time.monotonic()
        bucket = self._per_tool.get(tool)
        if bucket is None:
            tool, bucket = UNKNOWN_TOOLS, self._unknown
        bucket.refill(now)
        if bucket.tokens - 1 < bucket.floor:
            raise RateLimited(
                f"rate limit: too many calls to {tool} (at most "
                f"{_rate(self.settings.per_tool_per_s)}/s, bursts of "
                f"{self.settings.per_tool_burst}); retry in {_seconds(bucket.retry_s())}"
            )
        if bucket is self._unknown:
            wait = bucket.wait_after_take()
            bucket.tokens -= 1
            return wait
        total = self._total
        total.refill(now)
        if total.tokens - 1 < total.floor:
            raise RateLimited(
                f"rate limit: too many tool calls (at most "
                f"{_rate(self.settings.total_per_s)}/s in total, bursts of "
                f"{self.settings.total_burst}); retry in {_seconds(total.retry_s())}"
            )
        wait = max(bucket.wait_after_take(), total.wait_after_take())
        bucket.tokens -= 1
        total.tokens -= 1
        return wait


def _rate(value: float) -> str:
    return f"{value:g}"


def _seconds(value: float) -> str:
    return f"{max(value, 0.001):.3g} s"
