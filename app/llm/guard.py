"""Retries, fallback and timeouts around any provider stream.

::

    tokens = guarded_stream(provider, turns, model=None, timeouts=settings.timeouts(),
                            max_retries=settings.llm_max_retries,
                            retry_base_delay_s=settings.llm_retry_base_delay_s,
                            fallback=(registry.get("local"), None))
    async with aclosing(tokens):
        async for token in tokens: ...

Rules:

* A retryable ``LlmProviderError`` raised before the first text is retried with
  exponential backoff (a server's Retry-After wins; one longer than
  ``MAX_RETRY_DELAY_S`` is not waited for). After the first text, nothing is retried:
  the client already has that text, and a second attempt would repeat or contradict it.
* When the primary still fails before its first text, the fallback (if any) answers
  instead, under the same rules. Its failure is raised with the primary's as the cause.
* No token within ``first_token_s`` of a request, or no token for ``idle_s`` after one,
  is ``LlmProviderError("llm_timeout")``.
* A network exception that escaped a provider becomes ``llm_unavailable`` or
  ``llm_timeout``; any other exception is a bug and propagates unchanged, and so does
  ``CancelledError``.

The timeouts cost almost nothing per token: one timer per stream, which moves a deadline
forward instead of being re-created, and which fires only to look at that deadline.
Iterate the guard from one task, as ``async for`` does.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from typing import cast

from app.llm.base import ChatTurn, LlmProvider, LlmProviderError, Token
from app.llm.http_errors import transport_error
from app.settings import ProviderTimeouts

log = logging.getLogger(__name__)

# An interactive answer does not wait longer than this before a retry.
MAX_RETRY_DELAY_S = 10.0


def retry_delay_s(
    attempt: int,
    base_delay_s: float,
    retry_after_s: float | None,
    *,
    rng: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before retry number ``attempt`` (0 for the first), or None: don't.

    Without a Retry-After: ``base * 2**attempt`` with jitter in its upper half (so many
    clients that failed together do not come back together), capped at
    ``MAX_RETRY_DELAY_S``. With one: exactly that, unless it is longer than the cap.
    """
    if retry_after_s is not None:
        return retry_after_s if retry_after_s <= MAX_RETRY_DELAY_S else None
    backoff = base_delay_s * (2.0**attempt) * (0.5 + 0.5 * rng())
    return min(MAX_RETRY_DELAY_S, backoff)


class _Watchdog:
    """One timer per stream that cancels the task once a deadline passes while waiting.

    ``wait(timeout_s)`` before each wait for the provider moves the deadline; the timer
    is created only when none is pending, so a steady stream creates one every
    ``idle_s``, not one per token. It cancels only while the stream waits for the
    provider, never while the consumer holds a token.
    """

    __slots__ = (
        "_cancelling",
        "_deadline",
        "_handle",
        "_loop",
        "_task",
        "_timer_at",
        "fired",
        "waiting",
    )

    def __init__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("guarded_stream must run in an asyncio task")
        self._loop = asyncio.get_running_loop()
        self._task = task
        self._cancelling = task.cancelling()
        self._handle: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._timer_at = 0.0
        self.waiting = False
        self.fired = False

    def wait(self, timeout_s: float) -> None:
        deadline = self._deadline = self._loop.time() + timeout_s
        self.waiting = True
        if self._handle is None:
            self._arm(deadline)
        elif deadline < self._timer_at:
            # Only when the deadline moves earlier (first_token_s > idle_s) is the
            # pending timer too late; moving later costs nothing until it fires.
            self._handle.cancel()
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        self._timer_at = when
        self._handle = self._loop.call_at(when, self._check)

    def _check(self) -> None:
        self._handle = None
        if not self.waiting:
            return  # the next wait() arms a new timer
        if self._loop.time() < self._deadline:
            self._arm(self._deadline)
            return
        self.fired = True
        self._task.cancel()

    def stop(self) -> None:
        self.waiting = False
        self.fired = False
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def owns_cancel(self) -> bool:
        """Whether the CancelledError being handled is this timer's, and only its."""
        if not self.fired:
            return False
        self.fired = False
        return self._task.uncancel() <= self._cancelling

    async def take_back_cancel(self) -> None:
        """The timer fired, but a token won the race: withdraw the pending cancel.

        ``task.cancel()`` on a task that was already woken is delivered at its next
        await, which would be in the consumer's code; take it here instead.
        """
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            if not self.owns_cancel():
                raise
            return
        self.owns_cancel()


