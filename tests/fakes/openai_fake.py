"""A fake OpenAI API: chat.completion.chunk SSE ending in ``data: [DONE]``, and embeddings.

``base_url`` ends in ``/v1`` as the SDK expects. The wire format follows the API
reference: a first chunk with the role, one chunk per content delta, a chunk with
``finish_reason``, then (``stream_options.include_usage``) a chunk with no choices and the
usage, then ``[DONE]``. Errors are ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import base64
import struct
import time
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.llm_server import FakeLlmServer, Plan, RecordedRequest, count_words
from tests.fakes.vectors import fake_embedding

_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid 'messages': empty array.", "invalid_request_error", None),
    403: ("You are not allowed to sample from this model", "invalid_request_error", None),
    429: (
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


def _sse(data: Any) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class OpenAIFake(FakeLlmServer):
    default_error_kind = "server_error"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.handle_stream)
        app.router.add_post("/v1/embeddings", self.handle_embeddings)

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def authorized(self, request: web.Request) -> bool:
        return self.api_key is None or request.headers.get("Authorization") == (
            f"Bearer {self.api_key}"
        )

    def error_body(self, status: int, request: RecordedRequest) -> Any:
        if status == 401:
            # A careless server echoes the key it rejected: the provider must scrub it.
            key = request.headers.get("Authorization", "").removeprefix("Bearer ")
            return {
                "error": {
                    "message": f"Incorrect API key provided: {key}. You can find your API key "
                    "at https://platform.openai.com/account/api-keys.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            }
        if status == 404:
            model = self.model_of(request.body)
            return {
                "error": {
                    "message": f"The model `{model}` does not exist or you do not have access "
                    "to it.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "model_not_found",
                }
            }
        message, kind, code = _ERRORS.get(status, ("Something went wrong.", "server_error", None))
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def _chunk(self, rec: RecordedRequest, choices: list[Any], usage: Any = None) -> bytes:
        return _sse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self.model_of(rec.body) or "gpt-fake",
                "system_fingerprint": "fp_fake",
                "choices": choices,
                "usage": usage,
            }
        )

    def prelude(self, request: RecordedRequest) -> bytes:
        return self._chunk(
            request,
            [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        )

    def token_frame(self, i: int, text: str, request: RecordedRequest) -> bytes:
        return self._chunk(
            request,
            [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}],
        )

    def error_frame(self, kind: str | None, request: RecordedRequest) -> bytes:
        return _sse(
            {
                "error": {
                    "message": "The server had an error while processing your request.",
                    "type": kind,
                    "param": None,
                    "code": None,
                }
            }
        )

    def ending(self, plan: Plan, sent: int, request: RecordedRequest) -> bytes:
        out = self._chunk(
            request,
            [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": plan.finish}],
        )
        options = request.body.get("stream_options") if isinstance(request.body, dict) else None
        if isinstance(options, dict) and options.get("include_usage"):
            prompt = self.prompt_words(request.body)
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": sent,
                "total_tokens": prompt + sent,
            }
            out += self._chunk(request, [], usage)
        return out + b"data: [DONE]\n\n"

    async def handle_embeddings(self, request: web.Request) -> web.StreamResponse:
        rec = await self.record(request)
        if not self.authorized(request):
            return self.json_error(401, rec)
        plan = self.next_plan()
        if plan.status is not None:
            headers = {"Retry-After": f"{plan.retry_after:g}"} if plan.retry_after else None
            return self.json_error(plan.status, rec, headers)
        body = rec.body if isinstance(rec.body, dict) else {}
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = fake_embedding(str(text))
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        # Answer out of order: the API only promises ``index``, and clients must sort.
        data.reverse()
        tokens = count_words(*(str(t) for t in texts))
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
            dumps=lambda v: orjson.dumps(v).decode(),
        )
