"""Ollama's native chat API: ``POST /api/chat`` answering in NDJSON lines.

::

    provider = OllamaProvider(settings.ollama())
    async with aclosing(provider.stream(turns, model="llama3.2")) as tokens:
        async for token in tokens: ...

Each line is ``{"message": {"content": ...}, "done": false}``; the last has ``done: true``
with ``done_reason`` and the token counts. An ``{"error": ...}`` line can appear at any
point, and an unknown model is a 404.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import orjson

from app.llm import http_errors
from app.llm._httpx_stream import make_client, status_error_from
from app.llm.base import ChatTurn, LlmProviderError, ModelInfo, Token, Usage
from app.settings import HttpProviderConfig

_LABEL = "Ollama"


def map_done_reason(reason: object) -> str:
    return "length" if reason == "length" else "stop"


def chat_body(messages: Sequence[ChatTurn], model: str, max_tokens: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": t.role, "content": t.content} for t in messages],
        "stream": True,
    }
    if max_tokens is not None:
        body["options"] = {"num_predict": max_tokens}
    return body


class OllamaProvider:
    name = "ollama"

    def __init__(self, config: HttpProviderConfig) -> None:
        if not config.base_url:
            raise ValueError("the Ollama provider needs a base URL")
        self._config = config
        self._client = make_client(config.base_url, config.timeouts)

    def info(self) -> ModelInfo:
        return ModelInfo(self.name, self._config.default_model)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def stream(
        self,
        messages: Sequence[ChatTurn],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[Token]:
        """Yield each line's text, then ``Token("", usage, finish_reason)`` from the done line.

        Iterate under ``aclosing()``: the ``finally`` closes the HTTP response at once,
        which is how Ollama learns to stop generating.
        """
        body = chat_body(messages, model or self._config.default_model, max_tokens)
        request = self._client.build_request(
            "POST",
            "/api/chat",
            content=orjson.dumps(body),
            headers={"content-type": "application/json"},
        )
        response: httpx.Response | None = None
        try:
            response = await self._client.send(request, stream=True)
            if response.status_code != 200:
                raise await status_error_from(_LABEL, response)
            final: Token | None = None
            async for line in response.aiter_lines():
                if not line:
                    continue
                try:
                    data = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise LlmProviderError(
                        "llm_unavailable", f"{_LABEL} sent a line that is not JSON"
                    ) from None
                if not isinstance(data, dict):
                    raise LlmProviderError("llm_unavailable", f"{_LABEL} sent an unexpected line")
                error = data.get("error")
                if error is not None:
                    raise http_errors.stream_error(_LABEL, str(error), kind=None)
                message = data.get("message")
                text = message.get("content") if isinstance(message, dict) else None
                if text:
                    yield Token(text, stamp=time.time())
                if data.get("done"):
                    prompt = data.get("prompt_eval_count")
                    completion = data.get("eval_count")
                    usage = (
                        Usage(int(prompt), int(completion))
                        if isinstance(prompt, int) and isinstance(completion, int)
                        else None
                    )
                    final = Token(
                        "",
                        usage=usage,
                        finish_reason=map_done_reason(data.get("done_reason")),
                    )
                    # The done line is the last; reading on to the end of the body (it
                    # follows at once) keeps the connection in the pool.
            if final is None:
                raise http_errors.truncated_error(_LABEL)
            final.stamp = time.time()
            yield final
        except LlmProviderError:
            raise
        except Exception as exc:
            mapped = http_errors.transport_error(_LABEL, exc)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if response is not None:
                await response.aclose()
