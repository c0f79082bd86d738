"""The in-process bus of the embedded mode, with the AMQP bus's semantics.

Jobs wait in a queue until a consumer takes them, are redelivered when handed back or when
a handler fails, and are dead-lettered when rejected or past the delivery limit. Events are
handed to the node's consumer inline (in publish order, with natural back-pressure) for the
patterns that are bound; control commands go to every control consumer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from app.bus.base import (
    JOB_QUEUES,
    BindingCounts,
    ControlHandler,
    EventHandler,
    JobHandler,
    JobQueue,
)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    body: bytes
    deliveries: int = 0


class _Delivery:
    __slots__ = ("_bus", "_job", "_queue", "_settled", "done")

    def __init__(self, bus: InMemoryBus, queue: str, job: _Job) -> None:
        self._bus = bus
        self._queue = queue
        self._job = job
        self._settled = False
        self.done = asyncio.Event()

    @property
    def body(self) -> bytes:
        return self._job.body

    @property
    def redelivered(self) -> bool:
        return self._job.deliveries > 1

    @property
    def settled(self) -> bool:
        return self._settled

    def _settle(self) -> bool:
        if self._settled:
            return False
        self._settled = True
        self.done.set()
        return True

    async def ack(self) -> None:
        self._settle()

    async def requeue(self) -> None:
        if self._settle():
            self._bus._enqueue(self._queue, self._job)

    async def reject(self) -> None:
        if self._settle():
            self._bus._dead_letter(self._queue, self._job)


@dataclass
class _Consumer:
    task: asyncio.Task[None]
    running: set[asyncio.Task[None]] = field(default_factory=set)

    async def cancel(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass


class _Callback:
    def __init__(self, remove: Callable[[], None]) -> None:
        self._remove = remove

    async def cancel(self) -> None:
        self._remove()


class InMemoryBus:
    def __init__(self, *, node_id: str = "embedded", delivery_limit: int = 5) -> None:
        self.node_id = node_id
        self.delivery_limit = delivery_limit
        self._queues: dict[str, asyncio.Queue[_Job]] = {}
        for q in JOB_QUEUES:
            self._queues[q] = asyncio.Queue()
            self._queues[f"{q}.dead"] = asyncio.Queue()
        self.parked: list[tuple[bytes, str]] = []
        self._event_handlers: list[EventHandler] = []
        self._control_handlers: list[ControlHandler] = []
        self._bindings = BindingCounts()  # matches a key with one set lookup (hot path)
        self._consumers: list[_Consumer] = []

    # lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for consumer in self._consumers:
            await consumer.cancel()
        self._consumers.clear()

    async def ping(self) -> bool:
        return True

    # jobs ----------------------------------------------------------------------
    def _enqueue(self, queue: str, job: _Job) -> None:
        self._queues[queue].put_nowait(job)

    def _dead_letter(self, queue: str, job: _Job) -> None:
        self._queues[f"{queue}.dead"].put_nowait(_Job(job.body))

    async def publish_job(self, queue: JobQueue, body: bytes) -> None:
        self._enqueue(queue, _Job(body))

    def pending_jobs(self, queue: str) -> int:
        return self._queues[queue].qsize()

    async def consume_jobs(
        self, queue: JobQueue, handler: JobHandler, *, prefetch: int
    ) -> _Consumer:
        return self._consume(queue, handler, prefetch, count_deliveries=True)

    async def consume_dead_letters(self, queue: JobQueue, handler: JobHandler) -> _Consumer:
        return self._consume(f"{queue}.dead", handler, 1, count_deliveries=False)

    async def park(self, body: bytes, reason: str) -> None:
        log.warning("parked a job body (%s): %r", reason, body[:200])
        self.parked.append((body, reason))

    def _consume(
        self, queue: str, handler: JobHandler, prefetch: int, *, count_deliveries: bool
    ) -> _Consumer:
        slots = asyncio.Semaphore(max(1, prefetch))
        source = self._queues[queue]
        running: set[asyncio.Task[None]] = set()

        async def run_one(delivery: _Delivery) -> None:
            try:
                await handler(delivery)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job handler failed on %s; requeued", queue)
            finally:
                if not delivery.settled:
                    await delivery.requeue()
                slots.release()

        async def pump() -> None:
            while True:
                await slots.acquire()
                job = await source.get()
                if count_deliveries:
                    job.deliveries += 1
                    if job.deliveries > self.delivery_limit:
                        self._dead_letter(queue, job)
                        slots.release()
                        continue
                task = asyncio.create_task(run_one(_Delivery(self, queue, job)))
                running.add(task)
                task.add_done_callback(running.discard)

        consumer = _Consumer(asyncio.create_task(pump(), name=f"bus-consume-{queue}"), running)
        self._consumers.append(consumer)
        return consumer

    # events --------------------------------------------------------------------
    async def publish_event(self, routing_key: str, body: bytes) -> None:
        if not self._event_handlers or not self._is_bound(routing_key):
            return
        for handler in self._event_handlers:
            try:
                await handler(routing_key, body)
            except Exception:
                log.exception("event handler failed for %s", routing_key)

    def _is_bound(self, routing_key: str) -> bool:
        return self._bindings.matches(routing_key)

    async def consume_events(self, handler: EventHandler) -> _Callback:
        self._event_handlers.append(handler)
        return _Callback(lambda: self._event_handlers.remove(handler))

    async def bind(self, pattern: str) -> None:
        self._bindings.add(pattern)

    async def unbind(self, pattern: str) -> None:
        self._bindings.remove(pattern)

    def bound_patterns(self) -> set[str]:
        return self._bindings.patterns()

    # control -------------------------------------------------------------------
    async def publish_control(self, body: bytes) -> None:
        for handler in list(self._control_handlers):
            try:
                await handler(body)
            except Exception:
                log.exception("control handler failed")

    async def consume_control(self, handler: ControlHandler) -> _Callback:
        self._control_handlers.append(handler)
        return _Callback(lambda: self._control_handlers.remove(handler))
