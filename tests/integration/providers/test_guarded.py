"""guarded_stream over real providers: retries, cancels, timeouts, fallback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, cast

from app.llm.base import ChatTurn, LlmProvider, ModelInfo, Token
from app.llm.guard import guarded_stream
from app.settings import ProviderTimeouts
from tests.fakes.llm_server import Plan, closed_port, expected_text
from tests.integration.providers.conftest import TIMEOUTS, Kit
from tests.integration.providers.helpers import TURNS, drain


def guard(
    provider: LlmProvider,
    *,
    timeouts: ProviderTimeouts = TIMEOUTS,
    max_retries: int = 2,
    fallback: tuple[LlmProvider, str | None] | None = None,
) -> AsyncIterator[Token]:
    return guarded_stream(
        provider,
        TURNS,
        model=None,
        timeouts=timeouts,
        max_retries=max_retries,
        retry_base_delay_s=0.01,
        fallback=fallback,
    )


async def test_rate_limit_then_success_gives_one_answer(kit: Kit) -> None:
    kit.fake.plans = [Plan(status=429, retry_after=0.05), Plan(tokens=6)]
    outcome = await drain(guard(kit.provider()))

    assert outcome.error is None
    assert outcome.text == expected_text(6), "the answer once, no repeated text"
    assert len(kit.fake.requests) == 2
    assert kit.fake.requests[1].started_at - kit.fake.requests[0].started_at >= 0.04


async def test_no_retry_after_first_token(kit: Kit) -> None:
    kit.fake.plans = [Plan(tokens=10, error_after=2), Plan(tokens=10)]
    outcome = await drain(guard(kit.provider()))

    assert outcome.text == expected_text(2)
    assert outcome.error is not None
    assert outcome.error.error_type == kit.mid_stream_error_type
    assert len(kit.fake.requests) == 1


async def test_aclose_mid_stream_disconnects_upstream(kit: Kit) -> None:
    kit.fake.plans = [Plan(tokens=200, rate=50)]
    tokens = cast(Any, guard(kit.provider()))
    async with aclosing(tokens):
        got = [await anext(tokens), await anext(tokens)]
    assert "".join(t.text for t in got) == expected_text(2)
    await asyncio.wait_for(kit.fake.last.disconnected.wait(), timeout=1.0)
    assert not kit.fake.last.completed
    assert kit.fake.last.tokens_sent < 200


async def test_aclose_of_bare_provider_stream_disconnects_upstream(kit: Kit) -> None:
    kit.fake.plans = [Plan(tokens=200, rate=50)]
    tokens = cast(Any, kit.provider().stream(TURNS))
    async with aclosing(tokens):
        await anext(tokens)
    await asyncio.wait_for(kit.fake.last.disconnected.wait(), timeout=1.0)
    assert not kit.fake.last.completed


async def test_task_cancel_mid_stream_disconnects_upstream(kit: Kit) -> None:
    kit.fake.plans = [Plan(tokens=200, rate=50)]
    provider = kit.provider()
    first = asyncio.Event()

    async def consume() -> None:
        async with aclosing(cast(Any, guard(provider))) as tokens:
            async for _ in tokens:
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), timeout=5)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert task.cancelled(), "CancelledError propagates untouched"
    await asyncio.wait_for(kit.fake.last.disconnected.wait(), timeout=1.0)


async def test_task_cancel_while_upstream_stalls_disconnects(kit: Kit) -> None:
    kit.fake.plans = [Plan(tokens=5, stall_first_s=10)]
    provider = kit.provider()

    async def consume() -> None:
        async with aclosing(cast(Any, guard(provider))) as tokens:
            async for _ in tokens:
                pass

    task = asyncio.create_task(consume())
    await asyncio.wait_for(kit.fake.received.wait(), timeout=5)
    await asyncio.sleep(0.05)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert task.cancelled()
    await asyncio.wait_for(kit.fake.last.disconnected.wait(), timeout=1.0)


async def test_first_token_timeout(kit: Kit) -> None:
    kit.fake.plans = [Plan(tokens=5, stall_first_s=10)]
    timeouts = ProviderTimeouts(connect_s=2, first_token_s=0.3, idle_s=5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    outcome = await drain(guard(kit.provider(), timeouts=timeouts, max_retries=0))

    assert outcome.tokens == []
    assert outcome.error is not None
    assert outcome.error.error_type == "llm_timeout"
    assert "first token" in outcome.error.message
    assert loop.time() - started < 3, "the guard, not the 10 s stall, ended it"
    await asyncio.wait_for(kit.fake.last.disconnected.wait(), timeout=1.0)


async def test_first_token_timeout_is_retried(kit: Kit) -> None:
    kit.fake.plans = [Plan(tokens=5, stall_first_s=10), Plan(tokens=3)]
    timeouts = ProviderTimeouts(connect_s=2, first_token_s=0.3, idle_s=5)
    outcome = await drain(guard(kit.provider(), timeouts=timeouts, max_retries=1))

    assert outcome.error is None
    assert outcome.text == expected_text(3)
    assert len(kit.fake.requests) == 2


async def test_idle_timeout_after_first_token_is_not_retried(kit: Kit) -> None:
    kit.fake.plans = [Plan(tokens=5, stall_after=2, stall_s=10), Plan(tokens=5)]
    timeouts = ProviderTimeouts(connect_s=2, first_token_s=5, idle_s=0.3)
    outcome = await drain(guard(kit.provider(), timeouts=timeouts, max_retries=2))

    assert outcome.text == expected_text(2)
    assert outcome.error is not None
    assert outcome.error.error_type == "llm_timeout"
    assert "no token for" in outcome.error.message
    assert len(kit.fake.requests) == 1
    await asyncio.wait_for(kit.fake.last.disconnected.wait(), timeout=1.0)


async def test_steady_slow_stream_is_not_idle(kit: Kit) -> None:
    """Tokens every 0.05 s for longer than idle_s in total: no timeout."""
    kit.fake.plans = [Plan(tokens=8, rate=20)]
    timeouts = ProviderTimeouts(connect_s=2, first_token_s=5, idle_s=0.25)
    outcome = await drain(guard(kit.provider(), timeouts=timeouts))

    assert outcome.error is None
    assert outcome.text == expected_text(8)


async def test_fallback_answers_when_primary_is_down(kit: Kit) -> None:
    down = kit.provider(base_url=kit.url_on_port(closed_port()))
    kit.fake.plans = [Plan(tokens=4)]
    outcome = await drain(guard(down, max_retries=1, fallback=(kit.provider(), "model-a")))

    assert outcome.error is None
    assert outcome.text == expected_text(4)
    assert len(kit.fake.requests) == 1


class _Recording:
    """A fallback that notes whether it was ever asked."""

    name = "recording"

    def __init__(self) -> None:
        self.calls = 0

    async def stream(
        self,
        messages: Sequence[ChatTurn],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[Token]:
        self.calls += 1
        yield Token("fallback ")

    async def aclose(self) -> None:
        return None

    def info(self) -> ModelInfo:
        return ModelInfo(self.name, "x")


async def test_fallback_not_used_after_first_token(kit: Kit) -> None:
    kit.fake.plans = [Plan(tokens=10, drop_after=3)]
    fallback = _Recording()
    outcome = await drain(guard(kit.provider(), fallback=(fallback, None)))

    assert outcome.text == expected_text(3)
    assert outcome.error is not None
    assert outcome.error.error_type == "llm_unavailable"
    assert fallback.calls == 0
