"""Hugging Face text-generation-inference (TGI), and Inference Endpoints that run it.

::

    provider = HuggingFaceProvider(settings.huggingface())
    async with aclosing(provider.stream(turns, max_tokens=256)) as tokens:
        async for token in tokens: ...

``POST /generate_stream`` takes one prompt string, so the chat turns are rendered with a
plain, model-neutral template (``render_prompt``)::

    System: <system text>

    User: <question>

    Assistant: <earlier answer>

    User: <question>

    Assistant:

The answer arrives as SSE ``data:`` events, one token each; special tokens (``</s>``, ...)
are skipped. The last event carries ``details``: ``finish_reason`` and
``generated_tokens``, and in newer TGI versions ``input_length``.

Usage: TGI reports the prompt's token count only as ``details.input_length``. Where that is
missing, the final token's ``usage`` is None rather than a made-up prompt count of 0.
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

_LABEL = "Hugging Face"
_ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}


def render_prompt(messages: Sequence[ChatTurn]) -> str:
    """The chat as a labelled transcript that ends where the assistant's answer begins."""
    parts = [f"{_ROLE_LABELS[t.role]}: {t.content.strip()}" for t in messages if t.content.strip()]
    parts.append("Assistant:")
    return "\n\n".join(parts)


def map_finish_reason(reason: object) -> str:
    """TGI's ``eos_token`` and ``stop_sequence`` are "stop"; ``length`` is "length"."""
    return "length" if reason == "length" else "stop"


def generate_body(messages: Sequence[ChatTurn], max_tokens: int | None) -> dict[str, Any]:
    parameters: dict[str, Any] = {"details": True}
    if max_tokens is not None:
        parameters["max_new_tokens"] = max_tokens
    return {"inputs": render_prompt(messages), "parameters": parameters}


class HuggingFaceProvider:
    name = "huggingface"

    def __init__(self, config: HttpProviderConfig) -> None:
        if not config.base_url:
            raise ValueError("the Hugging Face provider needs a base URL")
        self._config = config
        self._secret = config.api_key
        headers = {"authorization": f"Bearer {config.api_key}"} if config.api_key else None
        self._client = make_client(config.base_url, config.timeouts, headers)

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
        """Yield each non-special token's text, then ``Token("", usage, finish_reason)``.

        A TGI server serves one model, so ``model`` only names it; it is not sent.
        Iterate under ``aclosing()``: the ``finally`` closes the HTTP response at once.
        """
        request = self._client.build_request(
            "POST",
            "/generate_stream",
            content=orjson.dumps(generate_body(messages, max_tokens)),
            headers={"content-type": "application/json", "accept": "text/event-stream"},
        )
        response: httpx.Response | None = None
        try:
            response = await self._client.send(request, stream=True)
            if response.status_code != 200:
                raise await status_error_from(_LABEL, response, secret=self._secret)
            final: Token | None = None
            async for line in response.aiter_lines():
                # SSE: only ``data:`` lines matter; blank lines and ``:`` keep-alives do not.
                if not line.startswith("data:"):
                    continue
                try:
                    data = orjson.loads(line[5:])
                except orjson.JSONDecodeError:
                    raise LlmProviderError(
                        "llm_unavailable", f"{_LABEL} sent an event that is not JSON"
                    ) from None
                if not isinstance(data, dict):
                    raise LlmProviderError("llm_unavailable", f"{_LABEL} sent an unexpected event")
                if "error" in data:
                    kind = data.get("error_type")
                    raise http_errors.stream_error(
                        _LABEL,
                        str(data["error"]),
                        kind=kind if isinstance(kind, str) else None,
                        secret=self._secret,
                    )
                token = data.get("token")
                if isinstance(token, dict) and not token.get("special"):
                    text = token.get("text")
                    if text:
                        yield Token(text, stamp=time.time())
                details = data.get("details")
                if isinstance(details, dict):
                    final = Token(
                        "",
                        usage=_usage(details),
                        finish_reason=map_finish_reason(details.get("finish_reason")),
                    )
                elif data.get("generated_text") is not None and final is None:
                    # A server started without details: the full text marks the end.
                    final = Token("", finish_reason="stop")
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


def _usage(details: dict[str, Any]) -> Usage | None:
    prompt = details.get("input_length")
    completion = details.get("generated_tokens")
    if isinstance(prompt, int) and isinstance(completion, int):
        return Usage(prompt, completion)
    return None