def _timeout(name: str, timeouts: ProviderTimeouts, sent_text: bool) -> LlmProviderError:
    if sent_text:
        return LlmProviderError("llm_timeout", f"{name} sent no token for {timeouts.idle_s:g} s")
    return LlmProviderError(
        "llm_timeout", f"{name} sent no first token within {timeouts.first_token_s:g} s"
    )


async def guarded_stream(
    primary: LlmProvider,
    messages: Sequence[ChatTurn],
    *,
    model: str | None,
    timeouts: ProviderTimeouts,
    max_retries: int,
    retry_base_delay_s: float,
    max_tokens: int | None = None,
    fallback: tuple[LlmProvider, str | None] | None = None,
) -> AsyncIterator[Token]:
    """Yield ``primary``'s tokens under the module's retry, fallback and timeout rules.

    Closing this generator closes the provider's generator at once (and with it the
    upstream HTTP stream).
    """
    watchdog = _Watchdog()
    attempt = 0
    failure: LlmProviderError
    while True:
        sent_text = False
        inner: AsyncIterator[Token] | None = None
        try:
            try:
                watchdog.wait(timeouts.first_token_s)
                inner = primary.stream(messages, model=model, max_tokens=max_tokens)
                async for token in inner:
                    watchdog.waiting = False
                    if watchdog.fired:
                        await watchdog.take_back_cancel()
                    if token.text:
                        sent_text = True
                    yield token
                    watchdog.wait(timeouts.idle_s)
                watchdog.waiting = False
                if watchdog.fired:
                    await watchdog.take_back_cancel()
                return
            except asyncio.CancelledError:
                if watchdog.owns_cancel():
                    raise _timeout(primary.name, timeouts, sent_text) from None
                raise
            except Exception as exc:
                if watchdog.fired:
                    # The provider turned the guard's cancel into an error of its own.
                    await watchdog.take_back_cancel()
                    raise _timeout(primary.name, timeouts, sent_text) from exc
                if isinstance(exc, LlmProviderError):
                    raise
                mapped = transport_error(primary.name, exc)
                if mapped is None:
                    raise
                raise mapped from exc
            finally:
                watchdog.stop()
                aclose = getattr(inner, "aclose", None)  # None: never started
                if aclose is not None:
                    await aclose()
        except LlmProviderError as exc:
            if sent_text:
                raise
            if exc.retryable and attempt < max_retries:
                delay = retry_delay_s(attempt, retry_base_delay_s, exc.retry_after_s)
                if delay is not None:
                    attempt += 1
                    log.info(
                        "%s failed before its first token (%s); retry %d in %.2f s",
                        primary.name,
                        exc.error_type,
                        attempt,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
            if fallback is None:
                raise
            failure = exc
            break

    fallback_provider, fallback_model = fallback
    log.warning(
        "%s failed before its first token (%s); answering with %s",
        primary.name,
        failure.error_type,
        fallback_provider.name,
    )
    tokens = cast(
        AsyncGenerator[Token, None],
        guarded_stream(
            fallback_provider,
            messages,
            model=fallback_model,
            timeouts=timeouts,
            max_retries=max_retries,
            retry_base_delay_s=retry_base_delay_s,
            max_tokens=max_tokens,
        ),
    )
    try:
        async with aclosing(tokens):
            async for token in tokens:
                yield token
    except LlmProviderError as exc:
        if exc.__cause__ is None:
            exc.__cause__ = failure
        raise
