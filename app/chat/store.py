"""Message state in the database. Every status change is a compare-and-set.

``pending → streaming`` (a worker claims it under a lease), ``pending|streaming →
cancelled``, ``streaming → complete|failed``: only the side whose UPDATE matched a row
publishes the final event, so two parties never both speak for one message.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    Update,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db import tables
from app.db.engine import SessionFactory, autocommit_connection
from app.db.models import ChatSession, Message, Workspace
from app.db.types import utcnow

ACTIVE = ("pending", "streaming")
ENDED = ("complete", "cancelled", "failed")


_ACTIVE_LITERALS: tuple[ColumnElement[Any], ...] = tuple(
    literal_column(f"'{value}'") for value in ACTIVE
)


def is_active(status: ColumnElement[str] | InstrumentedAttribute[str]) -> ColumnElement[bool]:
    """``status IN ('pending', 'streaming')`` with the values written into the SQL.

    ``status.in_(ACTIVE)`` would be an expanding parameter, which SQLAlchemy renders
    into the statement again on every execution: measured on PostgreSQL, a quarter of the
    CPU of a one-row lookup, and every turn runs several of these.
    """
    return status.in_(_ACTIVE_LITERALS)


@dataclass(frozen=True, slots=True)
class Claim:
    message_id: uuid.UUID
    attempt: int


def _update_messages() -> Update:
    """An ORM UPDATE of messages that does not look for the rows in the session: every
    caller's session is new (nothing is loaded to synchronise), and the search is a
    Python evaluation of the WHERE clause that cost a worker ~0.4 ms per turn."""
    return update(Message).execution_options(synchronize_session=False)


_m = tables.messages

# Taken by an expired lease: the attempt goes up and the text starts again.
_CLAIM = (
    update(_m)
    .where(
        _m.c.id == bindparam("p_id"),
        or_(
            _m.c.status == "pending",
            and_(_m.c.status == "streaming", _m.c.lease_expires_at < bindparam("p_now")),
        ),
    )
    .values(
        attempt=case((_m.c.status == "streaming", _m.c.attempt + 1), else_=_m.c.attempt),
        status="streaming",
        content="",
        lease_holder=bindparam("p_holder"),
        lease_expires_at=bindparam("p_expires"),
    )
    .returning(_m.c.attempt)
)


async def claim(
    db: SessionFactory, message_id: uuid.UUID, holder: str, lease_s: float
) -> Claim | None:
    """Take a message to generate: pending, or streaming under an expired lease.

    Re-taking a streaming message raises ``attempt``: its chunks start again from offset 0.
    """
    async with autocommit_connection(db) as conn:
        return await _claim(conn, message_id, holder, lease_s)


async def _claim(
    conn: AsyncConnection, message_id: uuid.UUID, holder: str, lease_s: float
) -> Claim | None:
    now = utcnow()
    attempt = await conn.scalar(
        _CLAIM,
        {
            "p_id": message_id,
            "p_now": now,
            "p_holder": holder,
            "p_expires": now + timedelta(seconds=lease_s),
        },
    )
    return Claim(message_id, attempt) if attempt is not None else None


@dataclass(frozen=True, slots=True)
class Finished:
    message: Message
    next_pending: uuid.UUID | None  # the session's oldest pending answer, now free to start


_FINISH = (
    update(_m)
    .where(
        _m.c.id == bindparam("p_id"),
        _m.c.status == "streaming",
        _m.c.lease_holder == bindparam("p_holder"),
        _m.c.attempt == bindparam("p_attempt"),
    )
    .values(
        status=bindparam("p_status"),
        content=bindparam("p_content"),
        error_type=bindparam("p_error_type"),
        error_message=bindparam("p_error_message"),
        usage=bindparam("p_usage"),
        sources=bindparam("p_sources"),
        finish_reason=bindparam("p_finish_reason"),
        lease_holder=None,
        lease_expires_at=None,
        completed_at=bindparam("p_now"),
    )
    .returning(*_m.c)
)


async def finish(
    db: SessionFactory,
    message_id: uuid.UUID,
    *,
    holder: str,
    attempt: int,
    status: str,
    content: str,
    error_type: str | None = None,
    error_message: str | None = None,
    usage: dict[str, int] | None = None,
    sources: list[dict[str, Any]] | None = None,
    finish_reason: str | None = None,
) -> Finished | None:
    """``streaming → complete|cancelled|failed`` for the lease holder of that attempt: the
    ended row (its final event is rebuilt from it) and the session's next answer that may
    start now, looked up on the same connection (one checkout per turn less); None if the
    lease was lost."""
    async with autocommit_connection(db) as conn:
        row = (
            await conn.execute(
                _FINISH,
                {
                    "p_id": message_id,
                    "p_holder": holder,
                    "p_attempt": attempt,
                    "p_status": status,
                    "p_content": content,
                    "p_error_type": error_type,
                    "p_error_message": error_message,
                    "p_usage": usage,
                    "p_sources": sources or [],
                    "p_finish_reason": finish_reason,
                    "p_now": utcnow(),
                },
            )
        ).one_or_none()
        if row is None:
            return None
        ended = tables.detached(Message, row._mapping)
        return Finished(ended, await _next_pending(conn, ended.session_id))


async def end_unclaimed(
    db: SessionFactory,
    message_id: uuid.UUID,
    *,
    status: str,
    from_statuses: Sequence[str] = ("pending",),
    error_type: str | None = None,
    error_message: str | None = None,
    expired_lease_only: bool = False,
) -> Message | None:
    """End a message no live worker holds (queued, or its worker is gone); None if lost."""
    now = utcnow()
    async with db() as s, s.begin():
        stmt = _update_messages().where(Message.id == message_id, Message.status.in_(from_statuses))
        if expired_lease_only:
            stmt = stmt.where(or_(Message.status == "pending", Message.lease_expires_at < now))
        result = await s.execute(
            stmt.values(
                status=status,
                error_type=error_type,
                error_message=error_message,
                lease_holder=None,
                lease_expires_at=None,
                completed_at=now,
            ).returning(Message)
        )
        return result.scalar_one_or_none()


# NULL text renews the lease only.
_CHECKPOINT = (
    update(_m)
    .where(_m.c.id == bindparam("p_id"), _m.c.lease_holder == bindparam("p_holder"))
    .values(
        lease_expires_at=bindparam("p_expires"),
        content=func.coalesce(bindparam("p_content", type_=Text()), _m.c.content),
    )
)


async def checkpoint(
    db: SessionFactory, holder: str, lease_s: float, texts: dict[uuid.UUID, str | None]
) -> None:
    """Store partial answers and renew their leases: one statement for all of them.

    ``None`` text renews the lease only. Each row is its own compare-and-set on the lease
    holder, so no transaction spans them (one lost lease does not undo the others).
    """
    if not texts:
        return
    expires = utcnow() + timedelta(seconds=lease_s)
    rows = [
        {"p_id": mid, "p_holder": holder, "p_expires": expires, "p_content": text}
        for mid, text in texts.items()
    ]
    async with autocommit_connection(db) as conn:
        await conn.execute(_CHECKPOINT, rows)


async def release_leases(db: SessionFactory, holder: str, texts: dict[uuid.UUID, str]) -> None:
    """Hand answers back at shutdown: the lease ends now, so the next worker re-takes them."""
    if not texts:
        return
    now = utcnow()
    async with db() as s, s.begin():
        for mid, text in texts.items():
            await s.execute(
                _update_messages()
                .where(
                    Message.id == mid, Message.lease_holder == holder, Message.status == "streaming"
                )
                .values(content=text, lease_expires_at=now)
            )


_LEASE_STATE = select(_m.c.status, _m.c.lease_holder, _m.c.lease_expires_at).where(
    _m.c.id == bindparam("p_id")
)


async def lease_state(
    db: SessionFactory, message_id: uuid.UUID
) -> tuple[str, str | None, datetime | None] | None:
    async with autocommit_connection(db) as conn:
        row = (await conn.execute(_LEASE_STATE, {"p_id": message_id})).one_or_none()
    return (row[0], row[1], row[2]) if row else None


async def has_earlier_active(s: AsyncSession, msg: Message) -> bool:
    """Whether an older answer of the same session is still pending or streaming."""
    found = await s.scalar(
        select(Message.id)
        .where(
            Message.session_id == msg.session_id,
            Message.role == "assistant",
            is_active(Message.status),
            Message.created_at < msg.created_at,
        )
        .limit(1)
    )
    return found is not None


_NEXT_PENDING = (
    select(_m.c.id, _m.c.status)
    .where(
        _m.c.session_id == bindparam("p_session_id"),
        _m.c.role == "assistant",
        is_active(_m.c.status),
    )
    .order_by(_m.c.created_at)
    .limit(1)
)


async def next_pending(db: SessionFactory, session_id: uuid.UUID) -> uuid.UUID | None:
    """The id of the session's oldest pending answer, if nothing older is streaming."""
    async with autocommit_connection(db) as conn:
        return await _next_pending(conn, session_id)


