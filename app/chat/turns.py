"""The chat turn as the edges (Socket.IO, SSE) drive it: send, cancel, resume.

An answer belongs to its session, not to a socket. Cancels and "what is the text now"
questions go to whichever worker generates the message, over the control exchange; the
database answers when no worker holds it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from app.bus.base import Bus, session_pattern
from app.bus.messages import CancelCommand, TextRequest
from app.chat import events, service, store
from app.chat.finals import final_event, publish_stored_final
from app.chat.jobs import kick, publish_chat_job
from app.db.engine import SessionFactory
from app.db.models import ChatSession, Message, Workspace
from app.db.types import utcnow
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class ResumeState:
    status: str
    attempt: int
    text: str
    final: tuple[str, dict[str, Any]] | None  # the final event, for an answer that has ended


class ChatTurns:
    def __init__(self, settings: Settings, db: SessionFactory, bus: Bus) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self._final_waiters: dict[uuid.UUID, list[asyncio.Future[str]]] = {}
        self._text_waiters: dict[str, asyncio.Future[tuple[int, str]]] = {}
        self._setup_slots = asyncio.Semaphore(settings.turn_setup_concurrency)

    # send ----------------------------------------------------------------------------
    async def accept(self, user_id: uuid.UUID, **fields: Any) -> service.Accepted:
        """Store the turn, at most ``turn_setup_concurrency`` at once in this process.

        Without the limit a burst of new turns (hundreds in a second) runs all its database
        work in the same few passes of the event loop, and the answers already streaming
        through this node wait behind it: in the benchmark the loop lagged by 15–30 ms. A
        turn past the limit waits for a slot instead, which costs the burst's own first
        tokens a little and a turn that arrives alone nothing.
        """
        async with self._setup_slots:
            return await service.accept_message(self.db, user_id, **fields)

    async def publish(self, accepted: service.Accepted) -> None:
        """Publish the job once the caller is listening; ``ServiceUnavailable`` if the bus is
        down (the answer stays pending and the sweep publishes it later)."""
        if accepted.publish:
            await publish_chat_job(self.bus, accepted.message_id, accepted.session_id)
        elif accepted.waits_for_workspace:
            # Provisioning may have finished (and looked for waiting answers) while this
            # turn's transaction was still open: look again now that it is committed.
            async with self.db() as s:
                session = await s.get(ChatSession, accepted.session_id)
                workspace = await s.get(Workspace, session.workspace_id) if session else None
            if workspace is not None and workspace.status != "provisioning":
                await kick(self.db, self.bus, accepted.session_id)

    # cancel --------------------------------------------------------------------------
    async def cancel(
        self, user_id: uuid.UUID, session_id: uuid.UUID, message_id: uuid.UUID | None
    ) -> tuple[uuid.UUID, str]:
        msg = await service.find_message(self.db, session_id, user_id, message_id)
        if msg.status in store.ENDED:
            return msg.id, msg.status
        if msg.status == "pending":
            ended = await store.end_unclaimed(self.db, msg.id, status="cancelled")
            if ended is not None:
                await publish_stored_final(self.bus, ended)
                await kick(self.db, self.bus, ended.session_id)
                return ended.id, "cancelled"
        # Streaming (or it just started): the worker that holds it stops it and speaks.
        pattern = session_pattern(session_id)
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._final_waiters.setdefault(msg.id, []).append(waiter)
        await self.bus.bind(pattern)
        try:
            # Control messages are transient: if the first is lost (a reconnecting worker),
            # the second one, a second later, still reaches it.
            for wait_s in (1.0, 2.0):
                await self.bus.publish_control(CancelCommand(message_id=msg.id).dumps())
                try:
                    return msg.id, await asyncio.wait_for(asyncio.shield(waiter), wait_s)
                except TimeoutError:
                    continue
        finally:
            self._drop_waiter(msg.id, waiter)
            await self.bus.unbind(pattern)
        # No worker answered: if its lease has run out, nobody holds it; end it here.
        ended = await store.end_unclaimed(
            self.db, msg.id, status="cancelled", from_statuses=store.ACTIVE, expired_lease_only=True
        )
        if ended is not None:
            await publish_stored_final(self.bus, ended)
            await kick(self.db, self.bus, ended.session_id)
            return ended.id, "cancelled"
        current = await service.get_message(self.db, msg.id)
        return msg.id, current.status if current else "cancelled"

    def _drop_waiter(self, message_id: uuid.UUID, waiter: asyncio.Future[str]) -> None:
        waiters = self._final_waiters.get(message_id)
        if waiters and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._final_waiters[message_id]

    def observe_final(self, event: str, data: dict[str, Any]) -> None:
        """Called by the relay for every final chat event this node receives."""
        if not self._final_waiters:
            return
        waiters = self._final_waiters.get(uuid.UUID(data["message_id"]))
        if not waiters:
            return
        status = {"chat_complete": "complete", "chat_cancelled": "cancelled"}.get(event, "failed")
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(status)

    # resume --------------------------------------------------------------------------
    async def resume_state(
        self, user_id: uuid.UUID, session_id: uuid.UUID, message_id: uuid.UUID
    ) -> ResumeState:
        """The current text of an answer. Call it after the caller listens to the session,
        so every chunk published after this text was read reaches the caller."""
        msg = await service.find_message(self.db, session_id, user_id, message_id)
        if msg.status == "pending":
            return ResumeState("pending", msg.attempt, "", None)
        if msg.status == "streaming":
            live = None
            if msg.lease_expires_at is None or msg.lease_expires_at > utcnow():
                live = await self._ask_worker(msg.id)
            if live is not None:
                return ResumeState("streaming", live[0], live[1], None)
            fresh = await service.get_message(self.db, msg.id)
            if fresh is not None and fresh.status == "streaming":
                return ResumeState("streaming", fresh.attempt, fresh.content, None)
            msg = fresh or msg
            if msg.status == "pending":
                return ResumeState("pending", msg.attempt, "", None)
        return ResumeState(msg.status, msg.attempt, msg.content, final_event(msg))

    async def _ask_worker(self, message_id: uuid.UUID) -> tuple[int, str] | None:
        request_id = uuid.uuid4().hex
        waiter: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._text_waiters[request_id] = waiter
        try:
            await self.bus.publish_control(
                TextRequest(
                    message_id=message_id, request_id=request_id, reply_to=self.bus.node_id
                ).dumps()
            )
            return await asyncio.wait_for(waiter, 0.5)
        except TimeoutError:
            return None
        finally:
            self._text_waiters.pop(request_id, None)

    def observe_text_reply(self, data: dict[str, Any]) -> None:
        waiter = self._text_waiters.get(str(data.get("request_id")))
        if waiter is not None and not waiter.done():
            waiter.set_result((int(data["attempt"]), str(data["text"])))

    async def catch_up(
        self, session_ids: set[uuid.UUID], since: datetime
    ) -> list[tuple[str, dict[str, Any]]]:
        """What a room may have missed while this node was cut off from the bus: the
        stored text of answers still streaming (as a catch-up chunk, seq -1, from offset 0)
        and the final events of answers that ended since ``since``."""
        if not session_ids:
            return []
        async with self.db() as s:
            rows = (
                await s.scalars(
                    select(Message).where(
                        Message.session_id.in_(session_ids),
                        Message.role == "assistant",
                        or_(Message.status == "streaming", Message.completed_at >= since),
                    )
                )
            ).all()
        out: list[tuple[str, dict[str, Any]]] = []
        for msg in rows:
            if msg.status == "streaming":
                if msg.content:
                    out.append(
                        (
                            events.CHAT_CHUNK,
                            events.chunk(
                                str(msg.session_id), str(msg.id), msg.attempt, -1, 0, msg.content
                            ),
                        )
                    )
            elif (final := final_event(msg)) is not None:
                out.append(final)
        return out
