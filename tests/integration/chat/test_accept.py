"""Accepting a chat message: what is stored, what is refused, and that a refusal stores nothing.

PostgreSQL stores a turn in one statement (``app.chat.accept_pg``), SQLite in a
transaction (``app.chat.service``); each case runs on both and expects the same answer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import delete, event, func, insert, select, update

from app.chat import service
from app.db.engine import SessionFactory, engine_of, make_engine, make_session_factory
from app.db.migrate import upgrade_database
from app.db.models import ChatSession, Message, User, Workspace, WorkspaceMember
from app.errors import InvalidInput, NotFound
from tests.conftest import DB_KINDS, fresh_postgres_database, make_settings


@pytest.fixture(params=DB_KINDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A new database for each test: SQLite in the test's directory, or PostgreSQL."""
    if request.param == "sqlite":
        yield None
        return
    with fresh_postgres_database() as url:
        yield url


@pytest_asyncio.fixture
async def db(database_url: str | None, tmp_path: Path) -> AsyncIterator[SessionFactory]:
    engine = make_engine(make_settings(tmp_path, database_url))
    await upgrade_database(engine)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()


class World:
    """Users and workspaces inserted directly, and counts of what is stored."""

    def __init__(self, db: SessionFactory) -> None:
        self.db = db

    async def run(self, statement: Any) -> Any:
        async with self.db() as s, s.begin():
            return await s.execute(statement)

    async def user(self) -> uuid.UUID:
        uid = uuid.uuid4()
        await self.run(
            insert(User).values(id=uid, email=f"{uid.hex}@example.com", password_hash="x")
        )
        return uid

    async def workspace(self, owner: uuid.UUID, status: str = "ready") -> uuid.UUID:
        wid = uuid.uuid4()
        await self.run(
            insert(Workspace).values(
                id=wid,
                owner_id=owner,
                name="w",
                status=status,
                llm_provider="synthetic",
                llm_model="m",
            )
        )
        await self.member(wid, owner, "owner")
        return wid

    async def member(self, workspace: uuid.UUID, user: uuid.UUID, role: str = "member") -> None:
        await self.run(
            insert(WorkspaceMember).values(workspace_id=workspace, user_id=user, role=role)
        )

    async def remove_member(self, workspace: uuid.UUID, user: uuid.UUID) -> None:
        await self.run(
            delete(WorkspaceMember).where(
                WorkspaceMember.workspace_id == workspace, WorkspaceMember.user_id == user
            )
        )

    async def stored(self) -> tuple[int, int, list[Any]]:
        """(sessions, messages, every session's updated_at)."""
        touched = (await self.run(select(ChatSession.updated_at).order_by(ChatSession.id))).all()
        messages = (await self.run(select(func.count()).select_from(Message))).scalar_one()
        return len(touched), messages, [row[0] for row in touched]

    async def answer_status(self, message_id: uuid.UUID, status: str) -> None:
        await self.run(update(Message).where(Message.id == message_id).values(status=status))


@pytest_asyncio.fixture
async def world(db: SessionFactory) -> World:
    return World(db)


@contextmanager
def failed_statements(db: SessionFactory) -> Iterator[list[str]]:
    """The errors the database answered statements with while the block ran."""
    failures: list[str] = []
    engine = engine_of(db).sync_engine

    def record(context: Any) -> None:
        failures.append(str(context.original_exception))

    event.listen(engine, "handle_error", record)
    try:
        yield failures
    finally:
        event.remove(engine, "handle_error", record)


async def accept(world: World, user: uuid.UUID, **fields: Any) -> service.Accepted:
    values: dict[str, Any] = {
        "workspace_id": None,
        "session_id": None,
        "message": "hello",
        "rag_type": "none",
        "client_message_id": None,
    }
    values.update(fields)
    return await service.accept_message(world.db, user, **values)


async def test_a_new_session_stores_the_question_and_a_pending_answer(world: World) -> None:
    alice = await world.user()
    ws = await world.workspace(alice)
    turn = await accept(world, alice, workspace_id=ws, message="first line\nsecond")
    assert turn.publish and not turn.waits_for_workspace
    rows = (
        await world.run(
            select(
                Message.id,
                Message.role,
                Message.status,
                Message.content,
                Message.reply_to_id,
                Message.provider,
                Message.model,
                ChatSession.title,
                ChatSession.workspace_id,
            )
            .join(ChatSession, ChatSession.id == Message.session_id)
            .order_by(Message.created_at)
        )
    ).all()
    assert [(r.role, r.status, r.content) for r in rows] == [
        ("user", "complete", "first line\nsecond"),
        ("assistant", "pending", ""),
    ]
    asked, answer = rows
    assert (asked.id, answer.id) == (turn.user_message_id, turn.message_id)
    assert answer.reply_to_id == asked.id and (answer.provider, answer.model) == ("synthetic", "m")
    assert asked.title == "first line" and asked.workspace_id == ws


