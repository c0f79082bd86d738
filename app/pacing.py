"""A token bucket for async code: at most one take per interval on average, in bursts.

Two places pace their sends this way: an answer's chunk events (``app.chat.chunks``,
bursts of four, so a normal-rate answer that fell behind catches up at once) and a
process's AMQP event messages (``app.bus.amqp_outbox``, a burst of one: a fixed spacing).
"""

from __future__ import annotations

import asyncio
import time


class Pacer:
    __slots__ = ("_burst", "_credit", "_credit_at", "_interval")

    def __init__(self, interval_s: float, *, burst: float = 1.0) -> None:
        self._interval = interval_s
        self._burst = burst
        self._credit = burst  # takes that may happen now, refilled over time
        self._credit_at = 0.0

    async def take(self) -> None:
        """Wait until the bucket holds one take's credit, and spend it (at once if 0 s)."""
        interval = self._interval
        if interval <= 0:
            return
        credit = self._refilled(interval)
        if credit < 1.0:
            await asyncio.sleep((1.0 - credit) * interval)
            credit = self._refilled(interval)
        self._credit = max(0.0, credit - 1.0)

    def _refilled(self, interval: float) -> float:
        """The credit now (one take per ``interval`` since it was last read, at most a burst)."""
        now = time.monotonic()
        self._credit = min(self._burst, self._credit + (now - self._credit_at) / interval)
        self._credit_at = now
        return self._credit
