"""OpenAI chat completions, and any server that speaks the same API (vLLM, llama.cpp, LM Studio...).

::

    provider = OpenAIProvider(settings.openai())
    async with aclosing(provider.stream([ChatTurn("user", "hi")])) as tokens:
        async for token in tokens: ...

The SDK's own retries are off: ``guarded_stream`` decides about retries, and only before
the first token, so a retry can never repeat text the client already has.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from app.llm import http_errors
from app.llm.base import ChatTurn, LlmProviderError, ModelInfo, Token, Usage
from app.settings import HttpProviderConfig, ProviderTimeouts

OPENAI_BASE_URL = "https://api.openai.com/v1"
# OpenAI-compatible servers without auth still need some key for the SDK to send.
NO_KEY = "no-key"
_LABEL = "OpenAI"


def sdk_timeout(timeouts: ProviderTimeouts) -> openai.Timeout:
    """The SDK's (httpx2) timeout: connect from config; reads as a backstop to the guard.

    The guard enforces the first-token and idle timeouts precisely; the read timeout here
    only stops a stream that nobody guards from hanging forever.
    """
    read_s = max(timeouts.first_token_s, timeouts.idle_s)
    return openai.Timeout(read_s, connect=timeouts.connect_s, pool=timeouts.connect_s)


def map_finish_reason(reason: str | None) -> str:
    """ "length" when the model hit the token limit, else "stop"."""
    return "length" if reason in ("length", "max_tokens") else "stop"


def _detail(body: object, fallback: str) -> str:
    if isinstance(body, Mapping):
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
    return fallback


def _kind(body: object) -> str | None:
    """OpenAI names an error by ``code`` (specific) and ``type`` (broad)."""
    if not isinstance(body, Mapping):
        return None
    for key in ("code", "type"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def map_openai_error(exc: BaseException, *, secret: str | None) -> LlmProviderError | None:
    """The ``LlmProviderError`` for an SDK or transport exception; None for anything else."""
    if isinstance(exc, openai.APITimeoutError):
        return http_errors.timeout_error(_LABEL)
    if isinstance(exc, openai.APIConnectionError):
        return http_errors.unavailable_error(_LABEL, exc.__cause__ or exc)
    if isinstance(exc, openai.APIStatusError):
        return http_errors.status_error(
            _LABEL,
            exc.status_code,
            _detail(exc.body, exc.message),
            headers=exc.response.headers,
            kind=_kind(exc.body),
            secret=secret,
        )
    if isinstance(exc, openai.APIError):
        # An ``error`` object inside a 200 stream.
        return http_errors.stream_error(
            _LABEL, _detail(exc.body, exc.message), kind=_kind(exc.body), secret=secret
        )
    return http_errors.transport_error(_LABEL, exc)


def to_openai_messages(messages: Sequence[ChatTurn]) -> list[ChatCompletionMessageParam]:
    out: list[ChatCompletionMessageParam] = []
    for turn in messages:
        if turn.role == "system":
            out.append({"role": "system", "content": turn.content})
        elif turn.role == "assistant":
            out.append({"role": "assistant", "content": turn.content})
        else:
            out.append({"role": "user", "content": turn.content})
    return out


class OpenAIProvider:
    name = "openai"

    def __init__(self, config: HttpProviderConfig) -> None:
        self._config = config
        self._secret = config.api_key
        # OpenAI itself wants ``max_completion_tokens`` (reasoning models reject
        # ``max_tokens``); compatible servers widely know only ``max_tokens``.
        self._limit_param = "max_completion_tokens" if config.base_url is None else "max_tokens"
        self._client = AsyncOpenAI(
            api_key=config.api_key or NO_KEY,
            base_url=config.base_url or OPENAI_BASE_URL,
            max_retries=0,
            timeout=sdk_timeout(config.timeouts),
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
        """Yield the answer's text deltas, then ``Token("", usage, finish_reason)``.

        Iterate under ``aclosing()``: the ``finally`` closes the HTTP response, which is
        what tells the server to stop generating.
        """
        extra: dict[str, Any] = {}
        if max_tokens is not None:
            extra[self._limit_param] = max_tokens
        response: openai.AsyncStream[ChatCompletionChunk] | None = None
        try:
            response = await self._client.chat.completions.create(
                model=model or self._config.default_model,
                messages=to_openai_messages(messages),
                stream=True,
                stream_options={"include_usage": True},
                **extra,
            )
            usage: Usage | None = None
            finish: str | None = None
            async for chunk in response:
                for choice in chunk.choices:
                    text = choice.delta.content if choice.delta is not None else None
                    if text:
                        yield Token(text, stamp=time.time())
                    if choice.finish_reason is not None:
                        finish = map_finish_reason(choice.finish_reason)
                if chunk.usage is not None:
                    usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            if finish is None:
                raise http_errors.truncated_error(_LABEL)
            yield Token("", usage=usage, finish_reason=finish, stamp=time.time())
        except LlmProviderError:
            raise
        except Exception as exc:
            mapped = map_openai_error(exc, secret=self._secret)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if response is not None:
                # Closing the response closes the connection mid-stream: the server
                # sees the disconnect and stops generating (and billing).
                await response.close()