async def test_a_follow_up_touches_its_session_and_waits_while_an_answer_is_in_progress(
    world: World,
) -> None:
    alice = await world.user()
    ws = await world.workspace(alice)
    first = await accept(world, alice, workspace_id=ws)
    _, _, [touched_before] = await world.stored()
    second = await accept(world, alice, session_id=first.session_id)
    assert second.session_id == first.session_id and not second.publish
    _, messages, [touched_after] = await world.stored()
    assert messages == 4 and touched_after > touched_before
    await world.answer_status(first.message_id, "complete")
    await world.answer_status(second.message_id, "complete")
    third = await accept(world, alice, workspace_id=ws, session_id=first.session_id)
    assert third.publish


async def test_a_provisioning_workspace_stores_the_turn_to_start_later(world: World) -> None:
    alice = await world.user()
    ws = await world.workspace(alice, status="provisioning")
    turn = await accept(world, alice, workspace_id=ws)
    assert not turn.publish and turn.waits_for_workspace
    assert (await world.stored())[:2] == (1, 2)


async def test_refusals_say_not_found_and_store_nothing(world: World) -> None:
    alice, bob = await world.user(), await world.user()
    hers, his = await world.workspace(alice), await world.workspace(bob)
    shared = await world.workspace(alice)
    await world.member(shared, bob)
    her_turn = await accept(world, alice, workspace_id=hers)
    his_turn = await accept(world, bob, workspace_id=shared)
    before = await world.stored()
    cases = [
        ({"workspace_id": hers}, "workspace not found"),
        ({"workspace_id": uuid.uuid4()}, "workspace not found"),
        ({"session_id": her_turn.session_id}, "session not found"),
        ({"session_id": uuid.uuid4()}, "session not found"),
        (
            {"session_id": his_turn.session_id, "workspace_id": his},
            "session not found in that workspace",
        ),
    ]
    for fields, why in cases:
        with pytest.raises(NotFound) as refused:
            await accept(world, bob, **fields)
        assert str(refused.value) == why, fields
    await world.remove_member(shared, bob)
    with pytest.raises(NotFound, match="workspace not found"):
        await accept(world, bob, session_id=his_turn.session_id)
    with pytest.raises(InvalidInput):
        await accept(world, bob)
    assert await world.stored() == before


async def test_a_resent_client_message_id_answers_with_the_first_turn(world: World) -> None:
    alice = await world.user()
    ws = await world.workspace(alice)
    first = await accept(world, alice, workspace_id=ws, client_message_id="c-1")
    with failed_statements(world.db) as failures:
        again = await accept(world, alice, workspace_id=ws, client_message_id="c-1")
        follow = await accept(world, alice, session_id=first.session_id, client_message_id="c-1")
    # A resend is found, not run into the unique key (no error round trip, no ERROR logged).
    assert failures == []
    for replay in (again, follow):
        assert (replay.session_id, replay.user_message_id, replay.message_id) == (
            first.session_id,
            first.user_message_id,
            first.message_id,
        )
        assert not replay.publish
    assert (await world.stored())[:2] == (1, 2)
    # Still answered after losing the workspace: the turn was stored when it was sent.
    await world.remove_member(ws, alice)
    late = await accept(world, alice, workspace_id=ws, client_message_id="c-1")
    assert late.message_id == first.message_id and not late.publish


async def test_two_sends_of_one_client_message_id_at_once_store_one_turn(world: World) -> None:
    alice = await world.user()
    ws = await world.workspace(alice)
    turns = await asyncio.gather(
        *(accept(world, alice, workspace_id=ws, client_message_id="c-race") for _ in range(4))
    )
    assert len({(t.session_id, t.user_message_id, t.message_id) for t in turns}) == 1
    assert sum(t.publish for t in turns) == 1  # only the stored one starts an answer
    assert (await world.stored())[:2] == (1, 2)
