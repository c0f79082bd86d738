"""Lost jobs are found again: the sweep publishes an answer whose job never arrived."""

from __future__ import annotations

import uuid

from sqlalchemy import update

from app.chat import store
from app.db.models import Message
from app.db.types import utcnow
from tests.support.clients import Api, connect
from tests.support.server import LiveServer


async def test_the_sweep_publishes_an_answer_whose_job_was_lost(
    server: LiveServer, api: Api
) -> None:
    user = await api.user()
    ws = await api.workspace(user, llm_provider="synthetic", llm_model="tokens-5-rate-0")
    sock = await connect(server.url, user.token)
    ctx = server.ctx
    try:
        # Store a turn as a crashed node would have left it: accepted, never published.
        accepted = await ctx.turns.accept(
            uuid.UUID(user.id),
            workspace_id=uuid.UUID(ws["id"]),
            session_id=None,
            message="lost in the crash",
            rag_type="none",
            client_message_id=None,
        )
        assert accepted.publish is True
        async with ctx.db() as s, s.begin():
            old = utcnow().replace(year=2020)
            await s.execute(
                update(Message).where(Message.id == accepted.message_id).values(created_at=old)
            )
        assert (await sock.call("join_session", {"session_id": str(accepted.session_id)}))["ok"]
        worker = next(w for w in ctx.workers if hasattr(w, "sweep_once"))
        assert await worker.sweep_once() >= 1
        final = await sock.wait_final(str(accepted.message_id))
        assert final.name == "chat_complete"
        assert len(final.data["full_response"].split()) == 5
        # Once answered, nothing of this session is stale any more.
        stale = await store.stale_messages(ctx.db, utcnow())
        assert accepted.session_id not in {session for _m, session in stale}
    finally:
        await sock.disconnect()
