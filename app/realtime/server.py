"""The Socket.IO edge: connect auth, the client events, rooms.

Events of one socket are handled one at a time in arrival order (``async_handlers=False``),
so handlers stay short: they validate, authorize, store, publish and answer the ack. Rooms
are joined only here, after membership was checked in the database; a room name is never
taken from the client.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import socketio
from pydantic import BaseModel, ValidationError

from app.auth.tokens import TokenCodec
from app.auth.users import get_user
from app.bus.base import Bus, session_pattern, user_pattern, workspace_pattern
from app.chat import events, service
from app.chat.turns import ChatTurns
from app.db.engine import SessionFactory
from app.errors import InsightHubError, Unauthorized
from app.realtime import asgi_driver, jsonmod
from app.realtime.engine_internals import emit_fast
from app.realtime.relay import Relay
from app.realtime.schemas import (
    CancelMessageIn,
    ChatMessageIn,
    ResumeIn,
    SessionRef,
    WorkspaceRef,
)
from app.realtime.validation import describe
from app.settings import Settings
from app.workspaces.service import get_workspace

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Ack = dict[str, Any]


def error_ack(error_type: str, message: str) -> Ack:
    return {"ok": False, "error_type": error_type, "message": message}


@dataclass(eq=False)
class SocketState:
    user_id: uuid.UUID
    expires_at: float
    sessions: set[uuid.UUID] = field(default_factory=set)
    workspaces: set[uuid.UUID] = field(default_factory=set)
    expiry: asyncio.TimerHandle | None = None


class RealtimeServer:
    def __init__(
        self,
        settings: Settings,
        db: SessionFactory,
        bus: Bus,
        turns: ChatTurns,
        tokens: TokenCodec,
    ) -> None:  # no I/O here: app.main builds it before the event loop runs
        self.settings = settings
        self.db = db
        self.bus = bus
        self.turns = turns
        self.tokens = tokens
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            async_handlers=False,
            cors_allowed_origins=settings.allowed_origins(),
            max_http_buffer_size=settings.max_frame_bytes,
            ping_interval=settings.ping_interval_s,
            ping_timeout=settings.ping_timeout_s,
            json=jsonmod,
            logger=False,
            engineio_logger=False,
        )
        asgi_driver.install(self.sio)  # closed connections freed at once, not by a full GC
        self.relay = Relay(self.sio, turns)
        self.relay.on_access_revoked = self._revoke
        self.sockets: dict[str, SocketState] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._register()

    # wiring ----------------------------------------------------------------------------
    def _register(self) -> None:
        sio = self.sio
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        sio.on("chat_message", self._event(ChatMessageIn, self.chat_message))
        sio.on("cancel_message", self._event(CancelMessageIn, self.cancel_message))
        sio.on("join_session", self._event(SessionRef, self.join_session))
        sio.on("leave_session", self._event(SessionRef, self.leave_session))
        sio.on("join_workspace", self._event(WorkspaceRef, self.join_workspace))
        sio.on("leave_workspace", self._event(WorkspaceRef, self.leave_workspace))
        sio.on("resume", self._event(ResumeIn, self.resume))

    async def start(self) -> None:
        listeners = getattr(self.bus, "recovery_listeners", None)
        if listeners is not None:
            listeners.append(self.catch_up_after_outage)
        await self.bus.consume_events(self.relay.on_event)
        await self.bus.bind(f"node.{self.bus.node_id}.*")
        await self.bus.bind("workspace.*.workspace_status")

    def _event(
        self, model: type[M], fn: Callable[[str, SocketState, M], Awaitable[Ack]]
    ) -> Callable[..., Awaitable[Ack]]:
        async def handle(sid: str, data: Any = None, *_extra: Any) -> Ack:
            state = self.sockets.get(sid)
            if state is None:
                return error_ack("unauthorized", "not connected")
            if not isinstance(data, dict):
                return error_ack("validation_error", "the payload must be a JSON object")
            try:
                payload = model.model_validate(data)
            except ValidationError as exc:
                return error_ack("validation_error", describe(exc))
            try:
                return await fn(sid, state, payload)
            except InsightHubError as exc:
                return error_ack(exc.error_type, exc.message)
            except Exception:
                log.exception("handler for %s failed", model.__name__)
                return error_ack("server_error", "the server failed to handle that event")

        return handle

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # connect ---------------------------------------------------------------------------
    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            claims = self.tokens.verify(token)
            await get_user(self.db, claims.user_id)
        except Unauthorized as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"error_type": "unauthorized"}
            ) from None
        state = SocketState(claims.user_id, claims.expires_at)
        self.sockets[sid] = state
        await self.sio.enter_room(sid, f"user:{claims.user_id}")
        await self.bus.bind(user_pattern(claims.user_id))
        loop = asyncio.get_running_loop()
        state.expiry = loop.call_later(
            max(0.0, claims.expires_at - time.time()),
            lambda: self._spawn(self._expire(sid)),
        )
        # `connected` goes out after the CONNECT packet, never from inside this handler.
        self._spawn(self._greet(sid, claims.user_id))
        return True

    async def _greet(self, sid: str, user_id: uuid.UUID) -> None:
        await asyncio.sleep(0)
        if sid in self.sockets:
            emit_fast(
                self.sio,
                "connected",
                {"message": "connected", "user_id": str(user_id), "timestamp": events.timestamp()},
                sid,
            )

    async def _expire(self, sid: str) -> None:
        if sid in self.sockets:
            emit_fast(
                self.sio,
                "error",
                {
                    "error_type": "unauthorized",
                    "message": "token expired; reconnect with a fresh token",
                    "timestamp": events.timestamp(),
                },
                sid,
            )
            await asyncio.sleep(0.05)
            await self.sio.disconnect(sid)

    async def _on_disconnect(self, sid: str, *_reason: Any) -> None:
        state = self.sockets.pop(sid, None)
        if state is None:
            return
        if state.expiry is not None:
            state.expiry.cancel()
        await self.bus.unbind(user_pattern(state.user_id))
        for session_id in state.sessions:
            await self.bus.unbind(session_pattern(session_id))
        for workspace_id in state.workspaces:
            await self.bus.unbind(workspace_pattern(workspace_id))

    async def catch_up_after_outage(self) -> None:
        """After the bus comes back: events published meanwhile are gone, so each watched
        session's room gets what the database has (clients drop what they already hold)."""
        since = datetime.fromtimestamp(self.relay.last_event_at - 2.0, UTC)
        sessions = {sid for state in self.sockets.values() for sid in state.sessions}
        for event, data in await self.turns.catch_up(sessions, since):
            emit_fast(self.sio, event, data, f"session:{data['session_id']}")
        log.info("caught %d sessions up after a bus outage", len(sessions))

    async def _revoke(self, user_id: str, workspace_id: str) -> None:
        """A member was removed (or the workspace deleted): its sockets leave the room."""
        wid = uuid.UUID(workspace_id)
        for sid, state in list(self.sockets.items()):
            if str(state.user_id) == user_id and wid in state.workspaces:
                await self.leave_workspace(sid, state, WorkspaceRef(workspace_id=wid))

    # rooms -----------------------------------------------------------------------------
    async def _join_session_room(self, sid: str, state: SocketState, session_id: uuid.UUID) -> None:
        if session_id in state.sessions:
            return
        await self.bus.bind(session_pattern(session_id))
        state.sessions.add(session_id)
        await self.sio.enter_room(sid, f"session:{session_id}")

    async def join_session(self, sid: str, state: SocketState, p: SessionRef) -> Ack:
        await service.get_session(self.db, p.session_id, state.user_id)
        await self._join_session_room(sid, state, p.session_id)
        return {"ok": True, "session_id": str(p.session_id)}

    async def leave_session(self, sid: str, state: SocketState, p: SessionRef) -> Ack:
        if p.session_id in state.sessions:
            state.sessions.discard(p.session_id)
            await self.sio.leave_room(sid, f"session:{p.session_id}")
            await self.bus.unbind(session_pattern(p.session_id))
        return {"ok": True}

    async def join_workspace(self, sid: str, state: SocketState, p: WorkspaceRef) -> Ack:
        workspace = await get_workspace(self.db, p.workspace_id, state.user_id)
        if p.workspace_id not in state.workspaces:
            await self.bus.bind(workspace_pattern(p.workspace_id))
            state.workspaces.add(p.workspace_id)
            await self.sio.enter_room(sid, f"workspace:{p.workspace_id}")
        return {"ok": True, "workspace_id": str(p.workspace_id), "status": workspace.status}

    async def leave_workspace(self, sid: str, state: SocketState, p: WorkspaceRef) -> Ack:
        if p.workspace_id in state.workspaces:
            state.workspaces.discard(p.workspace_id)
            await self.sio.leave_room(sid, f"workspace:{p.workspace_id}")
            await self.bus.unbind(workspace_pattern(p.workspace_id))
        return {"ok": True}

    # chat ------------------------------------------------------------------------------
    async def chat_message(self, sid: str, state: SocketState, p: ChatMessageIn) -> Ack:
        accepted = await self.turns.accept(
            state.user_id,
            workspace_id=p.workspace_id,
            session_id=p.session_id,
            message=p.message,
            rag_type=p.rag_type,
            client_message_id=p.client_message_id,
        )
        await self._join_session_room(sid, state, accepted.session_id)
        await self.turns.publish(accepted)
        return accepted.ack()

    async def cancel_message(self, sid: str, state: SocketState, p: CancelMessageIn) -> Ack:
        message_id, status = await self.turns.cancel(state.user_id, p.session_id, p.message_id)
        return {"ok": True, "message_id": str(message_id), "status": status}

    async def resume(self, sid: str, state: SocketState, p: ResumeIn) -> Ack:
        await service.get_session(self.db, p.session_id, state.user_id)
        await self._join_session_room(sid, state, p.session_id)
        mid = str(p.message_id)
        self.relay.hold(sid, mid)
        ended = False
        try:
            current = await self.turns.resume_state(state.user_id, p.session_id, p.message_id)
            start = p.offset if p.attempt in (None, current.attempt) else 0
            if current.status != "pending" and start < len(current.text):
                emit_fast(
                    self.sio,
                    events.CHAT_CHUNK,
                    events.chunk(
                        str(p.session_id), mid, current.attempt, -1, start, current.text[start:]
                    ),
                    sid,
                )
            if current.final is not None:
                emit_fast(self.sio, current.final[0], current.final[1], sid)
                ended = True
        finally:
            await self.relay.release(sid, mid, ended=ended)
        return {
            "ok": True,
            "status": current.status,
            "attempt": current.attempt,
            "length": len(current.text),
        }
