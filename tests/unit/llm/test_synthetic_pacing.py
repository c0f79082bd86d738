"""How the synthetic provider spaces its tokens, on a clock that moves only when it sleeps.

Each ``await asyncio.sleep(d)`` is one pass through the event loop: the test counts them.
"""

from __future__ import annotations

import itertools
import types

import pytest

from app.llm import synthetic_provider
from app.llm.base import ChatTurn
from app.llm.synthetic_provider import MAX_BURST, TIMER_TICK_S, SyntheticProvider


class SleepClock:
    """perf_counter and time_ns for the provider; its sleeps move the time and are logged."""

    def __init__(self, start_lag_s: float = 0.0) -> None:
        self.now = 100.0
        self.start_lag_s = start_lag_s
        self.sleeps: list[float] = []
        self.tokens_at_sleep: list[int] = []
        self.tokens = 0

    def perf_counter(self) -> float:
        now = self.now
        if self.start_lag_s:  # the first reading is the start; then the loop falls behind
            self.now += self.start_lag_s
            self.start_lag_s = 0.0
        return now

    def time_ns(self) -> int:
        return int(self.now * 1e9)

    def time(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.tokens_at_sleep.append(self.tokens)
        self.now += delay


async def stream(
    monkeypatch: pytest.MonkeyPatch, clock: SleepClock, model: str
) -> list[tuple[float, str]]:
    monkeypatch.setattr(synthetic_provider, "time", clock)
    monkeypatch.setattr(synthetic_provider, "asyncio", types.SimpleNamespace(sleep=clock.sleep))
    out = []
    async for token in SyntheticProvider().stream([ChatTurn("user", "q")], model=model):
        if token.text:
            out.append((clock.now, token.text))
            clock.tokens += 1
    return out


def bursts(clock: SleepClock, total: int) -> list[int]:
    """How many tokens went out between one pass through the loop and the next."""
    marks = [0, *clock.tokens_at_sleep, total]
    return [b - a for a, b in itertools.pairwise(marks)]


async def test_a_slow_rate_waits_once_per_token(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SleepClock()
    tokens = await stream(monkeypatch, clock, "tokens-30-rate-30")
    assert len(tokens) == 30
    assert len(clock.sleeps) == 29 and all(s > TIMER_TICK_S for s in clock.sleeps)
    assert tokens[-1][0] - tokens[0][0] == pytest.approx(29 / 30)


async def test_a_fast_rate_sends_the_tokens_due_within_a_tick_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = SleepClock()
    tokens = await stream(monkeypatch, clock, "tokens-1000-rate-1000")
    assert len(tokens) == 1000
    # About one pass per three tokens (2 to 3 ms apart), not one per token, and each wait is
    # worth a timer.
    assert len(clock.sleeps) <= 1000 * 0.4
    assert all(s > TIMER_TICK_S for s in clock.sleeps)
    # The rate holds: no token is more than a tick early, and the stream ends on time.
    for i, (at, _) in enumerate(tokens):
        assert at >= 100.0 + i / 1000 - TIMER_TICK_S - 1e-9
    assert tokens[-1][0] == pytest.approx(100.0 + 999 / 1000, abs=TIMER_TICK_S)


async def test_a_stream_that_fell_behind_still_passes_the_loop_every_burst(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = SleepClock(start_lag_s=1.0)  # a second late: 100 tokens at 100/s are all overdue
    tokens = await stream(monkeypatch, clock, "tokens-100-rate-100")
    assert len(tokens) == 100
    assert clock.sleeps and all(s == 0 for s in clock.sleeps)
    assert max(bursts(clock, len(tokens))) <= MAX_BURST
    assert len(clock.sleeps) >= 100 // MAX_BURST
