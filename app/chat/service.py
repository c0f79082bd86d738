"""Chat turns as the API nodes see them: accept a message, list history, cancel, look up.

The worker (``app.chat.worker``) generates; this module stores the turn and decides
whether its job may be published now (one answer at a time per session).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.chat import accept_pg, store
from app.chat.requests import TurnRequest
from app.db import tables
from app.db.engine import SessionFactory, autocommit_connection, engine_of, transaction
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


_m, _cs, _ws = tables.messages, tables.chat_sessions, tables.workspaces
_members = tables.workspace_members

# A chat_message runs these on the way to its first token; they are prebuilt in Core
# (see app.db.tables): the ORM version of accepting a message cost the API 1.9 ms of CPU.
_REPLAY = (
    select(_m.c.id, _m.c.session_id, _m.c.role, _m.c.reply_to_id)
    .where(
        _m.c.user_id == bindparam("p_user_id"),
        _m.c.client_message_id == bindparam("p_client_message_id"),
    )
    .order_by(_m.c.created_at)
)
_MEMBER_WORKSPACE = (
    select(_ws.c.id, _ws.c.status, _ws.c.llm_provider, _ws.c.llm_model)
    .join(_members, _members.c.workspace_id == _ws.c.id)
    .where(_ws.c.id == bindparam("p_workspace_id"), _members.c.user_id == bindparam("p_user_id"))
)
_SESSION_OWNER = select(_cs.c.user_id, _cs.c.workspace_id).where(
    _cs.c.id == bindparam("p_session_id")
)
_BUSY = (
    select(_m.c.id)
    .where(
        _m.c.session_id == bindparam("p_session_id"),
        _m.c.role == "assistant",
        store.is_active(_m.c.status),
    )
    .limit(1)
)
_TOUCH_SESSION = (
    update(_cs).where(_cs.c.id == bindparam("p_session_id")).values(updated_at=bindparam("p_at"))
)


async def _replay(
    conn: AsyncConnection, user_id: uuid.UUID, client_message_id: str
) -> Accepted | None:
    """The earlier send with this client_message_id, answered as it was the first time."""
    rows = (
        await conn.execute(
            _REPLAY, {"p_user_id": user_id, "p_client_message_id": client_message_id}
        )
    ).all()
    asked = next((r for r in rows if r.role == "user"), None)
    if asked is None:
        return None
    answer = next((r for r in rows if r.role == "assistant" and r.reply_to_id == asked.id), None)
    if answer is None:
        return None
    return Accepted(asked.session_id, asked.id, answer.id, publish=False)


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
    """Store the user's message and a pending answer atomically: on PostgreSQL in one
    statement (``app.chat.accept_pg``), on SQLite in one transaction."""
    if workspace_id is None and session_id is None:
        raise InvalidInput("workspace_id or session_id is required")
    request = TurnRequest(workspace_id, session_id, message, rag_type, client_message_id)
    try:
        if engine_of(db).dialect.name == "postgresql":
            return await _accept_in_one_statement(db, user_id, request)
        async with transaction(db) as conn:
            return await _accept(conn, user_id, request)
    except IntegrityError:
        # Two sends with one client_message_id raced: the other one won; answer as it did.
        if client_message_id is None:
            raise
        async with autocommit_connection(db) as conn:
            replay = await _replay(conn, user_id, client_message_id)
        if replay is None:
            raise
        return replay


async def _accept_in_one_statement(
    db: SessionFactory, user_id: uuid.UUID, request: TurnRequest
) -> Accepted:
    session_id, workspace_id = request.session_id, request.workspace_id
    async with autocommit_connection(db) as conn:
        stored = await accept_pg.store_turn(conn, user_id, request, _title(request.message))
        refusal: NotFound | None = None
        if session_id is not None and stored.owner_workspace is None:
            refusal = NotFound("session not found")
        elif session_id is not None and workspace_id not in (None, stored.owner_workspace):
            refusal = NotFound("session not found in that workspace")
        elif stored.workspace_status is None:
            refusal = NotFound("workspace not found")
        if refusal is not None:
            # Nothing was stored. A resend of a turn stored before gets its first answer
            # (as the transaction on SQLite, which looks for the resend first, gives it).
            if request.client_message_id is not None:
                replay = await _replay(conn, user_id, request.client_message_id)
                if replay is not None:
                    return replay
            raise refusal
    provisioning = stored.workspace_status == "provisioning"
    return Accepted(
        stored.session_id,
        stored.asked_id,
        stored.answer_id,
        publish=not stored.busy and not provisioning,
        waits_for_workspace=not stored.busy and provisioning,
    )


async def _member_workspace(
    conn: AsyncConnection, workspace_id: uuid.UUID, user_id: uuid.UUID
) -> Row[Any, Any, Any, Any]:
    """(id, status, llm_provider, llm_model) of a workspace the user is a member of."""
    found = (
        await conn.execute(
            _MEMBER_WORKSPACE, {"p_workspace_id": workspace_id, "p_user_id": user_id}
        )
    ).one_or_none()
    if found is None:
        raise NotFound("workspace not found")
    return found


async def _accept(conn: AsyncConnection, user_id: uuid.UUID, request: TurnRequest) -> Accepted:
    """The turn stored statement by statement, in the caller's transaction: SQLite's way
    (it has no data-modifying CTEs), and what ``benchmarks.turn_store`` compares against."""
    workspace_id, session_id = request.workspace_id, request.session_id
    message, rag_type, client_message_id = (
        request.message,
        request.rag_type,
        request.client_message_id,
    )
    if client_message_id is not None:
        replay = await _replay(conn, user_id, client_message_id)
        if replay is not None:
            return replay
    busy = None
    if session_id is not None:
        owner = (await conn.execute(_SESSION_OWNER, {"p_session_id": session_id})).one_or_none()
        if owner is None or owner.user_id != user_id:
            raise NotFound("session not found")
        if workspace_id is not None and owner.workspace_id != workspace_id:
            raise NotFound("session not found in that workspace")
        workspace = await _member_workspace(conn, owner.workspace_id, user_id)
        # A session already in the database may have an answer in progress.
        busy = await conn.scalar(_BUSY, {"p_session_id": session_id})
    else:
        if workspace_id is None:
            raise InvalidInput("workspace_id or session_id is required")
        workspace = await _member_workspace(conn, workspace_id, user_id)
    started = utcnow()
    asked_at, answer_at = utcnow(), utcnow()
    if session_id is None:
        session_id = uuid.uuid4()
        await conn.execute(
            insert(_cs).values(
                id=session_id,
                workspace_id=workspace.id,
                user_id=user_id,
                title=_title(message),
                created_at=started,
                updated_at=answer_at,
            )
        )
    else:
        await conn.execute(_TOUCH_SESSION, {"p_session_id": session_id, "p_at": answer_at})
    asked_id, answer_id = uuid.uuid4(), uuid.uuid4()
    common = {
        "session_id": session_id,
        "user_id": user_id,
        "rag_type": rag_type,
        "client_message_id": client_message_id,
        # The columns left out are NULL. (An explicit None in usage or sources would be
        # stored as JSON null, not as the SQL NULL the ORM wrote for an unset attribute.)
    }
    await conn.execute(
        insert(_m),
        [
            {
                **common,
                "id": asked_id,
                "role": "user",
                "content": message,
                "status": "complete",
                "attempt": 1,
                "reply_to_id": None,
                "provider": None,
                "model": None,
                "created_at": asked_at,
            },
            {
                **common,
                "id": answer_id,
                "role": "assistant",
                "content": "",
                "status": "pending",
                "attempt": 1,
                "reply_to_id": asked_id,
                "provider": workspace.llm_provider,
                "model": workspace.llm_model,
                "created_at": answer_at,
            },
        ],
    )
    provisioning = workspace.status == "provisioning"
    return Accepted(
        session_id,
        asked_id,
        answer_id,
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
                store.is_active(Message.status),
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