async def _next_pending(conn: AsyncConnection, session_id: uuid.UUID) -> uuid.UUID | None:
    head = (await conn.execute(_NEXT_PENDING, {"p_session_id": session_id})).one_or_none()
    if head is None or head.status != "pending":
        return None
    found: uuid.UUID = head.id
    return found


@dataclass(frozen=True, slots=True)
class Turn:
    """What a worker needs to start an answer, read in one round trip (it is on the way to
    every first token): the rows, whether an older answer is still active, the question,
    and whether there is any history or any indexed document to look up at all."""

    message: Message
    session: ChatSession
    workspace: Workspace
    earlier_active: bool
    question: str
    has_history: bool
    has_documents: bool


def _load_turn_statement() -> Select[Any]:
    older, asked, before = _m.alias("older"), _m.alias("asked"), _m.alias("before")
    chunks = tables.document_chunks
    earlier_active = (
        select(older.c.id)
        .where(
            older.c.session_id == _m.c.session_id,
            older.c.role == "assistant",
            is_active(older.c.status),
            older.c.created_at < _m.c.created_at,
        )
        .exists()
    )
    question = select(asked.c.content).where(asked.c.id == _m.c.reply_to_id).scalar_subquery()
    has_history = (
        select(before.c.id)
        .where(
            before.c.session_id == _m.c.session_id,
            before.c.created_at < _m.c.created_at,
            before.c.id != _m.c.reply_to_id,
        )
        .exists()
    )
    has_documents = (
        select(chunks.c.id).where(chunks.c.workspace_id == tables.chat_sessions.c.workspace_id)
    ).exists()
    return (
        select(
            *tables.labelled(Message, "m_"),
            *tables.labelled(ChatSession, "s_"),
            *tables.labelled(Workspace, "w_"),
            earlier_active.label("earlier_active"),
            question.label("question"),
            has_history.label("has_history"),
            has_documents.label("has_documents"),
        )
        .select_from(
            _m.join(tables.chat_sessions, tables.chat_sessions.c.id == _m.c.session_id).join(
                tables.workspaces, tables.workspaces.c.id == tables.chat_sessions.c.workspace_id
            )
        )
        .where(_m.c.id == bindparam("p_id"))
    )


