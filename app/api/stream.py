"""POST /api/sessions/{id}/messages: one chat turn as server-sent events.

``chat_accepted`` first, then the Socket.IO events of that answer, a heartbeat comment
every 15 s, and the final event. Unlike a socket, an HTTP client that goes away cancels
the answer: nobody could resume it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from app.api.deps import Ctx, CurrentUser
from app.api.schemas import MessageCreate
from app.bus.base import session_pattern
from app.chat import service
from app.chat.events import FINAL_EVENTS
from app.chat.finals import final_event

log = logging.getLogger(__name__)
router = APIRouter(tags=["sessions"])
_cancels: set[asyncio.Task[Any]] = set()

SSE_DOC = {
    200: {
        "description": "The answer as server-sent events: `chat_accepted`, then `chat_chunk`s, "
        "ending with `chat_complete`, `chat_cancelled` or `chat_error` (docs/protocol.md).",
        "content": {
            "text/event-stream": {
                "schema": {"type": "string"},
                "example": 'event: chat_chunk\ndata: {"session_id": "...", "offset": 0, '
                '"chunk": "Hello "}\n\n',
            }
        },
    }
}


def sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@router.post(
    "/api/sessions/{session_id}/messages",
    response_class=StreamingResponse,
    responses=SSE_DOC,  # type: ignore[arg-type]
)
async def stream_message(
    session_id: UUID, body: MessageCreate, ctx: Ctx, user: CurrentUser
) -> StreamingResponse:
    await service.get_session(ctx.db, session_id, user.id)  # 404 before any stream starts
    accepted = await ctx.turns.accept(
        user.id,
        workspace_id=None,
        session_id=session_id,
        message=body.message,
        rag_type=body.rag_type,
        client_message_id=body.client_message_id,
    )
    assert ctx.realtime is not None
    relay = ctx.realtime.relay
    message_id = str(accepted.message_id)
    queue = relay.listen(message_id)
    pattern = session_pattern(session_id)
    await ctx.bus.bind(pattern)
    try:
        await ctx.turns.publish(accepted)
        if not accepted.publish:
            # A replayed send whose answer already ended: send its final event straight away.
            msg = await service.get_message(ctx.db, accepted.message_id)
            final = final_event(msg) if msg is not None else None
            if final is not None:
                queue.put_nowait(final)
    except BaseException:
        relay.unlisten(message_id, queue)
        await ctx.bus.unbind(pattern)
        raise

    async def events() -> AsyncIterator[bytes]:
        finished = False
        try:
            yield sse("chat_accepted", accepted.ack() | {"ok": True})
            while True:
                try:
                    event, data = await asyncio.wait_for(queue.get(), ctx.settings.sse_heartbeat_s)
                except TimeoutError:
                    yield b": heartbeat\n\n"
                    continue
                yield sse(event, data)
                if event in FINAL_EVENTS:
                    finished = True
                    return
        finally:
            relay.unlisten(message_id, queue)
            # This may run under the cancellation of a departed client: new task, not await.
            task = asyncio.get_running_loop().create_task(
                _cleanup(ctx, user.id, session_id, accepted.message_id, pattern, finished)
            )
            _cancels.add(task)
            task.add_done_callback(_cancels.discard)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _cleanup(
    ctx: Ctx, user_id: UUID, session_id: UUID, message_id: UUID, pattern: str, finished: bool
) -> None:
    try:
        if not finished:
            await ctx.turns.cancel(user_id, session_id, message_id)
    except Exception:
        log.warning("cancelling %s after its client left failed", message_id, exc_info=True)
    finally:
        await ctx.bus.unbind(pattern)
