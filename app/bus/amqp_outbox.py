"""The AMQP bus's outgoing events: under load one message per few milliseconds, not per event.

``publish_event`` only appends to the outbox; a sender task started on the first event
of a quiet moment runs on the loop's next pass and sends everything that has gathered by
then. One event alone goes out as itself, under its own routing key, so at low load nothing
changes (same routing, one pass of the loop later). When several have gathered, because
many answers stream at once or the broker connection is busy, they go as one message
under ``BATCH_ROUTING_KEY`` (``app.bus.event_batches`` framing). The batch is not routed
by the broker but by the receiving node: every API node's queue is bound to the batch key,
and the node drops the events that match none of its own patterns.

That trades a little of the design's "an event goes only to the nodes that need it" for an
order of magnitude fewer messages exactly when there are many; what a node pays for events
of other nodes' clients is a header read per event (their bodies are never parsed).
Order is kept: one sender, one channel, and events leave in the order they were put.
The outbox is bounded: past ``max_pending_bytes`` a publisher waits for the sender.

A pass of the loop is short when the process is busy, so batching per pass alone still
sent ~800 messages a second for 200 answers at 30 tokens/s (7 events each), and each
message costs every hop its own frames: the worker a socket write, the broker a routing
and a delivery, the API node three frame parses and a task. ``min_interval_s`` caps the
rate instead: a message leaves at once if the last one left at least that long ago,
otherwise when that much time has passed, with everything gathered meanwhile. A quiet
outbox therefore adds no delay; a busy one adds at most the interval to an event. In the
benchmark's 200 streams, 4 ms took the steady CPU of API, worker, RabbitMQ and PostgreSQL
from 0.96-1.10 of a core to 0.73, 8 ms a little further. The default, 3 ms (at most ~330
messages a second), keeps most of that saving and adds less than half of 8 ms's latency:
in interleaved runs the median p99 of the steady seconds was 9.5 ms against 14.2 at 8 ms
on a quiet core, and 13.8 against 18.7 beside a noisy neighbour (benchmarks/README.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from app.bus.event_batches import encode_batch, encoded_size
from app.pacing import Pacer

log = logging.getLogger(__name__)

# One word: no node's ``<kind>.<id>.*`` pattern can match it.
BATCH_ROUTING_KEY = "batch"

# Sends one AMQP message carrying ``count`` events.
Send = Callable[[str, bytes, int], Awaitable[None]]


class EventOutbox:
    def __init__(
        self,
        send: Send,
        *,
        max_batch_bytes: int = 128 * 1024,
        max_pending_bytes: int = 8 * 1024 * 1024,
        min_interval_s: float = 0.0,
    ) -> None:
        self._send = send
        self._pacer = Pacer(min_interval_s)  # a burst of one: batches at least this far apart
        self._max_batch = max_batch_bytes
        self._max_pending = max_pending_bytes
        self._events: list[tuple[str, bytes]] = []
        self._bytes = 0
        self._sender: asyncio.Task[None] | None = None
        self._room = asyncio.Event()
        self._room.set()
        self.messages_sent = 0
        self.events_sent = 0

    async def put(self, routing_key: str, body: bytes) -> None:
        self._events.append((routing_key, body))
        self._bytes += len(body)
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._run(), name="event-outbox")
        if self._bytes > self._max_pending:
            self._room.clear()
            await self._room.wait()

    async def flush(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until everything put so far has been handed over."""
        sender = self._sender
        if sender is not None:
            await asyncio.wait([sender], timeout=timeout_s)

    async def _run(self) -> None:
        try:
            while self._events:
                await self._pacer.take()
                events, self._events, self._bytes = self._events, [], 0
                self._room.set()
                for key, body, count in self._messages(events):
                    await self._send(key, body, count)
                    self.messages_sent += 1
                    self.events_sent += count
        except Exception:
            log.exception("the event outbox failed; %d events are lost", len(self._events))
            self._events, self._bytes = [], 0
            self._room.set()
        finally:
            self._sender = None

    def _messages(self, events: list[tuple[str, bytes]]) -> list[tuple[str, bytes, int]]:
        """Consecutive events grouped into batches of at most ``max_batch_bytes``."""
        out: list[tuple[str, bytes, int]] = []
        group: list[tuple[str, bytes]] = []
        size = 0
        for event in events:
            grow = encoded_size(*event)
            if group and size + grow > self._max_batch:
                out.append(self._message(group))
                group, size = [], 0
            group.append(event)
            size += grow
        if group:
            out.append(self._message(group))
        return out

    @staticmethod
    def _message(group: list[tuple[str, bytes]]) -> tuple[str, bytes, int]:
        if len(group) == 1:
            key, body = group[0]
            return key, body, 1
        return BATCH_ROUTING_KEY, encode_batch(group), len(group)