_LOAD_TURN = _load_turn_statement()


async def load_turn(
    db: SessionFactory, message_id: uuid.UUID, *, claim_as: tuple[str, float] | None = None
) -> tuple[Turn | None, Claim | None]:
    """The turn and, with ``claim_as=(holder, lease_s)``, the claim of it when it may
    start now (its workspace ready, nothing older active).

    Two statements, but not one transaction: the claim is a compare-and-set on the status
    and lease, which is all a transaction would protect (under READ COMMITTED it would not
    keep an older answer from becoming active in between either), and autocommit saves the
    BEGIN and COMMIT on the way to the first token."""
    async with autocommit_connection(db) as conn:
        row = (await conn.execute(_LOAD_TURN, {"p_id": message_id})).one_or_none()
        if row is None:
            return None, None
        values = row._mapping
        turn = Turn(
            tables.detached(Message, values, "m_"),
            tables.detached(ChatSession, values, "s_"),
            tables.detached(Workspace, values, "w_"),
            bool(values["earlier_active"]),
            values["question"] or "",
            bool(values["has_history"]),
            bool(values["has_documents"]),
        )
        may_start = (
            turn.message.status in ACTIVE
            and not turn.earlier_active
            and turn.workspace.status == "ready"
        )
        if claim_as is None or not may_start:
            return turn, None
        return turn, await _claim(conn, message_id, claim_as[0], claim_as[1])


async def history(
    db: SessionFactory, session_id: uuid.UUID, before: datetime, limit: int = 50
) -> list[Message]:
    """The turns before an answer, newest last: finished answers and the users' messages."""
    async with db() as s:
        rows = (
            await s.scalars(
                select(Message)
                .where(
                    Message.session_id == session_id,
                    Message.created_at < before,
                    or_(Message.role == "user", Message.status.in_(("complete", "cancelled"))),
                )
                .order_by(Message.created_at.desc())
                .limit(limit)
            )
        ).all()
    return list(reversed(rows))


async def stale_messages(
    db: SessionFactory, pending_older_than: datetime
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(message, session) of jobs that may have been lost: per session, the answer that
    should be running (its oldest active one), if it has waited too long as ``pending``
    or its ``streaming`` lease has expired. Answers queued behind it are left alone."""
    now = utcnow()
    async with db() as s:
        rows = (
            await s.execute(
                select(
                    Message.id,
                    Message.session_id,
                    Message.status,
                    Message.created_at,
                    Message.lease_expires_at,
                )
                .where(Message.role == "assistant", is_active(Message.status))
                .order_by(Message.created_at)
            )
        ).all()
    heads: dict[uuid.UUID, tuple[uuid.UUID, str, datetime, datetime | None]] = {}
    for mid, sid, status, created, expires in rows:
        heads.setdefault(sid, (mid, status, created, expires))
    stale = []
    for sid, (mid, status, created, expires) in heads.items():
        if status == "pending" and created < pending_older_than:
            stale.append((mid, sid))
        elif status == "streaming" and (expires is None or expires < now):
            stale.append((mid, sid))
    return stale


async def pending_heads(
    db: SessionFactory, workspace_id: uuid.UUID
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(message, session) of each session's oldest waiting answer in a workspace."""
    async with db() as s:
        rows = (
            await s.execute(
                select(Message.id, Message.session_id, Message.status, Message.created_at)
                .join(ChatSession, ChatSession.id == Message.session_id)
                .where(
                    ChatSession.workspace_id == workspace_id,
                    Message.role == "assistant",
                    is_active(Message.status),
                )
                .order_by(Message.created_at)
            )
        ).all()
    heads: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}
    for mid, sid, status, _created in rows:
        heads.setdefault(sid, (mid, status))
    return [(mid, sid) for sid, (mid, status) in heads.items() if status == "pending"]
