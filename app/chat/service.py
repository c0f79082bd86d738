"""Chat turns as the API nodes see them: accept a message, list history, cancel, look up.

The worker (``app.chat.worker``) generates; this module stores the turn and decides
whether its job may be published now (one answer at a time per session).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import store
from app.db.engine import SessionFactory
from app.db.models import ChatSession, Message
from app.db.types import utcnow
from app.errors import InvalidInput, NotFound
from app.workspaces.service import membership

MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Accepted:
    session_id: uuid.UUID
    user_message_id: uuid.UUID
    message_id: uuid.UUID
    publish: bool  # False: a duplicate send, or an older answer / the workspace is not ready
    waits_for_workspace: bool = False

    def ack(self) -> dict[str, Any]:
        return {
            "ok": True,
            "session_id": str(self.session_id),
            "user_message_id": str(self.user_message_id),
            "message_id": str(self.message_id),
        }


async def _replay(s: AsyncSession, user_id: uuid.UUID, client_message_id: str) -> Accepted | None:
    user_msg = await s.scalar(
        select(Message).where(
            Message.user_id == user_id,
            Message.role == "user",
            Message.client_message_id == client_message_id,
        )
    )
    if user_msg is None:
        return None
    answer_id = await s.scalar(select(Message.id).where(Message.reply_to_id == user_msg.id))
    if answer_id is None:
        return None
    return Accepted(user_msg.session_id, user_msg.id, answer_id, publish=False)


async def accept_message(
    db: SessionFactory,
    user_id: uuid.UUID,
    *,
    workspace_id: uuid.UUID | None,
    session_id: uuid.UUID | None,
    message: str,
    rag_type: str,
    client_message_id: str | None,
) -> Accepted:
    """Store the user's message and a pending answer in one transaction."""
    try:
        return await _accept(
            db, user_id, workspace_id, session_id, message, rag_type, client_message_id
        )
    except IntegrityError:
        # Two sends with one client_message_id raced: the other one won; answer as it did.
        if client_message_id is None:
            raise
        async with db() as s:
            replay = await _replay(s, user_id, client_message_id)
        if replay is None:
            raise
        return replay


async def _accept(
    db: SessionFactory,
    user_id: uuid.UUID,
    workspace_id: uuid.UUID | None,
    session_id: uuid.UUID | None,
    message: str,
    rag_type: str,
    client_message_id: str | None,
) -> Accepted:
    async with db() as s, s.begin():
        if client_message_id is not None:
            replay = await _replay(s, user_id, client_message_id)
            if replay is not None:
                return replay
        if session_id is not None:
            session = await s.get(ChatSession, session_id)
            if session is None or session.user_id != user_id:
                raise NotFound("session not found")
            if workspace_id is not None and session.workspace_id != workspace_id:
                raise NotFound("session not found in that workspace")
            workspace, _role = await membership(s, session.workspace_id, user_id)
        else:
            if workspace_id is None:
                raise InvalidInput("workspace_id or session_id is required")
            workspace, _role = await membership(s, workspace_id, user_id)
            now = utcnow()
            session = ChatSession(
                id=uuid.uuid4(),
                workspace_id=workspace.id,
                user_id=user_id,
                title=_title(message),
                created_at=now,
                updated_at=now,
            )
            s.add(session)
        busy = None
        if session_id is not None:  # a new session has nothing in progress
            busy = await s.scalar(
                select(Message.id)
                .where(
                    Message.session_id == session.id,
                    Message.role == "assistant",
                    Message.status.in_(store.ACTIVE),
                )
                .limit(1)
            )
        user_msg = Message(
            id=uuid.uuid4(),
            session_id=session.id,
            user_id=user_id,
            role="user",
            content=message,
            status="complete",
            rag_type=rag_type,
            client_message_id=client_message_id,
            created_at=utcnow(),
        )
        s.add(user_msg)
        answer = Message(
            id=uuid.uuid4(),
            session_id=session.id,
            user_id=user_id,
            role="assistant",
            content="",
            status="pending",
            rag_type=rag_type,
            attempt=1,
            client_message_id=client_message_id,
            reply_to_id=user_msg.id,
            provider=workspace.llm_provider,
            model=workspace.llm_model,
            created_at=utcnow(),
        )
        s.add(answer)
        session.updated_at = answer.created_at
        provisioning = workspace.status == "provisioning"
        return Accepted(
            session.id,
            user_msg.id,
            answer.id,
            publish=busy is None and not provisioning,
            waits_for_workspace=busy is None and provisioning,
        )


