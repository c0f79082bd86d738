"""The final event of an ended answer, rebuilt from its stored row, and its publishing.

Used by whoever ends an answer without a live stream (a queued cancel, a lost worker, a
workspace that failed) and by ``resume`` for an answer that has already ended.
"""

from __future__ import annotations

import logging
from typing import Any

from app.bus.base import Bus, chat_key
from app.bus.messages import event_body
from app.chat import events
from app.db.models import Message

log = logging.getLogger(__name__)


def final_event(msg: Message) -> tuple[str, dict[str, Any]] | None:
    sid, mid = str(msg.session_id), str(msg.id)
    if msg.status == "complete":
        return events.CHAT_COMPLETE, events.complete(
            sid, mid, msg.attempt, msg.content, msg.finish_reason, msg.usage, msg.sources or []
        )
    if msg.status == "cancelled":
        return events.CHAT_CANCELLED, events.cancelled(sid, mid, msg.attempt, msg.content)
    if msg.status == "failed":
        return events.CHAT_ERROR, events.error(
            sid, mid, msg.attempt, msg.error_type or "server_error", msg.error_message or "failed"
        )
    return None


async def publish_event(bus: Bus, event: str, data: dict[str, Any]) -> None:
    """Publish a chat event; a failure is logged (clients recover with ``resume``)."""
    try:
        await bus.publish_event(
            chat_key(data["session_id"], events.EVENT_KINDS[event]), event_body(event, data)
        )
    except Exception:
        log.warning("publishing %s for %s failed", event, data.get("message_id"))


async def publish_stored_final(bus: Bus, msg: Message) -> None:
    final = final_event(msg)
    if final is not None:
        await publish_event(bus, *final)
