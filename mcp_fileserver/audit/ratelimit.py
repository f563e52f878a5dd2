"""Token buckets for tool calls: one per tool and one for all tools together.

Why not fastmcp's `RateLimitingMiddleware`: it refuses at the protocol level (a JSON-RPC
error, not a tool result the model can read and act on), counts every request including
`initialize`, `tools/list` and pings, has no per-tool bucket, and would sit outside the
audit so refused calls would go unrecorded. These buckets only see `tools/call`, run
inside the audit layer, and the refusal is an ordinary `isError` result saying when to
retry. They take no lock: the middleware runs them on the event loop without awaiting.
"""

from __future__ import annotations

import time

from mcp_fileserver.config import RateLimitSettings

MAX_TOOLS = 256


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_s(self) -> float:
        """Seconds until one token is available (0 if one is available now)."""
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class RateLimiter:
    def __init__(self, settings: RateLimitSettings) -> None:
        self.settings = settings
        self._total = TokenBucket(settings.total_per_s, settings.total_burst)
        self._per_tool: dict[str, TokenBucket] = {}

    def acquire(self, tool: str) -> str | None:
        """Take a token from both buckets, or return why not (nothing is consumed then)."""
        now = time.monotonic()
        if tool not in self._per_tool and len(self._per_tool) >= MAX_TOOLS:
            tool = "*"  # a client inventing tool names shares one bucket
        bucket = self._per_tool.get(tool)
        if bucket is None:
            bucket = self._per_tool[tool] = TokenBucket(
                self.settings.per_tool_per_s, self.settings.per_tool_burst
            )
        bucket.refill(now)
        self._total.refill(now)
        if bucket.tokens < 1:
            return (
                f"rate limit: too many calls to {tool} (at most "
                f"{_rate(self.settings.per_tool_per_s)}/s, bursts of "
                f"{self.settings.per_tool_burst}); retry in {_seconds(bucket.wait_s())}"
            )
        if self._total.tokens < 1:
            return (
                f"rate limit: too many tool calls (at most "
                f"{_rate(self.settings.total_per_s)}/s in total, bursts of "
                f"{self.settings.total_burst}); retry in {_seconds(self._total.wait_s())}"
            )
        bucket.tokens -= 1
        self._total.tokens -= 1
        return None


def _rate(value: float) -> str:
    return f"{value:g}"


def _seconds(value: float) -> str:
    return f"{max(value, 0.001):.3g} s"
