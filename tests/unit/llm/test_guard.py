"""guarded_stream's rules, with tiny in-test providers (no I/O)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from typing import Any, cast

import httpx
import pytest

from app.llm.base import ChatTurn, LlmProviderError, ModelInfo, Token
from app.llm.guard import MAX_RETRY_DELAY_S, guarded_stream, retry_delay_s
from app.settings import ProviderTimeouts

TURNS = (ChatTurn("user", "hi"),)
SLOW = ProviderTimeouts(connect_s=1, first_token_s=5, idle_s=5)

Script = Callable[[int], AsyncIterator[Token]]


class Scripted:
    """A provider whose attempt number ``n`` runs ``script(n)``; it records what happened."""

    def __init__(self, script: Script, name: str = "scripted") -> None:
        self.name = name
        self.script = script
        self.calls: list[dict[str, Any]] = []
        self.closed = 0

    def stream(
        self,
        messages: Sequence[ChatTurn],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[Token]:
        self.calls.append({"model": model, "max_tokens": max_tokens})
        return self._run(len(self.calls) - 1)

    async def _run(self, n: int) -> AsyncIterator[Token]:
        try:
            async for token in self.script(n):
                yield token
        finally:
            self.closed += 1

    async def aclose(self) -> None:
        return None

    def info(self) -> ModelInfo:
        return ModelInfo(self.name, "m")


def words(*texts: str) -> Script:
    async def script(n: int) -> AsyncIterator[Token]:
        for text in texts:
            yield Token(text)
        yield Token("", finish_reason="stop")

    return script


def fail_first(times: int, error: BaseException, then: Script) -> Script:
    async def script(n: int) -> AsyncIterator[Token]:
        if n < times:
            raise error
        async for token in then(n):
            yield token

    return script


def guard(provider: Any, **kwargs: Any) -> AsyncIterator[Token]:
    options: dict[str, Any] = {
        "model": "m1",
        "timeouts": SLOW,
        "max_retries": 2,
        "retry_base_delay_s": 0.001,
    }
    options.update(kwargs)
    return guarded_stream(provider, TURNS, **options)


async def collect(stream: AsyncIterator[Token]) -> tuple[str, LlmProviderError | None]:
    text = []
    try:
        async with aclosing(cast(Any, stream)) as tokens:
            async for token in tokens:
                text.append(token.text)
    except LlmProviderError as exc:
        return "".join(text), exc
    return "".join(text), None


# -- passing through ---------------------------------------------------------------------


async def test_tokens_pass_through_with_final_and_arguments() -> None:
    provider = Scripted(words("a ", "b "))
    tokens = [t async for t in guard(provider, max_tokens=9)]
    assert [t.text for t in tokens] == ["a ", "b ", ""]
    assert tokens[-1].finish_reason == "stop"
    assert provider.calls == [{"model": "m1", "max_tokens": 9}]
    assert provider.closed == 1


# -- retries -----------------------------------------------------------------------------


async def test_retryable_error_before_first_token_is_retried() -> None:
    error = LlmProviderError("llm_overloaded", "busy")
    provider = Scripted(fail_first(2, error, words("ok ")))
    text, exc = await collect(guard(provider))
    assert (text, exc) == ("ok ", None)
    assert len(provider.calls) == 3


async def test_retries_stop_at_max_retries() -> None:
    error = LlmProviderError("llm_unavailable", "down")
    provider = Scripted(fail_first(10, error, words("never ")))
    text, exc = await collect(guard(provider, max_retries=2))
    assert exc is error
    assert text == ""
    assert len(provider.calls) == 3


async def test_non_retryable_error_is_not_retried() -> None:
    error = LlmProviderError("llm_auth", "bad key")
    provider = Scripted(fail_first(1, error, words("ok ")))
    _, exc = await collect(guard(provider))
    assert exc is error
    assert len(provider.calls) == 1


async def test_retry_after_is_waited_for() -> None:
    error = LlmProviderError("llm_rate_limited", "slow down", retry_after_s=0.2)
    provider = Scripted(fail_first(1, error, words("ok ")))
    started = time.monotonic()
    text, _ = await collect(guard(provider))
    assert text == "ok "
    assert time.monotonic() - started >= 0.19


async def test_retry_after_beyond_the_cap_is_not_waited_for() -> None:
    error = LlmProviderError("llm_rate_limited", "come back tomorrow", retry_after_s=3600)
    provider = Scripted(fail_first(1, error, words("ok ")))
    _, exc = await collect(guard(provider))
    assert exc is error
    assert len(provider.calls) == 1


async def test_error_after_first_token_is_never_retried() -> None:
    async def script(n: int) -> AsyncIterator[Token]:
        yield Token("partial ")
        raise LlmProviderError("llm_overloaded", "busy")

    provider = Scripted(script)
    text, exc = await collect(guard(provider, max_retries=5))
    assert text == "partial "
    assert exc is not None and exc.error_type == "llm_overloaded"
    assert len(provider.calls) == 1


async def test_empty_tokens_do_not_count_as_a_first_token() -> None:
    async def script(n: int) -> AsyncIterator[Token]:
        if n == 0:
            yield Token("")
            raise LlmProviderError("llm_unavailable", "dropped")
        yield Token("whole ")

    text, exc = await collect(guard(Scripted(script)))
    assert (text, exc) == ("whole ", None)


def test_retry_delay_backoff_and_cap() -> None:
    assert retry_delay_s(0, 0.5, None, rng=lambda: 1.0) == 0.5
    assert retry_delay_s(0, 0.5, None, rng=lambda: 0.0) == 0.25
    assert retry_delay_s(3, 0.5, None, rng=lambda: 1.0) == 4.0
    assert retry_delay_s(20, 0.5, None, rng=lambda: 1.0) == MAX_RETRY_DELAY_S
    assert retry_delay_s(0, 0.5, 2.5) == 2.5
    assert retry_delay_s(5, 0.5, 0.0) == 0.0
    assert retry_delay_s(0, 0.5, MAX_RETRY_DELAY_S + 1) is None


# -- network exceptions and bugs ----------------------------------------------------------


async def test_network_exception_becomes_unavailable_and_is_retried() -> None:
    provider = Scripted(fail_first(1, httpx.ConnectError("refused"), words("ok ")))
    text, exc = await collect(guard(provider))
    assert (text, exc) == ("ok ", None)
    assert len(provider.calls) == 2


async def test_network_timeout_becomes_llm_timeout() -> None:
    provider = Scripted(fail_first(5, httpx.ReadTimeout("slow"), words("ok ")))
    _, exc = await collect(guard(provider, max_retries=0))
    assert exc is not None and exc.error_type == "llm_timeout"


async def test_a_bug_propagates_unchanged_and_is_not_retried() -> None:
    provider = Scripted(fail_first(1, KeyError("oops"), words("ok ")))
    with pytest.raises(KeyError):
        await collect(guard(provider))
    assert len(provider.calls) == 1


# -- fallback ----------------------------------------------------------------------------


async def test_fallback_answers_after_retries_fail() -> None:
    primary = Scripted(fail_first(9, LlmProviderError("llm_unavailable", "down"), words()))
    fallback = Scripted(words("plan ", "b "), name="fallback")
    text, exc = await collect(guard(primary, max_retries=1, fallback=(fallback, "fb-model")))
    assert (text, exc) == ("plan b ", None)
    assert len(primary.calls) == 2
    assert fallback.calls == [{"model": "fb-model", "max_tokens": None}]


async def test_fallback_answers_a_non_retryable_failure_too() -> None:
    primary = Scripted(fail_first(9, LlmProviderError("llm_auth", "bad key"), words()))
    fallback = Scripted(words("ok "), name="fallback")
    text, _ = await collect(guard(primary, fallback=(fallback, None)))
    assert text == "ok "
    assert len(primary.calls) == 1


async def test_fallback_failure_surfaces_with_primary_as_cause() -> None:
    first = LlmProviderError("llm_auth", "bad key")
    second = LlmProviderError("llm_bad_request", "nope")
    primary = Scripted(fail_first(9, first, words()))
    fallback = Scripted(fail_first(9, second, words()), name="fallback")
    _, exc = await collect(guard(primary, fallback=(fallback, None)))
    assert exc is second
    assert exc.__cause__ is first


async def test_fallback_not_used_after_first_token() -> None:
    async def script(n: int) -> AsyncIterator[Token]:
        yield Token("half ")
        raise LlmProviderError("llm_unavailable", "dropped")

    fallback = Scripted(words("other "), name="fallback")
    text, exc = await collect(guard(Scripted(script), fallback=(fallback, None)))
    assert text == "half "
    assert exc is not None and exc.error_type == "llm_unavailable"
    assert fallback.calls == []


# -- timeouts ----------------------------------------------------------------------------


def sleeper(before_first: float, tokens: int = 3, between: float = 0.0) -> Script:
    async def script(n: int) -> AsyncIterator[Token]:
        await asyncio.sleep(before_first)
        for i in range(tokens):
            if i:
                await asyncio.sleep(between)
            yield Token(f"t{i} ")

    return script


async def test_first_token_timeout() -> None:
    provider = Scripted(sleeper(before_first=30))
    timeouts = ProviderTimeouts(connect_s=1, first_token_s=0.1, idle_s=5)
    started = time.monotonic()
    text, exc = await collect(guard(provider, timeouts=timeouts, max_retries=0))
    assert text == ""
    assert exc is not None and exc.error_type == "llm_timeout"
    assert exc.retryable
    assert time.monotonic() - started < 2
    assert provider.closed == 1, "the provider's generator was closed"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0, "the guard's own cancel is withdrawn"


async def test_first_token_timeout_then_retry_succeeds() -> None:
    async def script(n: int) -> AsyncIterator[Token]:
        if n == 0:
            await asyncio.sleep(30)
        yield Token("late ")

    timeouts = ProviderTimeouts(connect_s=1, first_token_s=0.1, idle_s=5)
    text, exc = await collect(guard(Scripted(script), timeouts=timeouts))
    assert (text, exc) == ("late ", None)


async def test_idle_timeout_shorter_than_first_token_timeout() -> None:
    """The idle deadline is earlier than the pending first-token timer: it still fires."""
    provider = Scripted(sleeper(before_first=0, tokens=3, between=30))
    timeouts = ProviderTimeouts(connect_s=1, first_token_s=30, idle_s=0.1)
    started = time.monotonic()
    text, exc = await collect(guard(provider, timeouts=timeouts))
    assert text == "t0 "
    assert exc is not None and exc.error_type == "llm_timeout"
    assert time.monotonic() - started < 2
    assert len(provider.calls) == 1, "after the first token: not retried"


async def test_steady_tokens_outlast_the_idle_timeout() -> None:
    provider = Scripted(sleeper(before_first=0, tokens=12, between=0.03))
    timeouts = ProviderTimeouts(connect_s=1, first_token_s=0.1, idle_s=0.1)
    text, exc = await collect(guard(provider, timeouts=timeouts))
    assert exc is None
    assert text == "".join(f"t{i} " for i in range(12))


async def test_a_slow_consumer_is_not_an_idle_provider() -> None:
    provider = Scripted(words("a ", "b ", "c "))
    timeouts = ProviderTimeouts(connect_s=1, first_token_s=0.03, idle_s=0.03)
    got = []
    async with aclosing(cast(Any, guard(provider, timeouts=timeouts))) as tokens:
        async for token in tokens:
            got.append(token.text)
            await asyncio.sleep(0.1)  # three idle timeouts while holding a token
    assert got == ["a ", "b ", "c ", ""]


async def test_provider_that_swallows_the_timeout_cancel_leaves_no_cancel_behind() -> None:
    """A token that arrives although the timer fired: the pending cancel is withdrawn."""

    async def script(n: int) -> AsyncIterator[Token]:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            pass  # misbehaving: answers anyway
        yield Token("anyway ")

    timeouts = ProviderTimeouts(connect_s=1, first_token_s=0.05, idle_s=5)
    text, exc = await collect(guard(Scripted(script), timeouts=timeouts))
    assert (text, exc) == ("anyway ", None)
    await asyncio.sleep(0)  # a leftover cancel would land here
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_provider_that_turns_the_timeout_cancel_into_its_own_error() -> None:
    """An SDK that wraps cancellation in its own exception still yields llm_timeout."""

    async def script(n: int) -> AsyncIterator[Token]:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise RuntimeError("request interrupted") from None
        yield Token("never ")

    timeouts = ProviderTimeouts(connect_s=1, first_token_s=0.05, idle_s=5)
    text, exc = await collect(guard(Scripted(script), timeouts=timeouts, max_retries=0))
    assert text == ""
    assert exc is not None and exc.error_type == "llm_timeout"
    await asyncio.sleep(0)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


# -- closing and cancelling ---------------------------------------------------------------


async def test_aclose_closes_the_provider_generator_at_once() -> None:
    provider = Scripted(sleeper(before_first=0, tokens=100, between=0.01))
    tokens = cast(Any, guard(provider))
    await anext(tokens)
    assert provider.closed == 0
    await tokens.aclose()
    assert provider.closed == 1


async def test_outside_cancel_propagates_as_cancelled_error() -> None:
    provider = Scripted(sleeper(before_first=30))
    timeouts = ProviderTimeouts(connect_s=1, first_token_s=0.2, idle_s=0.2)

    async def consume() -> None:
        async for _ in guard(provider, timeouts=timeouts):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert provider.closed == 1
    assert len(provider.calls) == 1, "a cancel is not a retryable failure"


async def test_outside_cancel_during_retry_sleep_propagates() -> None:
    error = LlmProviderError("llm_rate_limited", "wait", retry_after_s=5)
    provider = Scripted(fail_first(9, error, words()))

    async def consume() -> None:
        async for _ in guard(provider):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(provider.calls) == 1


async def test_hot_path_throughput() -> None:
    """Generous bound: 100k tokens through the guard well within seconds."""
    n = 100_000

    async def script(k: int) -> AsyncIterator[Token]:
        token = Token("x")
        for _ in range(n):
            yield token

    started = time.perf_counter()
    count = 0
    async for _ in guard(Scripted(script)):
        count += 1
    elapsed = time.perf_counter() - started
    assert count == n
    assert elapsed < 5.0, f"{n / elapsed:.0f} tokens/s"
