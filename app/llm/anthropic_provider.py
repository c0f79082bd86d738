"""Anthropic's Messages API, streamed.

::

    provider = AnthropicProvider(settings.anthropic())
    async with aclosing(provider.stream(turns, max_tokens=512)) as tokens:
        async for token in tokens: ...

The API differs from chat completions in three ways this module absorbs: the system
prompt is a parameter, not a message; roles must alternate starting with "user"; and
``max_tokens`` is required.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import anthropic
from anthropic import AsyncAnthropic
from anthropic.types import (
    MessageParam,
    RawContentBlockDeltaEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    RawMessageStreamEvent,
    TextDelta,
)

from app.llm import http_errors
from app.llm.base import ChatTurn, LlmProviderError, ModelInfo, Token, Usage
from app.settings import HttpProviderConfig, ProviderTimeouts

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
DEFAULT_MAX_TOKENS = 1024
NO_KEY = "no-key"
# A conversation that starts with the assistant (a greeting, a trimmed history) still
# needs a user turn first; this one carries no meaning the model could act on.
CONTINUATION_PROMPT = "(continuing the conversation)"
_LABEL = "Anthropic"


def sdk_timeout(timeouts: ProviderTimeouts) -> anthropic.Timeout:
    """Connect timeout from config; the read timeout only backs up the guard's timers."""
    read_s = max(timeouts.first_token_s, timeouts.idle_s)
    return anthropic.Timeout(read_s, connect=timeouts.connect_s, pool=timeouts.connect_s)


def map_stop_reason(reason: str | None) -> str:
    """``max_tokens`` (and a full context window) → "length"; every other ending → "stop"."""
    return "length" if reason in ("max_tokens", "model_context_window_exceeded") else "stop"


def to_anthropic_messages(messages: Sequence[ChatTurn]) -> tuple[str | None, list[MessageParam]]:
    """Split out the system prompt and merge turns so roles alternate, user first.

    Empty turns are dropped (the API rejects empty text); consecutive turns of one role
    are joined with a blank line.
    """
    system_parts: list[str] = []
    merged: list[tuple[str, list[str]]] = []
    for turn in messages:
        if not turn.content.strip():
            continue
        if turn.role == "system":
            system_parts.append(turn.content)
            continue
        if merged and merged[-1][0] == turn.role:
            merged[-1][1].append(turn.content)
        else:
            merged.append((turn.role, [turn.content]))
    if merged and merged[0][0] == "assistant":
        merged.insert(0, ("user", [CONTINUATION_PROMPT]))
    out: list[MessageParam] = []
    for role, parts in merged:
        content = "\n\n".join(parts)
        if role == "assistant":
            out.append({"role": "assistant", "content": content})
        else:
            out.append({"role": "user", "content": content})
    system = "\n\n".join(system_parts) if system_parts else None
    return system, out


def _body_error(body: object) -> Mapping[str, Any] | None:
    """The ``error`` object of ``{"type": "error", "error": {"type", "message"}}``."""
    if isinstance(body, Mapping):
        inner = body.get("error")
        if isinstance(inner, Mapping):
            return inner
    return None


def map_anthropic_error(exc: BaseException, *, secret: str | None) -> LlmProviderError | None:
    """The ``LlmProviderError`` for an SDK or transport exception; None for anything else."""
    if isinstance(exc, anthropic.APITimeoutError):
        return http_errors.timeout_error(_LABEL)
    if isinstance(exc, anthropic.APIConnectionError):
        return http_errors.unavailable_error(_LABEL, exc.__cause__ or exc)
    if isinstance(exc, anthropic.APIStatusError):
        inner = _body_error(exc.body)
        kind = inner.get("type") if inner is not None else None
        message = inner.get("message") if inner is not None else None
        detail = message if isinstance(message, str) and message else None
        kind = kind if isinstance(kind, str) else None
        if exc.status_code < 400:
            # An ``error`` event inside a stream that began with 200.
            return http_errors.stream_error(_LABEL, detail, kind=kind, secret=secret)
        return http_errors.status_error(
            _LABEL,
            exc.status_code,
            detail or exc.message,
            headers=exc.response.headers,
            kind=kind,
            secret=secret,
        )
    if isinstance(exc, anthropic.APIError):
        return http_errors.stream_error(_LABEL, exc.message, kind=None, secret=secret)
    return http_errors.transport_error(_LABEL, exc)


class AnthropicProvider:
    name = "anthropic"

    def __init__(
        self, config: HttpProviderConfig, *, default_max_tokens: int = DEFAULT_MAX_TOKENS
    ) -> None:
        self._config = config
        self._secret = config.api_key
        self._default_max_tokens = default_max_tokens
        self._client = AsyncAnthropic(
            api_key=config.api_key or NO_KEY,
            base_url=config.base_url or ANTHROPIC_BASE_URL,
            max_retries=0,
            timeout=sdk_timeout(config.timeouts),
            open_telemetry=False,
        )

    def info(self) -> ModelInfo:
        return ModelInfo(self.name, self._config.default_model)

    async def aclose(self) -> None:
        await self._client.close()

    async def stream(
        self,
        messages: Sequence[ChatTurn],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[Token]:
        """Yield text deltas, then ``Token("", usage, finish_reason)`` at ``message_stop``.

        Iterate under ``aclosing()``: the ``finally`` closes the HTTP response at once.
        """
        system, turns = to_anthropic_messages(messages)
        if not turns:
            raise LlmProviderError("llm_bad_request", "Anthropic needs at least one user message")
        extra: dict[str, Any] = {}
        if system is not None:
            extra["system"] = system
        response: anthropic.AsyncStream[RawMessageStreamEvent] | None = None
        try:
            response = await self._client.messages.create(
                model=model or self._config.default_model,
                messages=turns,
                max_tokens=max_tokens if max_tokens is not None else self._default_max_tokens,
                stream=True,
                **extra,
            )
            prompt_tokens: int | None = None
            completion_tokens = 0
            stop_reason: str | None = None
            stopped = False
            async for event in response:
                if isinstance(event, RawContentBlockDeltaEvent):
                    delta = event.delta
                    if isinstance(delta, TextDelta) and delta.text:
                        yield Token(delta.text, stamp=time.time())
                elif isinstance(event, RawMessageStartEvent):
                    prompt_tokens = event.message.usage.input_tokens
                    completion_tokens = event.message.usage.output_tokens
                elif isinstance(event, RawMessageDeltaEvent):
                    stop_reason = event.delta.stop_reason
                    completion_tokens = event.usage.output_tokens
                    if event.usage.input_tokens is not None:
                        prompt_tokens = event.usage.input_tokens
                elif isinstance(event, RawMessageStopEvent):
                    # Not ``break``: the body ends right after, and reading that end
                    # returns the connection to the pool instead of closing it.
                    stopped = True
            if not stopped:
                raise http_errors.truncated_error(_LABEL)
            usage_out = (
                Usage(prompt_tokens, completion_tokens) if prompt_tokens is not None else None
            )
            yield Token(
                "", usage=usage_out, finish_reason=map_stop_reason(stop_reason), stamp=time.time()
            )
        except LlmProviderError:
            raise
        except Exception as exc:
            mapped = map_anthropic_error(exc, secret=self._secret)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if response is not None:
                await response.close()
