"""Core rows become model objects the rest of the code can read as if the ORM loaded them."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import tables
from app.db.models import Base, ChatSession, Message, Workspace
from app.db.types import utcnow


@pytest.mark.parametrize("model", [Message, ChatSession, Workspace])
def test_every_attribute_of_the_models_built_from_rows_is_named_as_its_column(
    model: type[Base],
) -> None:
    # ``detached`` and ``labelled`` look columns up by attribute name.
    for attr in inspect(model).column_attrs:
        assert attr.key == attr.columns[0].key


async def test_a_joined_row_gives_detached_objects_with_every_value() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            user_id, ws_id, session_id, msg_id = (uuid.uuid4() for _ in range(4))
            now = utcnow()
            await conn.execute(
                tables.workspaces.insert().values(
                    id=ws_id, owner_id=user_id, name="w", llm_provider="synthetic", status="ready"
                )
            )
            await conn.execute(
                tables.chat_sessions.insert().values(
                    id=session_id,
                    workspace_id=ws_id,
                    user_id=user_id,
                    created_at=now,
                    updated_at=now,
                )
            )
            await conn.execute(
                tables.messages.insert().values(
                    id=msg_id,
                    session_id=session_id,
                    user_id=user_id,
                    role="assistant",
                    status="complete",
                    content="the answer",
                    usage={"prompt_tokens": 3, "completion_tokens": 2},
                    created_at=now,
                )
            )
            row = (
                await conn.execute(
                    select(
                        *tables.labelled(Message, "m_"), *tables.labelled(ChatSession, "s_")
                    ).join_from(
                        tables.messages,
                        tables.chat_sessions,
                        tables.chat_sessions.c.id == tables.messages.c.session_id,
                    )
                )
            ).one()
        msg = tables.detached(Message, row._mapping, "m_")
        session = tables.detached(ChatSession, row._mapping, "s_")
    finally:
        await engine.dispose()
    assert (msg.id, msg.session_id, msg.content, msg.status) == (
        msg_id,
        session_id,
        "the answer",
        "complete",
    )
    assert msg.usage == {"prompt_tokens": 3, "completion_tokens": 2}
    assert msg.created_at == now and msg.created_at.tzinfo is not None
    assert msg.completed_at is None
    assert (session.id, session.workspace_id) == (session_id, ws_id)
    # In no session: reading an attribute cannot start a query (or fail for lack of one).
    assert inspect(msg).session is None and inspect(msg).transient
