"""Publishing chat jobs: the one place that decides which answer of a session runs next."""

from __future__ import annotations

import logging
import uuid

from app.bus.base import Bus
from app.bus.messages import ChatJob
from app.chat import store
from app.db.engine import SessionFactory

log = logging.getLogger(__name__)


async def publish_chat_job(bus: Bus, message_id: uuid.UUID, session_id: uuid.UUID) -> None:
    await bus.publish_job("chat", ChatJob(message_id=message_id, session_id=session_id).dumps())


async def kick(db: SessionFactory, bus: Bus, session_id: uuid.UUID) -> None:
    """Whoever ends an answer calls this: the session's next waiting answer may start."""
    await publish_next(bus, session_id, await store.next_pending(db, session_id))


async def publish_next(bus: Bus, session_id: uuid.UUID, next_id: uuid.UUID | None) -> None:
    """Publish the job of the session's next answer, if any; on failure the sweep will."""
    if next_id is None:
        return
    try:
        await publish_chat_job(bus, next_id, session_id)
    except Exception:
        log.warning("could not publish the next job of session %s; the sweep will", session_id)
