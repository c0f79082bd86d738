"""A fake Ollama: ``POST /api/chat`` answering NDJSON lines, and ``POST /api/embed``.

Lines are ``{"model", "created_at", "message": {"role", "content"}, "done": false}``; the
last has ``done: true``, ``done_reason`` and the counts (``prompt_eval_count``,
``eval_count``) plus durations. Errors are ``{"error": "..."}``, as a status or as a line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.llm_server import FakeLlmServer, Plan, RecordedRequest
from tests.fakes.vectors import fake_embedding

_ERRORS: dict[int, str] = {
    400: "invalid message format",
    401: "unauthorized",
    429: "too many requests",
    500: "llama runner process has terminated: exit status 2",
    503: "server busy, please try again.  maximum pending requests exceeded",
}


def _line(data: Any) -> bytes:
    return orjson.dumps(data) + b"\n"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class OllamaFake(FakeLlmServer):
    content_type = "application/x-ndjson"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat", self.handle_stream)
        app.router.add_post("/api/embed", self.handle_embed)

    def error_body(self, status: int, request: RecordedRequest) -> Any:
        if status == 404:
            return {
                "error": f'model "{self.model_of(request.body)}" not found, try pulling it first'
            }
        return {"error": _ERRORS.get(status, "internal error")}

    def _message(self, rec: RecordedRequest, text: str, **extra: Any) -> bytes:
        return _line(
            {
                "model": self.model_of(rec.body),
                "created_at": _now(),
                "message": {"role": "assistant", "content": text},
                "done": False,
                **extra,
            }
        )

    def token_frame(self, i: int, text: str, request: RecordedRequest) -> bytes:
        return self._message(request, text)

    def error_frame(self, kind: str | None, request: RecordedRequest) -> bytes:
        return _line({"error": kind or "an error was encountered while running the model"})

    def ending(self, plan: Plan, sent: int, request: RecordedRequest) -> bytes:
        return self._message(
            request,
            "",
            done=True,
            done_reason=plan.finish,
            total_duration=4883583458,
            load_duration=1334875,
            prompt_eval_count=self.prompt_words(request.body),
            prompt_eval_duration=342546000,
            eval_count=sent,
            eval_duration=4535599000,
        )

    async def handle_embed(self, request: web.Request) -> web.StreamResponse:
        rec = await self.record(request)
        body = rec.body if isinstance(rec.body, dict) else {}
        if self.models is not None and body.get("model") not in self.models:
            return self.json_error(404, rec)
        plan = self.next_plan()
        if plan.status is not None:
            return self.json_error(plan.status, rec)
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        return web.json_response(
            {
                "model": body.get("model"),
                "embeddings": [fake_embedding(str(t)) for t in texts],
                "total_duration": 14143917,
                "load_duration": 1019500,
                "prompt_eval_count": len(texts),
            },
            dumps=lambda v: orjson.dumps(v).decode(),
        )
