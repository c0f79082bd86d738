"""A fake Anthropic Messages API: the streaming event sequence, pings and error events.

``POST /v1/messages`` with ``stream: true`` answers ``message_start``,
``content_block_start``, ``ping``, one ``content_block_delta`` (``text_delta``) per token,
``content_block_stop``, ``message_delta`` (stop_reason, usage) and ``message_stop``.
Errors, as a status or as an ``error`` event, are
``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.fakes.llm_server import FakeLlmServer, Plan, RecordedRequest

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", 'messages: roles must alternate between "user" and "assistant"'),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),
    529: ("overloaded_error", "Overloaded"),
}


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class AnthropicFake(FakeLlmServer):
    default_error_kind = "overloaded_error"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.handle_stream)

    def authorized(self, request: web.Request) -> bool:
        """The API takes the key as ``x-api-key`` or as a bearer token (newer SDKs)."""
        if self.api_key is None:
            return True
        return request.headers.get("x-api-key") == self.api_key or request.headers.get(
            "Authorization"
        ) == (f"Bearer {self.api_key}")

    def error_body(self, status: int, request: RecordedRequest) -> Any:
        if status == 401:
            kind, message = "authentication_error", "invalid x-api-key"
        elif status == 404:
            kind, message = "not_found_error", f"model: {self.model_of(request.body)}"
        else:
            kind, message = _ERRORS.get(status, ("api_error", "Internal server error"))
        return {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": "req_fake",
        }

    def prelude(self, request: RecordedRequest) -> bytes:
        message: dict[str, Any] = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self.model_of(request.body) or "claude-fake",
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.prompt_words(request.body), "output_tokens": 1},
        }
        return (
            _event("message_start", {"type": "message_start", "message": message})
            + _event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            + _event("ping", {"type": "ping"})
        )

    def token_frame(self, i: int, text: str, request: RecordedRequest) -> bytes:
        return _event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            },
        )

    def error_frame(self, kind: str | None, request: RecordedRequest) -> bytes:
        messages = {"overloaded_error": "Overloaded", "api_error": "Internal server error"}
        return _event(
            "error",
            {
                "type": "error",
                "error": {"type": kind, "message": messages.get(kind or "", "Stream failed")},
            },
        )

    def ending(self, plan: Plan, sent: int, request: RecordedRequest) -> bytes:
        stop_reason = "max_tokens" if plan.finish == "length" else "end_turn"
        return (
            _event("content_block_stop", {"type": "content_block_stop", "index": 0})
            + _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": sent},
                },
            )
            + _event("message_stop", {"type": "message_stop"})
        )