def _title(message: str) -> str:
    line = message.strip().splitlines()[0] if message.strip() else "New chat"
    return line[:80]


async def own_session(s: AsyncSession, session_id: uuid.UUID, user_id: uuid.UUID) -> ChatSession:
    """Sessions belong to the user who created them and who is still a member."""
    session = await s.get(ChatSession, session_id)
    if session is None or session.user_id != user_id:
        raise NotFound("session not found")
    await membership(s, session.workspace_id, user_id)
    return session


async def create_session(
    db: SessionFactory, workspace_id: uuid.UUID, user_id: uuid.UUID, title: str | None
) -> ChatSession:
    async with db() as s, s.begin():
        await membership(s, workspace_id, user_id)
        now = utcnow()
        session = ChatSession(
            workspace_id=workspace_id, user_id=user_id, title=title, created_at=now, updated_at=now
        )
        s.add(session)
    return session


async def get_session(db: SessionFactory, session_id: uuid.UUID, user_id: uuid.UUID) -> ChatSession:
    async with db() as s:
        return await own_session(s, session_id, user_id)


async def delete_session(db: SessionFactory, session_id: uuid.UUID, user_id: uuid.UUID) -> None:
    async with db() as s, s.begin():
        await s.delete(await own_session(s, session_id, user_id))


async def _cursor(
    s: AsyncSession, model: Any, before: uuid.UUID | None, scope: Any
) -> datetime | None:
    if before is None:
        return None
    created = await s.scalar(select(model.created_at).where(model.id == before, scope))
    if created is None:
        raise InvalidInput("`before` is not an id of this list")
    return created  # type: ignore[no-any-return]


async def list_sessions(
    db: SessionFactory,
    workspace_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    limit: int,
    before: uuid.UUID | None,
) -> list[ChatSession]:
    async with db() as s:
        await membership(s, workspace_id, user_id)
        scope = (ChatSession.workspace_id == workspace_id) & (ChatSession.user_id == user_id)
        cursor = await _cursor(s, ChatSession, before, scope)
        stmt = select(ChatSession).where(scope)
        if cursor is not None:
            stmt = stmt.where(ChatSession.created_at < cursor)
        rows = await s.scalars(stmt.order_by(ChatSession.created_at.desc()).limit(limit))
        return list(rows.all())


async def list_messages(
    db: SessionFactory,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    limit: int,
    before: uuid.UUID | None,
) -> list[Message]:
    """Oldest first; ``before`` pages back through older messages."""
    async with db() as s:
        await own_session(s, session_id, user_id)
        scope = Message.session_id == session_id
        cursor = await _cursor(s, Message, before, scope)
        stmt = select(Message).where(scope)
        if cursor is not None:
            stmt = stmt.where(Message.created_at < cursor)
        rows = await s.scalars(stmt.order_by(Message.created_at.desc()).limit(limit))
        return list(reversed(rows.all()))


async def find_message(
    db: SessionFactory, session_id: uuid.UUID, user_id: uuid.UUID, message_id: uuid.UUID | None
) -> Message:
    """The message named, or the session's answer in progress (the oldest active one)."""
    async with db() as s:
        await own_session(s, session_id, user_id)
        if message_id is not None:
            msg = await s.get(Message, message_id)
            if msg is None or msg.session_id != session_id or msg.role != "assistant":
                raise NotFound("message not found")
            return msg
        msg = await s.scalar(
            select(Message)
            .where(
                Message.session_id == session_id,
                Message.role == "assistant",
                Message.status.in_(store.ACTIVE),
            )
            .order_by(Message.created_at)
            .limit(1)
        )
        if msg is None:
            raise NotFound("nothing is in progress in that session")
        return msg


async def get_message(db: SessionFactory, message_id: uuid.UUID) -> Message | None:
    async with db() as s:
        return await s.get(Message, message_id)
