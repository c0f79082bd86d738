"""What every fake LLM server shares: a plan per request, the records, the streaming loop.

A fake is an async context manager that serves on a free 127.0.0.1 port inside the
test's event loop::

    async with OpenAIFake(api_key="sk-test") as fake:
        fake.plans = [Plan(status=429, retry_after=0.05), Plan(tokens=5)]
        ...                                   # point the provider at fake.base_url
        assert fake.requests[-1].body["stream"] is True

Each request takes the next ``Plan`` from ``fake.plans`` (the last one stays, so one plan
serves every request), and each is recorded: headers, JSON body, and when (if ever) the
client disconnected before the answer was complete.

Subclasses speak one API's wire format: they say how a token, an error event and the end
of a stream look, and what that API's error bodies are.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Plan:
    """What the fake does for one request.

    tokens/rate    stream ``tokens`` tokens at ``rate`` per second (0: as fast as it can)
    status         answer this HTTP status with the API's error body instead
    retry_after    the Retry-After header (seconds) sent with ``status``
    error_after    send the API's error event after that many tokens, then end
    error_kind     that error event's kind (the API's own name, e.g. "overloaded_error")
    stall_first_s  wait this long after the headers, before the first token
    stall_after    before that token, wait ``stall_s``
    drop_after     after that many tokens, cut the TCP connection
    finish         "stop" or "length": why the stream ended
    """

    tokens: int = 5
    rate: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    error_after: int | None = None
    error_kind: str | None = None
    stall_first_s: float = 0.0
    stall_after: int | None = None
    stall_s: float = 0.0
    drop_after: int | None = None
    finish: str = "stop"


@dataclass
class RecordedRequest:
    path: str
    headers: Mapping[str, str]
    body: Any
    started_at: float
    peer: tuple[str, int] | None = None  # the client's address: same port, same connection
    plan: Plan | None = None
    tokens_sent: int = 0
    completed: bool = False
    dropped_by_server: bool = False
    disconnected_at: float | None = None
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    def mark_disconnected(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.disconnected_at is None:
            self.disconnected_at = loop.time()
            self.disconnected.set()


def token_text(i: int) -> str:
    """The text of the fake's token number ``i``."""
    return f"w{i} "


def expected_text(n: int) -> str:
    return "".join(token_text(i) for i in range(n))


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def count_words(*texts: str) -> int:
    return sum(len(t.split()) for t in texts)


class FakeLlmServer:
    """Base class: runs the aiohttp app and the plan-driven streaming loop."""

    content_type = "text/event-stream"
    default_error_kind: str | None = None

    def __init__(self, *, api_key: str | None = None, models: set[str] | None = None) -> None:
        self._initial = (api_key, models)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.reset()

    def reset(self) -> None:
        """Back to the state it started in: one server can serve many tests."""
        self.api_key, self.models = self._initial  # models None: any model name is known
        self.plans: list[Plan] = [Plan()]
        self.requests: list[RecordedRequest] = []
        self.received = asyncio.Event()  # set by the first request

    # -- what a subclass provides -------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def error_body(self, status: int, request: RecordedRequest) -> Any:
        """That API's JSON error body for an HTTP ``status``."""
        raise NotImplementedError

    def prelude(self, request: RecordedRequest) -> bytes:
        return b""

    def token_frame(self, i: int, text: str, request: RecordedRequest) -> bytes:
        raise NotImplementedError

    def error_frame(self, kind: str | None, request: RecordedRequest) -> bytes:
        raise NotImplementedError

    def ending(self, plan: Plan, sent: int, request: RecordedRequest) -> bytes:
        raise NotImplementedError

    def authorized(self, request: web.Request) -> bool:
        return True

    def model_of(self, body: Any) -> str | None:
        return body.get("model") if isinstance(body, dict) else None

    def prompt_words(self, body: Any) -> int:
        """Prompt token count the fake reports: words in the request's messages."""
        if isinstance(body, dict):
            messages = body.get("messages") or []
            words = count_words(*(str(m.get("content", "")) for m in messages))
            system = body.get("system")
            if isinstance(system, str):
                words += count_words(system)
            return words
        return 0

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> FakeLlmServer:
        app = web.Application()
        self.add_routes(app)
        # handler_cancellation: a client that goes away cancels the handler at once,
        # which is how the fake notices a disconnect even while it stalls.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None)
        assert sockets
        self.port = sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What the provider's config takes as ``base_url``."""
        return self.root_url

    def next_plan(self) -> Plan:
        return self.plans.pop(0) if len(self.plans) > 1 else self.plans[0]

    @property
    def last(self) -> RecordedRequest:
        return self.requests[-1]

    # -- request handling -----------------------------------------------------------------

    async def record(self, request: web.Request) -> RecordedRequest:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        rec = RecordedRequest(
            path=request.path,
            headers=dict(request.headers),
            body=body,
            started_at=asyncio.get_running_loop().time(),
            peer=request.transport.get_extra_info("peername") if request.transport else None,
        )
        self.requests.append(rec)
        self.received.set()
        return rec

    def json_error(
        self, status: int, rec: RecordedRequest, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        return web.Response(
            status=status,
            body=orjson.dumps(self.error_body(status, rec)),
            content_type="application/json",
            headers=headers,
        )

    async def handle_stream(self, request: web.Request) -> web.StreamResponse:
        """Auth, model lookup, the plan's failure, or the plan's stream."""
        rec = await self.record(request)
        if not self.authorized(request):
            return self.json_error(401, rec)
        model = self.model_of(rec.body)
        if self.models is not None and model not in self.models:
            return self.json_error(404, rec)
        plan = rec.plan = self.next_plan()
        if plan.status is not None:
            headers = {}
            if plan.retry_after is not None:
                headers["Retry-After"] = f"{plan.retry_after:g}"
            return self.json_error(plan.status, rec, headers)
        return await self.stream(request, rec, plan)

    async def stream(
        self, request: web.Request, rec: RecordedRequest, plan: Plan
    ) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        resp = web.StreamResponse(headers={"Content-Type": self.content_type})
        try:
            await resp.prepare(request)
            await resp.write(self.prelude(rec))
            if plan.stall_first_s:
                await asyncio.sleep(plan.stall_first_s)
            start = loop.time()
            for i in range(plan.tokens + 1):
                if plan.error_after is not None and i == plan.error_after:
                    await resp.write(
                        self.error_frame(plan.error_kind or self.default_error_kind, rec)
                    )
                    rec.completed = True
                    await resp.write_eof()
                    return resp
                if plan.drop_after is not None and i == plan.drop_after:
                    rec.dropped_by_server = True
                    assert request.transport is not None
                    request.transport.abort()
                    return resp
                if i == plan.tokens:
                    break
                if plan.stall_after is not None and i == plan.stall_after:
                    await asyncio.sleep(plan.stall_s)
                if plan.rate > 0:
                    delay = start + i / plan.rate - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await resp.write(self.token_frame(i, token_text(i), rec))
                rec.tokens_sent = i + 1
            await resp.write(self.ending(plan, plan.tokens, rec))
            rec.completed = True
            await resp.write_eof()
            return resp
        except (asyncio.CancelledError, ConnectionResetError):
            if not rec.dropped_by_server:
                rec.mark_disconnected(loop)
            raise
