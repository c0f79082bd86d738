"""``create_app(settings)``: the ASGI app of an API node (Socket.IO around FastAPI).

Everything is built here without I/O; the lifespan connects, migrates (embedded SQLite),
starts the relay and, on the embedded default, the workers as tasks in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import socketio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from app.api import auth, health, sessions, workspaces
from app.api.errors import install_error_handlers
from app.auth.sign_in_throttle import SignInThrottle
from app.auth.tokens import TokenCodec
from app.bus.base import Bus
from app.bus.memory import InMemoryBus
from app.chat.turns import ChatTurns
from app.context import AppContext
from app.db.engine import make_engine, make_session_factory
from app.db.migrate import upgrade_database
from app.errors import ServiceUnavailable
from app.heap import freeze_startup_heap
from app.llm.registry import ProviderRegistry
from app.llm.synthetic_provider import StreamRecorder
from app.realtime.backpressure import BackpressureGuard
from app.realtime.server import RealtimeServer
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "web" / "static"
VENDOR_DIR = (
    Path(__file__).resolve().parents[1] / "web" / "node_modules" / "socket.io-client" / "dist"
)


def make_bus(settings: Settings) -> Bus:
    if settings.amqp_url:
        from app.bus.amqp import AmqpBus

        return AmqpBus(
            settings.amqp_url,
            node_id=settings.node_id,
            publish_timeout_s=settings.publish_timeout_s,
            delivery_limit=settings.job_delivery_limit,
            event_batch_interval_s=settings.event_batch_interval_s,
        )
    return InMemoryBus(node_id=settings.node_id, delivery_limit=settings.job_delivery_limit)


def make_recorder(settings: Settings) -> StreamRecorder:
    path = settings.synthetic_record_path
    return StreamRecorder(Path(path) if path else None)


def build_context(settings: Settings) -> AppContext:
    engine = make_engine(settings)
    db = make_session_factory(engine)
    bus = make_bus(settings)
    providers = ProviderRegistry(settings, recorder=make_recorder(settings))
    tokens = TokenCodec(settings.resolved_jwt_secret(), settings.jwt_ttl_s)
    turns = ChatTurns(settings, db, bus)
    sign_ins = SignInThrottle(
        per_account=settings.sign_in_failures_per_account,
        per_address=settings.sign_in_failures_per_address,
        window_s=settings.sign_in_failure_window_s,
    )
    return AppContext(settings, engine, db, bus, providers, tokens, turns, sign_ins)


async def start_workers(ctx: AppContext, kinds: set[str]) -> list[Any]:
    """The workers this process runs: all of them on the embedded default."""
    from app.chat.worker import ChatWorker
    from app.workspaces.provisioning import WorkspaceWorker

    started: list[Any] = []
    if "workspaces" in kinds:
        started.append(WorkspaceWorker(ctx.db, ctx.bus, ctx.providers))
    if "documents" in kinds:
        from app.documents.worker import DocumentWorker

        started.append(DocumentWorker(ctx.settings, ctx.db, ctx.bus, ctx.providers))
    if "chat" in kinds:
        from app.rag.retrieval import Retriever

        retriever = Retriever(ctx.db, ctx.providers)
        started.append(
            ChatWorker(ctx.settings, ctx.db, ctx.bus, ctx.providers, retriever=retriever.retrieve)
        )
    for worker in started:
        await worker.start()
    return started


async def stop_workers(workers: list[Any]) -> None:
    for worker in reversed(workers):
        try:
            await worker.stop()
        except Exception:
            log.exception("stopping %s failed", type(worker).__name__)


async def connect(ctx: AppContext, realtime: RealtimeServer) -> None:
    await ctx.bus.start()
    await realtime.start()
    if not ctx.settings.distributed:
        ctx.workers = await start_workers(ctx, {"chat", "documents", "workspaces"})


async def _connect_later(ctx: AppContext, realtime: RealtimeServer) -> None:
    while True:
        await asyncio.sleep(2.0)
        try:
            await connect(ctx, realtime)
        except ServiceUnavailable:
            continue
        log.info("connected to the broker")
        return


def create_app(settings: Settings | None = None) -> socketio.ASGIApp:
    settings = settings or get_settings()
    ctx = build_context(settings)
    realtime = RealtimeServer(settings, ctx.db, ctx.bus, ctx.turns, ctx.tokens)
    ctx.realtime = realtime
    guard = BackpressureGuard(realtime.sio, settings.max_send_queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        try:
            if settings.should_migrate():
                await upgrade_database(ctx.engine)
            try:
                await connect(ctx, realtime)
            except ServiceUnavailable as exc:
                # An API node starts while the broker is away: /readyz says so, and the
                # connection is tried again in the background until it comes back.
                log.warning("the broker is unreachable (%s); retrying in the background", exc)
                tasks.append(asyncio.create_task(_connect_later(ctx, realtime), name="bus-connect"))
            tasks.append(asyncio.create_task(guard.run(), name="backpressure"))
            freeze_startup_heap()
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await stop_workers(ctx.workers)
            await ctx.bus.close()
            await ctx.providers.aclose()
            await ctx.engine.dispose()

    api = FastAPI(
        title="InsightHub",
        version="0.1.0",
        description="Real-time LLM streaming over REST and Socket.IO; see docs/protocol.md.",
        lifespan=lifespan,
    )
    api.state.ctx = ctx
    origins = settings.allowed_origins()
    if origins:
        # The same origins Socket.IO accepts; with none set, only same-origin pages call in.
        api.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
        )
    api.state.guard = guard
    install_error_handlers(api)
    api.include_router(auth.router)
    api.include_router(workspaces.router)
    api.include_router(sessions.router)
    api.include_router(health.router)
    _mount_optional_routers(api)
    _mount_page(api)
    return socketio.ASGIApp(realtime.sio, other_asgi_app=api, socketio_path="socket.io")


def _mount_optional_routers(api: FastAPI) -> None:
    from app.api import documents, metrics, stream

    api.include_router(documents.router)
    api.include_router(stream.router)
    api.include_router(metrics.router)


def _mount_page(api: FastAPI) -> None:
    api.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")

    @api.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @api.api_route(
        "/vendor/{name}", methods=["GET", "HEAD"], include_in_schema=False, response_model=None
    )
    async def vendor(name: str) -> FileResponse | JSONResponse:
        allowed = {"socket.io.esm.min.js", "socket.io.esm.min.js.map"}
        path = VENDOR_DIR / name
        if name not in allowed or not path.is_file():
            return JSONResponse(
                {
                    "detail": "socket.io-client is not installed: run `npm ci` in web/ "
                    "(scripts/serve does it)",
                    "error_type": "not_found",
                },
                404,
            )
        return FileResponse(path, media_type="text/javascript")
