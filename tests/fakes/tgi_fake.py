"""A fake text-generation-inference: ``POST /generate_stream`` answering SSE ``data:`` events.

Each event is ``{"index", "token": {"id", "text", "logprob", "special"},
"generated_text": null, "details": null}``. The last token is the special ``</s>`` (for
``finish="stop"``) and its event carries ``generated_text`` and, when the request asked
for ``details``, ``{"finish_reason", "generated_tokens", "seed", "input_length"}``
(``input_length`` only when ``report_input_length``, as in newer TGI versions). Errors are
``{"error": "...", "error_type": "..."}``, as a status or as an event.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.fakes.llm_server import (
    FakeLlmServer,
    Plan,
    RecordedRequest,
    count_words,
    expected_text,
    token_text,
)

_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("Input validation error: `inputs` cannot be empty", "validation"),
    401: ("Authorization header is correct, but the token seems invalid", None),
    403: ("You don't have access to this model", None),
    404: ("Model not found", None),
    422: ("Input validation error: `max_new_tokens` must be strictly positive", "validation"),
    424: ("Request failed during generation: Server error: CUDA out of memory", "generation"),
    429: ("Model is overloaded", "overloaded"),
    500: ("Request failed during generation: incomplete generation", "incomplete_generation"),
    503: ("Model is currently loading", None),
}


def _sse(data: Any) -> bytes:
    return b"data:" + orjson.dumps(data) + b"\n\n"


class TgiFake(FakeLlmServer):
    default_error_kind = "generation"

    def __init__(self, *, api_key: str | None = None, report_input_length: bool = True) -> None:
        super().__init__(api_key=api_key)
        self.report_input_length = report_input_length

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/generate_stream", self.handle_stream)

    def authorized(self, request: web.Request) -> bool:
        return self.api_key is None or request.headers.get("Authorization") == (
            f"Bearer {self.api_key}"
        )

    def model_of(self, body: Any) -> str | None:
        return None  # TGI serves one model; requests do not name it

    def prompt_words(self, body: Any) -> int:
        return count_words(str(body.get("inputs", ""))) if isinstance(body, dict) else 0

    def error_body(self, status: int, request: RecordedRequest) -> Any:
        message, kind = _ERRORS.get(status, ("Internal server error", None))
        body: dict[str, Any] = {"error": message}
        if kind is not None:
            body["error_type"] = kind
        if status == 503:
            body["estimated_time"] = 20.0
        return body

    def _defers_last(self, i: int, request: RecordedRequest) -> bool:
        """A "length" ending rides on the last real token, as TGI sends it."""
        plan = request.plan
        return plan is not None and plan.finish == "length" and i == plan.tokens - 1

    def _token(self, i: int, text: str) -> dict[str, Any]:
        return {"id": 1000 + i, "text": text, "logprob": -0.5, "special": False}

    def token_frame(self, i: int, text: str, request: RecordedRequest) -> bytes:
        if self._defers_last(i, request):
            return b""
        return _sse(
            {
                "index": i + 1,
                "token": self._token(i, text),
                "generated_text": None,
                "details": None,
            }
        )

    def error_frame(self, kind: str | None, request: RecordedRequest) -> bytes:
        return _sse({"error": "Request failed during generation: Server error", "error_type": kind})

    def ending(self, plan: Plan, sent: int, request: RecordedRequest) -> bytes:
        parameters = request.body.get("parameters", {}) if isinstance(request.body, dict) else {}
        details: dict[str, Any] | None = None
        generated = sent
        if plan.finish == "stop":
            generated += 1  # the </s> that ended it
        if parameters.get("details"):
            details = {
                "finish_reason": "eos_token" if plan.finish == "stop" else "length",
                "generated_tokens": generated,
                "seed": None,
            }
            if self.report_input_length:
                details["input_length"] = self.prompt_words(request.body)
        if plan.finish == "stop":
            token: dict[str, Any] = {"id": 2, "text": "</s>", "logprob": -0.1, "special": True}
        else:
            token = self._token(sent - 1, token_text(sent - 1))
        return _sse(
            {
                "index": generated,
                "token": token,
                "generated_text": expected_text(sent),
                "details": details,
            }
        )
