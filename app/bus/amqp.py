"""The bus over RabbitMQ (aio-pika's robust connection, aiormq channels).

aio-pika's ``connect_robust`` keeps the TCP connection alive and reconnects in the
background; everything on top of it belongs to this module, which does not trust the robust
restore (it has lost and duplicated consumers): the channels are raw aiormq channels that
aio-pika does not track, and a supervisor task reconciles the broker with what the bus
wants after each reconnect, each channel loss and every few seconds in between. It
declares the topology, reopens the channels, re-creates the node's exclusive event queue,
binds it to every pattern in the ``BindingCounts`` (which stay the truth through an
outage: a bind made while the broker was away is not forgotten, an unbind does not come
back) and restarts every consumer that is not live on the current connection.

Three channels are the bus's own: ``admin`` (declares, binds, ping), ``publisher`` (jobs,
publisher confirms) and ``fast`` (events and control: transient, no confirms). Each
consumer has a channel of its own, so its prefetch is its own. Events gathered in one pass
of the event loop travel as one message (``app.bus.amqp_outbox``), which the receiving
node routes to its handler by its own binding counts.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
import aiormq.abc
from aio_pika.abc import AbstractConnection, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from aiormq import spec
from yarl import URL

from app.bus.amqp_consumers import (
    BROKER_ERRORS,
    ConsumerHooks,
    ControlConsumer,
    EventConsumer,
    JobConsumer,
    ManagedConsumer,
    raise_if_cancelled,
)
from app.bus.amqp_outbox import BATCH_ROUTING_KEY, EventOutbox
from app.bus.amqp_topology import (
    control_queue_name,
    dead_queue_name,
    declare_topology,
    event_queue_name,
)
from app.bus.base import (
    CONTROL_EXCHANGE,
    EVENTS_EXCHANGE,
    JOB_QUEUE_NAMES,
    JOB_ROUTING_KEYS,
    JOBS_EXCHANGE,
    PARKED_QUEUE,
    BindingCounts,
    ControlHandler,
    EventHandler,
    JobHandler,
    JobQueue,
)
from app.bus.event_batches import MalformedBatch, decode_batch
from app.errors import ServiceUnavailable

log = logging.getLogger(__name__)

_BACKOFF_MIN_S = 0.25
_BACKOFF_MAX_S = 5.0
_MAX_KEY_BYTES = 255  # AMQP short string; a longer pattern would never bind


class AmqpBus:
    """``app.bus.base.Bus`` over RabbitMQ; see the module docstring for the recovery model."""

    def __init__(
        self,
        url: str,
        *,
        node_id: str,
        publish_timeout_s: float = 5.0,
        delivery_limit: int = 5,
        reconnect_interval_s: float = 1.0,
        health_check_interval_s: float = 5.0,
        event_batch_interval_s: float = 0.0,
    ) -> None:
        self.node_id = node_id
        self._url = url
        self._publish_timeout = publish_timeout_s
        self._delivery_limit = delivery_limit
        self._reconnect_interval = reconnect_interval_s
        self._health_interval = health_check_interval_s
        self._op_timeout = publish_timeout_s  # bound on each declare/bind/consume call
        self._ping_timeout = min(2.0, publish_timeout_s)

        self._connection: AbstractRobustConnection | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._ready = asyncio.Event()  # core channels open and topology declared
        self._was_ready = False
        self._recovered = False
        self.recovery_listeners: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._listener_tasks: set[asyncio.Task[None]] = set()
        self._dirty = asyncio.Event()  # something to reconcile
        self._reconcile_lock = asyncio.Lock()
        self._bind_lock = asyncio.Lock()

        # State of one connection: all reset when the supervisor sees a new one.
        self._raw: aiormq.abc.AbstractConnection | None = None
        self._admin: aiormq.Channel | None = None
        self._publisher: aiormq.Channel | None = None
        self._fast: aiormq.Channel | None = None
        self._topology_declared = False
        self._event_queue_declared = False
        self._bound: set[str] = set()  # patterns bound on the broker right now

        self._counts = BindingCounts()  # the truth the queue's bindings follow
        self._pending: set[str] = set()  # patterns whose binding may differ from the counts
        self._event_queue = event_queue_name(node_id)
        self._events: EventConsumer | None = None
        self._consumers: dict[str, ManagedConsumer] = {}  # by tag, restored on reconnect
        self._draining: set[ManagedConsumer] = set()  # cancelled, handlers still running
        self._background: set[asyncio.Task[None]] = set()
        self._seq = itertools.count(1)
        self._hooks = ConsumerHooks(
            timeout=self._op_timeout, on_lost=self._request_reconcile, on_cancel=self._forget
        )
        # aiormq makes up a message id for every publish that has none (it matches returns
        # of mandatory publishes); events are not mandatory, so one shared id saves the work.
        self._transient = spec.Basic.Properties(delivery_mode=1, message_id="transient")
        self._dropped = 0
        self._outbox = EventOutbox(self._send_events, min_interval_s=event_batch_interval_s)
        self._event_handler: EventHandler | None = None

    # lifecycle

    async def start(self) -> None:
        """Connect and declare everything; ``ServiceUnavailable`` if the broker is not there."""
        if self._connection is not None:
            raise RuntimeError("the bus was started already")
        where = URL(self._url).with_user(None).with_query(None)
        try:
            self._connection = await aio_pika.connect_robust(
                self._url,
                reconnect_interval=self._reconnect_interval,
                timeout=self._op_timeout,
                client_properties={"connection_name": f"insighthub {self.node_id}"},
            )
        except (*CONNECTION_EXCEPTIONS, TimeoutError) as exc:
            raise ServiceUnavailable(f"RabbitMQ at {where} is not reachable: {exc!r}") from exc
        self._connection.close_callbacks.add(self._on_connection_lost)
        self._connection.reconnect_callbacks.add(self._on_reconnected)
        try:
            await self._reconcile()
            if not self._ready.is_set():
                raise ConnectionError("the connection closed during start")
        except BROKER_ERRORS as exc:
            connection, self._connection = self._connection, None
            await connection.close()
            raise ServiceUnavailable(f"RabbitMQ at {where}: setup failed: {exc!r}") from exc
        self._supervisor = asyncio.create_task(
            self._supervise(), name=f"amqp-bus-supervisor:{self.node_id}"
        )

    async def close(self) -> None:
        """Cancel the consumers, stop their handlers, close the connection."""
        if self._closing:
            return
        await self._outbox.flush(self._publish_timeout)  # the last events (finals) go out
        self._closing = True
        self._ready.clear()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        consumers = list(self._consumers.values())
        for consumer in consumers:
            await consumer.cancel()  # stop deliveries first, then stop the handlers
        every = {*consumers, *self._draining}
        await asyncio.gather(*(c.shutdown() for c in every), return_exceptions=True)
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._connection is not None:
            await self._connection.close()

    async def ping(self) -> bool:
        channel = self._admin
        if not self._ready.is_set() or channel is None or channel.is_closed:
            return False
        try:
            await channel.exchange_declare(
                JOBS_EXCHANGE, exchange_type="direct", passive=True, timeout=self._ping_timeout
            )
        except asyncio.CancelledError:
            raise_if_cancelled()
            return False
        except BROKER_ERRORS:
            self._request_reconcile()
            return False
        return True

    @property
    def ready(self) -> bool:
        """Connected, channels open, topology declared (ping without a round trip)."""
        return self._ready.is_set()

    # jobs

    async def publish_job(self, queue: JobQueue, body: bytes) -> None:
        await self._publish_confirmed(
            JOBS_EXCHANGE,
            JOB_ROUTING_KEYS[queue],
            body,
            spec.Basic.Properties(delivery_mode=2, content_type="application/json"),
            what=f"{queue} job",
        )

    async def park(self, body: bytes, reason: str) -> None:
        """Keep a body nobody can use in ``insighthub.parked`` for a person to look at."""
        await self._publish_confirmed(
            "",
            PARKED_QUEUE,
            body,
            spec.Basic.Properties(
                delivery_mode=2,
                headers={"x-parked-reason": reason, "x-parked-by": self.node_id},
                timestamp=datetime.now(UTC),
            ),
            what="parked message",
        )

    async def consume_jobs(
        self, queue: JobQueue, handler: JobHandler, *, prefetch: int
    ) -> JobConsumer:
        """Manual-ack consumer of a job queue; up to ``prefetch`` handlers run at once."""
        return await self._consume_jobs_from(JOB_QUEUE_NAMES[queue], handler, prefetch)

    async def consume_dead_letters(
        self, queue: JobQueue, handler: JobHandler, *, prefetch: int = 10
    ) -> JobConsumer:
        """Consumer of ``<queue>.dead``; ``reject`` there drops the message for good."""
        return await self._consume_jobs_from(dead_queue_name(queue), handler, prefetch)

    async def _consume_jobs_from(
        self, queue: str, handler: JobHandler, prefetch: int
    ) -> JobConsumer:
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1 (0 would mean unlimited)")
        consumer = JobConsumer(
            queue, self._tag(queue), self._hooks, handler=handler, prefetch=prefetch
        )
        await self._add_consumer(consumer)
        return consumer

    # events

    async def publish_event(self, routing_key: str, body: bytes) -> None:
        """Transient, no confirm, sent on the loop's next pass with whatever else gathered
        (``app.bus.amqp_outbox``); dropped (and counted in one log line) while disconnected."""
        channel = self._fast
        if channel is None or channel.is_closed:
            self._drop(routing_key, "not connected")
            return
        await self._outbox.put(routing_key, body)

    @property
    def events_sent(self) -> tuple[int, int]:
        """(events, AMQP messages) handed to the broker so far: their ratio is the batching."""
        return self._outbox.events_sent, self._outbox.messages_sent

    async def _send_events(self, routing_key: str, body: bytes, count: int) -> None:
        channel = self._fast
        if channel is None or channel.is_closed:
            self._drop(routing_key, "not connected", count)
            return
        try:
            await channel.basic_publish(
                body,
                exchange=EVENTS_EXCHANGE,
                routing_key=routing_key,
                properties=self._transient,
                timeout=self._publish_timeout,
            )
        except asyncio.CancelledError:
            raise_if_cancelled()
            self._drop(routing_key, "channel closed", count)
        except BROKER_ERRORS as exc:
            self._drop(routing_key, repr(exc), count)

    async def _on_event_message(self, routing_key: str, body: bytes) -> None:
        """One delivery from the node's queue: an event, or a batch to route here."""
        handler = self._event_handler
        if handler is None:
            return
        if routing_key != BATCH_ROUTING_KEY:
            await handler(routing_key, body)
            return
        matches = self._counts.matches
        try:
            for key, event in decode_batch(body):
                if not matches(key):
                    continue
                try:
                    await handler(key, event)
                except Exception:
                    log.exception("event handler failed for %s", key)
        except MalformedBatch as exc:
            log.warning("dropping the rest of an event batch: %s", exc)

    async def consume_events(self, handler: EventHandler) -> EventConsumer:
        """This node's event feed, handled in arrival order. One per bus."""
        if self._events is not None:
            raise RuntimeError(f"node {self.node_id} already consumes its event queue")
        consumer = EventConsumer(
            self._event_queue, self._tag("events"), self._hooks, handler=self._on_event_message
        )
        self._event_handler = handler
        self._events = consumer
        self._pending.add(BATCH_ROUTING_KEY)
        await self._add_consumer(consumer)
        return consumer

    async def bind(self, pattern: str) -> None:
        """Count one holder; the first binds the node's queue (now, or after a reconnect)."""
        if not pattern or len(pattern.encode()) > _MAX_KEY_BYTES:
            raise ValueError(f"not a binding pattern: {pattern[:40]!r}")
        if self._counts.add(pattern):
            self._pending.add(pattern)
            await self._flush_bindings()

    async def unbind(self, pattern: str) -> None:
        """Count one holder less; the last unbinds (now, or never restored after a reconnect)."""
        if self._counts.remove(pattern):
            self._pending.add(pattern)
            await self._flush_bindings()

    def bound_patterns(self) -> set[str]:
        """The patterns with holders (what the queue is, or will be, bound to)."""
        return self._counts.patterns()

    # control

    async def publish_control(self, body: bytes) -> None:
        """Transient fanout to every control consumer; dropped while disconnected."""
        channel = self._fast
        if channel is None or channel.is_closed:
            self._drop("control", "not connected")
            return
        try:
            await channel.basic_publish(
                body,
                exchange=CONTROL_EXCHANGE,
                routing_key="",
                properties=self._transient,
                timeout=self._publish_timeout,
            )
        except asyncio.CancelledError:
            raise_if_cancelled()
            self._drop("control", "channel closed")
        except BROKER_ERRORS as exc:
            self._drop("control", repr(exc))

    async def consume_control(self, handler: ControlHandler) -> ControlConsumer:
        """Every command on the fanout, through an exclusive queue of this consumer's own."""
        n = next(self._seq)
        queue = control_queue_name(self.node_id, n)

        async def declare(channel: aiormq.Channel, rpc_timeout: float) -> None:
            await channel.queue_declare(
                queue, exclusive=True, auto_delete=True, timeout=rpc_timeout
            )
            await channel.queue_bind(queue, CONTROL_EXCHANGE, routing_key="", timeout=rpc_timeout)

        consumer = ControlConsumer(
            queue, self._tag(f"control.{n}"), self._hooks, handler=handler, prepare=declare
        )
        await self._add_consumer(consumer)
        return consumer

    # publishing

    async def _publish_confirmed(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        *,
        what: str,
    ) -> None:
        """Publish persistently and wait for the confirm, through a reconnect if one is quick.

        A lost connection after the frame left may mean the broker has the message anyway:
        retrying can duplicate a job, which the workers tolerate; losing one they do not.
        """
        if self._closing or self._connection is None:
            raise ServiceUnavailable("the message bus is not running")
        try:
            async with asyncio.timeout(self._publish_timeout):
                while True:
                    await self._ready.wait()
                    channel = self._publisher
                    if channel is None or channel.is_closed:
                        self._not_ready()
                        continue
                    try:
                        await channel.basic_publish(
                            body,
                            exchange=exchange,
                            routing_key=routing_key,
                            properties=properties,
                            mandatory=True,
                        )
                        return
                    except aiormq.PublishError as exc:
                        self._topology_declared = False
                        self._not_ready()
                        raise ServiceUnavailable(f"the {what} could not be routed") from exc
                    except aiormq.DeliveryError as exc:
                        raise ServiceUnavailable(f"RabbitMQ refused the {what}") from exc
                    except aiormq.ChannelNotFoundEntity:
                        self._topology_declared = False  # someone deleted the exchange
                        self._not_ready()
                    except asyncio.CancelledError:
                        raise_if_cancelled()
                        self._not_ready()
                    except BROKER_ERRORS as exc:
                        log.info("publishing a %s failed (%r); waiting for the broker", what, exc)
                        self._not_ready()
        except TimeoutError as exc:
            raise ServiceUnavailable(
                f"RabbitMQ did not take the {what} within {self._publish_timeout:g} s"
            ) from exc

    def _drop(self, routing_key: str, why: str, count: int = 1) -> None:
        if not self._dropped:
            log.warning("dropping transient messages (first: %s): %s", routing_key, why)
        self._dropped += count

    # bindings

    async def _flush_bindings(self) -> None:
        """Apply the pending patterns now if connected; otherwise the supervisor will."""
        if not self._ready.is_set():
            self._request_reconcile()
            return
        try:
            async with self._bind_lock:
                channel = self._admin
                if channel is None or channel.is_closed:
                    raise aiormq.ChannelInvalidStateError("the admin channel is closed")
                await self._declare_event_queue(channel)
                await self._apply_pending(channel)
        except asyncio.CancelledError:
            raise_if_cancelled()
            self._request_reconcile()
        except BROKER_ERRORS as exc:
            log.warning("binding the event queue failed (%r); retrying after reconnect", exc)
            self._request_reconcile()

    async def _declare_event_queue(self, channel: aiormq.Channel) -> None:
        if self._event_queue_declared:
            return
        await channel.queue_declare(
            self._event_queue, exclusive=True, auto_delete=True, timeout=self._op_timeout
        )
        self._event_queue_declared = True
        self._bound.clear()
        self._pending |= self._counts.patterns()
        if self._events is not None:
            self._pending.add(BATCH_ROUTING_KEY)

    def _wants_batches(self, pattern: str) -> bool:
        """The batch key is bound while this node consumes its events, never counted."""
        return pattern == BATCH_ROUTING_KEY and self._events is not None

    async def _apply_pending(self, channel: aiormq.Channel) -> None:
        """Make the broker's bindings match the counts for every pending pattern.

        One pattern at a time, re-read after each call: a bind and an unbind of the same
        pattern racing each other end with the broker in the state the counts say.
        """
        while self._pending:
            pattern = self._pending.pop()
            try:
                if pattern in self._counts or self._wants_batches(pattern):
                    if pattern not in self._bound:
                        await channel.queue_bind(
                            self._event_queue,
                            EVENTS_EXCHANGE,
                            routing_key=pattern,
                            timeout=self._op_timeout,
                        )
                        self._bound.add(pattern)
                elif pattern in self._bound:
                    await channel.queue_unbind(
                        self._event_queue,
                        EVENTS_EXCHANGE,
                        routing_key=pattern,
                        timeout=self._op_timeout,
                    )
                    self._bound.discard(pattern)
            except BaseException:
                self._pending.add(pattern)
                raise

    # consumers

    def _tag(self, what: str) -> str:
        return f"insighthub.{self.node_id}.{what}.{next(self._seq)}"

    async def _add_consumer(self, consumer: ManagedConsumer) -> None:
        """Register (so reconnects restore it) and start it now if the broker is there."""
        if self._closing:
            raise ServiceUnavailable("the message bus is closed")
        self._consumers[consumer.tag] = consumer
        try:
            await self._reconcile()
        except asyncio.CancelledError:
            raise_if_cancelled()
            self._request_reconcile()
        except BROKER_ERRORS as exc:
            log.warning("starting consumer %s failed (%r); retrying", consumer.tag, exc)
            self._request_reconcile()

    async def _forget(self, consumer: ManagedConsumer) -> None:
        self._consumers.pop(consumer.tag, None)
        if isinstance(consumer, JobConsumer) and consumer.in_flight:
            self._draining.add(consumer)
            task = asyncio.create_task(self._drained(consumer))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        if consumer is self._events:
            self._events = None
            # The queue is auto-delete: its last consumer has just left, taking the bindings.
            async with self._bind_lock:
                self._event_queue_declared = False
                self._bound.clear()
            if self._counts.patterns():
                self._request_reconcile()

    async def _drained(self, consumer: JobConsumer) -> None:
        await consumer.wait_idle()
        self._draining.discard(consumer)

    # supervision

    def _request_reconcile(self) -> None:
        if not self._closing:
            self._dirty.set()

    def _not_ready(self) -> None:
        self._ready.clear()
        self._request_reconcile()

    def _on_connection_lost(
        self, _: AbstractConnection | None, exc: BaseException | None = None
    ) -> None:
        # aio-pika calls this for every failed reconnect attempt too: log the loss once.
        was_ready = self._ready.is_set()
        self._ready.clear()
        if not self._closing and was_ready:
            log.warning("lost the RabbitMQ connection (%r); reconnecting", exc)
            self._dirty.set()

    def _on_reconnected(self, _: AbstractRobustConnection | None) -> None:
        log.info("RabbitMQ connection is back; restoring the bus")
        self._request_reconcile()

    def _current_connection(self) -> aiormq.abc.AbstractConnection | None:
        connection = self._connection
        if connection is None or connection.is_closed or connection.transport is None:
            return None
        raw = connection.transport.connection
        return None if raw.is_closed else raw

    def _needs_reconcile(self) -> bool:
        """A cheap local look for drift, in case a callback was missed."""
        raw = self._current_connection()
        if raw is None:
            return False  # the reconnect callback will wake the supervisor
        if raw is not self._raw or self._pending or not self._topology_declared:
            return True
        if not self._event_queue_declared and (self._events is not None or self._counts.patterns()):
            return True
        if any(c is None or c.is_closed for c in (self._admin, self._publisher, self._fast)):
            return True
        return any(not c.is_live(raw) for c in self._consumers.values())

    async def _supervise(self) -> None:
        delay = _BACKOFF_MIN_S
        while not self._closing:
            try:
                async with asyncio.timeout(self._health_interval):
                    await self._dirty.wait()
            except TimeoutError:
                if not self._needs_reconcile():
                    continue
            self._dirty.clear()
            try:
                await self._reconcile()
                delay = _BACKOFF_MIN_S
            except asyncio.CancelledError:
                raise_if_cancelled()
                self._dirty.set()
            except BROKER_ERRORS as exc:
                log.warning("restoring the bus failed (%r); retrying in %.2g s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX_S)
                self._dirty.set()

    async def _open_channel(
        self, raw: aiormq.abc.AbstractConnection, *, confirms: bool
    ) -> aiormq.Channel:
        channel = await raw.channel(publisher_confirms=confirms, timeout=self._op_timeout)
        channel.closing.add_done_callback(lambda _: self._request_reconcile())
        return channel  # type: ignore[return-value]  # aiormq returns its concrete Channel

    async def _reconcile(self) -> None:
        """Bring the broker to what the bus wants; idempotent, cheap when nothing drifted."""
        async with self._reconcile_lock:
            raw = self._current_connection()
            if raw is None:
                self._ready.clear()
                return
            if raw is not self._raw:
                self._raw = raw
                self._admin = self._publisher = self._fast = None
                self._topology_declared = False
                self._event_queue_declared = False
                self._bound.clear()

            if self._admin is None or self._admin.is_closed:
                self._admin = await self._open_channel(raw, confirms=False)
            if not self._topology_declared:
                await declare_topology(
                    self._admin, delivery_limit=self._delivery_limit, rpc_timeout=self._op_timeout
                )
                self._topology_declared = True
            if self._publisher is None or self._publisher.is_closed:
                self._publisher = await self._open_channel(raw, confirms=True)
            if self._fast is None or self._fast.is_closed:
                self._fast = await self._open_channel(raw, confirms=False)
            if not self._ready.is_set():
                self._ready.set()
                self._recovered = self._was_ready
                self._was_ready = True
                if self._dropped:
                    log.warning("dropped %d transient messages while disconnected", self._dropped)
                    self._dropped = 0

            if self._events is not None or self._counts.patterns():
                async with self._bind_lock:
                    await self._declare_event_queue(self._admin)
                    await self._apply_pending(self._admin)

            failed: BaseException | None = None
            for consumer in tuple(self._consumers.values()):
                try:
                    await consumer.ensure(raw)
                except BROKER_ERRORS as exc:
                    failed = failed or exc
            if failed is not None:
                raise failed
            if self._recovered:
                # Everything is restored: events published meanwhile are gone, so the
                # listeners (the relay) catch their clients up from the database.
                self._recovered = False
                for listener in self.recovery_listeners:
                    task = asyncio.create_task(listener())
                    self._listener_tasks.add(task)
                    task.add_done_callback(self._listener_tasks.discard)
