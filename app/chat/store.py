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
from typing import Any, cast

from sqlalchemy import Select, Table, Update, and_, bindparam, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db.engine import SessionFactory, autocommit_session
from app.db.models import ChatSession, DocumentChunk, Message, Workspace
from app.db.types import utcnow

ACTIVE = ("pending", "streaming")
ENDED = ("complete", "cancelled", "failed")


@dataclass(frozen=True, slots=True)
class Claim:
    message_id: uuid.UUID
    attempt: int


def _update_messages() -> Update:
    """An ORM UPDATE of messages that does not look for the rows in the session: every
    caller's session is new (nothing is loaded to synchronise), and the search is a
    Python evaluation of the WHERE clause that cost a worker ~0.4 ms per turn."""
    return update(Message).execution_options(synchronize_session=False)


async def claim(
    db: SessionFactory, message_id: uuid.UUID, holder: str, lease_s: float
) -> Claim | None:
    """Take a message to generate: pending, or streaming under an expired lease.

    Re-taking a streaming message raises ``attempt``: its chunks start again from offset 0.
    """
    async with autocommit_session(db) as s:
        return await _claim(s, message_id, holder, lease_s)


async def _claim(
    s: AsyncSession, message_id: uuid.UUID, holder: str, lease_s: float
) -> Claim | None:
    now = utcnow()
    result = await s.execute(
        _update_messages()
        .where(
            Message.id == message_id,
            or_(
                Message.status == "pending",
                and_(Message.status == "streaming", Message.lease_expires_at < now),
            ),
        )
        .values(
            attempt=case(
                (Message.status == "streaming", Message.attempt + 1), else_=Message.attempt
            ),
            status="streaming",
            content="",
            lease_holder=holder,
            lease_expires_at=now + timedelta(seconds=lease_s),
        )
        .returning(Message.attempt)
    )
    attempt = result.scalar_one_or_none()
    return Claim(message_id, attempt) if attempt is not None else None


@dataclass(frozen=True, slots=True)
class Finished:
    message: Message
    next_pending: uuid.UUID | None  # the session's oldest pending answer, now free to start


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
    start now, looked up in the same session (one checkout per turn less); None if the
    lease was lost."""
    async with autocommit_session(db) as s:
        result = await s.execute(
            _update_messages()
            .where(
                Message.id == message_id,
                Message.status == "streaming",
                Message.lease_holder == holder,
                Message.attempt == attempt,
            )
            .values(
                status=status,
                content=content,
                error_type=error_type,
                error_message=error_message,
                usage=usage,
                sources=sources or [],
                finish_reason=finish_reason,
                lease_holder=None,
                lease_expires_at=None,
                completed_at=utcnow(),
            )
            .returning(Message)
        )
        ended = result.scalar_one_or_none()
        if ended is None:
            return None
        return Finished(ended, await _next_pending(s, ended.session_id))


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


async def checkpoint(
    db: SessionFactory, holder: str, lease_s: float, texts: dict[uuid.UUID, str | None]
) -> None:
    """Store partial answers and renew leases for every running message in one transaction.

    ``None`` text renews the lease only. Two statements for all streams, not one per stream.
    """
    if not texts:
        return
    expires = utcnow() + timedelta(seconds=lease_s)
    with_text = [{"mid": mid, "c": text} for mid, text in texts.items() if text is not None]
    async with db() as s, s.begin():
        await s.execute(
            _update_messages()
            .where(Message.id.in_(list(texts)), Message.lease_holder == holder)
            .values(lease_expires_at=expires)
        )
        if with_text:
            table = cast(Table, Message.__table__)
            conn = await s.connection()
            await conn.execute(
                update(table)
                .where(table.c.id == bindparam("mid"), table.c.lease_holder == holder)
                .values(content=bindparam("c")),
                with_text,
            )


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


async def lease_state(
    db: SessionFactory, message_id: uuid.UUID
) -> tuple[str, str | None, datetime | None] | None:
    async with autocommit_session(db) as s:
        row = (
            await s.execute(
                select(Message.status, Message.lease_holder, Message.lease_expires_at).where(
                    Message.id == message_id
                )
            )
        ).one_or_none()
    return (row[0], row[1], row[2]) if row else None


async def has_earlier_active(s: AsyncSession, msg: Message) -> bool:
    """Whether an older answer of the same session is still pending or streaming."""
    found = await s.scalar(
        select(Message.id)
        .where(
            Message.session_id == msg.session_id,
            Message.role == "assistant",
            Message.status.in_(ACTIVE),
            Message.created_at < msg.created_at,
        )
        .limit(1)
    )
    return found is not None


async def next_pending(db: SessionFactory, session_id: uuid.UUID) -> uuid.UUID | None:
    """The id of the session's oldest pending answer, if nothing older is streaming."""
    async with autocommit_session(db) as s:
        return await _next_pending(s, session_id)


async def _next_pending(s: AsyncSession, session_id: uuid.UUID) -> uuid.UUID | None:
    head = (
        await s.execute(
            select(Message.id, Message.status)
            .where(
                Message.session_id == session_id,
                Message.role == "assistant",
                Message.status.in_(ACTIVE),
            )
            .order_by(Message.created_at)
            .limit(1)
        )
    ).one_or_none()
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
    # Built once: aliasing a mapped class costs more than running the query.
    older, asked, before = aliased(Message), aliased(Message), aliased(Message)
    earlier_active = (
        select(older.id)
        .where(
            older.session_id == Message.session_id,
            older.role == "assistant",
            older.status.in_(ACTIVE),
            older.created_at < Message.created_at,
        )
        .exists()
    )
    question = select(asked.content).where(asked.id == Message.reply_to_id).scalar_subquery()
    has_history = (
        select(before.id)
        .where(
            before.session_id == Message.session_id,
            before.created_at < Message.created_at,
            before.id != Message.reply_to_id,
        )
        .exists()
    )
    has_documents = (
        select(DocumentChunk.id)
        .where(DocumentChunk.workspace_id == ChatSession.workspace_id)
        .exists()
    )
    return (
        select(
            Message, ChatSession, Workspace, earlier_active, question, has_history, has_documents
        )
        .join(ChatSession, ChatSession.id == Message.session_id)
        .join(Workspace, Workspace.id == ChatSession.workspace_id)
        .where(Message.id == bindparam("message_id"))
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
    async with autocommit_session(db) as s:
        row = (await s.execute(_LOAD_TURN, {"message_id": message_id})).one_or_none()
        if row is None:
            return None, None
        turn = Turn(row[0], row[1], row[2], bool(row[3]), row[4] or "", bool(row[5]), bool(row[6]))
        may_start = (
            turn.message.status in ACTIVE
            and not turn.earlier_active
            and turn.workspace.status == "ready"
        )
        if claim_as is None or not may_start:
            return turn, None
        return turn, await _claim(s, message_id, claim_as[0], claim_as[1])


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
                .where(Message.role == "assistant", Message.status.in_(ACTIVE))
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
                    Message.status.in_(ACTIVE),
                )
                .order_by(Message.created_at)
            )
        ).all()
    heads: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}
    for mid, sid, status, _created in rows:
        heads.setdefault(sid, (mid, status))
    return [(mid, sid) for sid, (mid, status) in heads.items() if status == "pending"]
