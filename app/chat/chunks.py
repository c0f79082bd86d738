"""The answer's chunk stream: attempt, seq, offset, and coalescing while the pipe is busy.

Tokens are pushed synchronously as the provider yields them. A flusher task publishes what
has gathered; while it is publishing, new tokens gather into the next chunk. An idle pipe
therefore sends each token at once, and a busy one sends fewer, larger chunks instead of
falling behind.

The event rate of one answer is also capped: on average one chunk per ``min_interval_s``,
with up to ``BURST_CHUNKS`` at once (a token bucket). A reader sees no difference (a page
paints at most once a frame), but an answer that streams a thousand tokens a second no
longer costs every hop a thousand events a second, which is what it used to take from the
answers streaming beside it, and from a client that stopped reading (its events queue on
the server until the bound drops it). The burst lets a normal-rate answer that fell behind
for a moment (a provider's tokens arriving together after a stall) catch up at once
instead of waiting an interval per token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from app.bus.messages import event_body
from app.chat import events
from app.pacing import Pacer

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[None]]

BURST_CHUNKS = 4.0


class ChunkStream:
    __slots__ = (
        "_buffer",
        "_flusher",
        "_key",
        "_pacer",
        "_publish",
        "attempt",
        "message_id",
        "offset",
        "parts",
        "seq",
        "session_id",
    )

    def __init__(
        self,
        publish: Publish,
        *,
        routing_key: str,
        session_id: str,
        message_id: str,
        attempt: int,
        min_interval_s: float,
    ) -> None:
        self._publish = publish
        self._key = routing_key
        self.session_id = session_id
        self.message_id = message_id
        self.attempt = attempt
        self._pacer = Pacer(min_interval_s, burst=BURST_CHUNKS)
        self._buffer: list[str] = []
        self._flusher: asyncio.Task[None] | None = None
        self.parts: list[str] = []  # everything generated, published or not
        self.seq = 0
        self.offset = 0  # code points published so far

    def push(self, text: str) -> None:
        self.parts.append(text)
        self._buffer.append(text)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    def text(self) -> str:
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    async def _flush(self) -> None:
        try:
            while self._buffer:
                await self._pacer.take()
                text = "".join(self._buffer)
                self._buffer.clear()
                payload = events.chunk(
                    self.session_id, self.message_id, self.attempt, self.seq, self.offset, text
                )
                self.seq += 1
                self.offset += len(text)
                try:
                    await self._publish(self._key, event_body(events.CHAT_CHUNK, payload))
                except Exception:
                    # Events are transient: a client that missed one resumes from the text.
                    log.warning("publishing a chunk of %s failed", self.message_id, exc_info=True)
        finally:
            self._flusher = None

    async def drain(self) -> None:
        """Wait until every pushed token has been published (before the final event)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)
