"""Broker consumers the AMQP bus owns and restarts itself.

aio-pika's robust connection can restore consumers, but it has had bugs doing so (lost or
duplicated consumers after a broker restart). So each consumer here sits on its own raw
aiormq channel that aio-pika knows nothing about, and the bus's supervisor calls
``ensure`` after every reconnect: a consumer that is live on the current connection is left
alone, anything else gets a fresh channel and one ``basic.consume``. That check is what
keeps a consumer from ever being duplicated.

Job handlers run in tasks of their own (up to ``prefetch`` at a time, the broker enforces
it), not in the channel's tasks: aiormq cancels its tasks when a channel closes, and a
broker blip must not cancel a chat turn half way. Event and control handlers run one at a
time in arrival order (a chunk must not overtake the previous one).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, cast

import aiormq
import aiormq.abc
from aiormq.abc import DeliveredMessage

from app.bus.base import ControlHandler, EventHandler, JobHandler

log = logging.getLogger(__name__)

# What a broker that is away or unhappy raises: AMQP errors, socket errors, aiormq's
# "closed" RuntimeErrors (ChannelInvalidStateError is one) and RPC timeouts.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    aiormq.AMQPError,
    ConnectionError,
    OSError,
    RuntimeError,
    TimeoutError,
)

Prepare = Callable[[aiormq.Channel, float], Awaitable[None]]
Outcome = Literal["ack", "requeue", "reject"]


def raise_if_cancelled() -> None:
    """Re-raise a CancelledError only when this task itself is being cancelled.

    aiormq rejects a closing channel's pending futures with CancelledError; to the task
    awaiting them that is a lost connection, not a request to stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class AmqpJobDelivery:
    """One job delivery; settling it a second time is logged and ignored.

    A second ack of the same delivery tag would make the broker close the channel, and
    with it every other job in flight on it.
    """

    __slots__ = ("_message", "_settled", "_tag", "_timeout")

    def __init__(self, message: DeliveredMessage, *, timeout: float) -> None:
        tag = message.delivery_tag
        if tag is None:
            raise ValueError("a delivery without a delivery tag")
        self._message = message
        self._tag = tag
        self._timeout = timeout
        self._settled = False

    @property
    def body(self) -> bytes:
        return self._message.body

    @property
    def redelivered(self) -> bool:
        return bool(self._message.redelivered)

    @property
    def settled(self) -> bool:
        return self._settled

    @property
    def channel_open(self) -> bool:
        return not self._message.channel.is_closed

    async def ack(self) -> None:
        await self._settle("ack")

    async def requeue(self) -> None:
        await self._settle("requeue")

    async def reject(self) -> None:
        await self._settle("reject")

    async def _settle(self, outcome: Outcome) -> None:
        if self._settled:
            log.warning("job delivery %s settled twice (%s ignored)", self._tag, outcome)
            return
        self._settled = True
        channel = self._message.channel
        try:
            async with asyncio.timeout(self._timeout):
                if outcome == "ack":
                    await channel.basic_ack(self._tag)
                elif outcome == "requeue":
                    await channel.basic_nack(self._tag, requeue=True)
                else:
                    await channel.basic_reject(self._tag, requeue=False)
        except asyncio.CancelledError:
            raise_if_cancelled()
            self._lost(outcome, "channel closed")
        except BROKER_ERRORS as exc:
            self._lost(outcome, repr(exc))

    def _lost(self, outcome: Outcome, why: str) -> None:
        # The channel is gone, so the broker has already put the job back.
        log.warning(
            "could not %s job delivery %s (%s): it will be redelivered", outcome, self._tag, why
        )


@dataclass(frozen=True, slots=True)
class ConsumerHooks:
    """What a consumer needs from its bus."""

    timeout: float  # per broker call
    on_lost: Callable[[], None]  # the channel or the consumer is gone: reconcile soon
    on_cancel: Callable[[ManagedConsumer], Awaitable[None]]  # forget it, never restore it


class ManagedConsumer:
    """One ``basic.consume`` on a channel of its own; the bus (re)starts it with ``ensure``."""

    def __init__(
        self,
        queue: str,
        tag: str,
        hooks: ConsumerHooks,
        *,
        no_ack: bool,
        prefetch: int | None = None,
        prepare: Prepare | None = None,
    ) -> None:
        self.queue = queue
        self.tag = tag
        self._no_ack = no_ack
        self._prefetch = prefetch
        self._timeout = hooks.timeout
        self._on_lost = hooks.on_lost
        self._on_cancel = hooks.on_cancel
        self._prepare = prepare
        self._channel: aiormq.Channel | None = None
        self._lock = asyncio.Lock()
        self._closer: asyncio.Task[None] | None = None
        self.cancelled = False

    def is_live(self, connection: aiormq.abc.AbstractConnection | None = None) -> bool:
        channel = self._channel
        return (
            channel is not None
            and not channel.is_closed
            and (connection is None or channel.connection is connection)
            and self.tag in channel.consumers
        )

    async def ensure(self, connection: aiormq.abc.AbstractConnection) -> None:
        """Consume on ``connection`` unless already doing so: idempotent, never duplicates."""
        async with self._lock:
            if self.cancelled or self.is_live(connection):
                return
            channel = self._channel
            if channel is None or channel.is_closed or channel.connection is not connection:
                channel = cast(
                    aiormq.Channel,
                    await connection.channel(publisher_confirms=False, timeout=self._timeout),
                )
                self._channel = channel
                channel.closing.add_done_callback(self._channel_closed)
                channel.on_consumer_cancel_callbacks.add(self._broker_cancelled)
                if self._prefetch:
                    await channel.basic_qos(prefetch_count=self._prefetch, timeout=self._timeout)
            try:
                if self._prepare is not None:
                    await self._prepare(channel, self._timeout)
                await channel.basic_consume(
                    self.queue,
                    self._on_message,
                    no_ack=self._no_ack,
                    consumer_tag=self.tag,
                    timeout=self._timeout,
                )
            except BaseException:
                # aiormq registers the tag before the broker answers, so a failed consume
                # would look live. (A broker error or an RPC timeout also closes the channel,
                # so no consumer the bus does not know of is left on the broker.)
                channel.consumers.pop(self.tag, None)
                raise
        log.info("consuming %s as %s", self.queue, self.tag)

    async def cancel(self) -> None:
        """Stop consuming; the bus forgets this consumer so no reconnect brings it back."""
        if self.cancelled:
            return
        self.cancelled = True
        async with self._lock:
            channel = self._channel
            if channel is not None and not channel.is_closed and self.tag in channel.consumers:
                try:
                    await channel.basic_cancel(self.tag, timeout=self._timeout)
                except asyncio.CancelledError:
                    raise_if_cancelled()
                except BROKER_ERRORS as exc:
                    log.warning("cancelling consumer %s failed: %r", self.tag, exc)
        await self._on_cancel(self)
        self._after_cancel()

    async def shutdown(self) -> None:
        """The bus is closing: stop local work (the connection closes the channel)."""
        self.cancelled = True

    async def _close_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None and not channel.is_closed:
            try:
                await channel.close()
            except BROKER_ERRORS as exc:
                log.debug("closing the channel of %s failed: %r", self.tag, exc)

    def _after_cancel(self) -> None:
        raise NotImplementedError

    async def _on_message(self, message: DeliveredMessage) -> None:
        raise NotImplementedError

    def _channel_closed(self, _: asyncio.Future[object]) -> None:
        if not self.cancelled:
            self._on_lost()

    def _broker_cancelled(self, frame: aiormq.spec.Basic.Cancel) -> None:
        if frame.consumer_tag == self.tag and not self.cancelled:
            log.warning("the broker cancelled consumer %s on %s", self.tag, self.queue)
            self._on_lost()


class JobConsumer(ManagedConsumer):
    """Manual-ack job consumer: a task per delivery, requeue when the handler fails."""

    def __init__(
        self, queue: str, tag: str, hooks: ConsumerHooks, *, handler: JobHandler, prefetch: int
    ) -> None:
        super().__init__(queue, tag, hooks, no_ack=False, prefetch=prefetch)
        self._handler = handler
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        """Handlers still running (they keep running after ``cancel``)."""
        return len(self._tasks)

    async def wait_idle(self) -> None:
        """Until every handler handed a delivery has returned."""
        await self._idle.wait()

    async def _on_message(self, message: DeliveredMessage) -> None:
        delivery = AmqpJobDelivery(message, timeout=self._timeout)
        task = asyncio.create_task(self._run(delivery), name=f"job:{self.queue}")
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()

    async def _run(self, delivery: AmqpJobDelivery) -> None:
        if not delivery.channel_open:
            return  # its channel closed before it started: the broker has requeued it
        try:
            await self._handler(delivery)
        except Exception:
            log.exception("job handler failed on %s; requeueing the job", self.queue)
            if not delivery.settled:
                await delivery.requeue()
            return
        if not delivery.settled:
            log.warning("job handler on %s returned without settling; requeueing", self.queue)
            await delivery.requeue()

    def _after_cancel(self) -> None:
        # Closing the channel now would requeue the jobs still being handled.
        self._closer = asyncio.create_task(self._close_when_idle(), name=f"close:{self.tag}")

    async def _close_when_idle(self) -> None:
        await asyncio.sleep(0)  # deliveries read before CancelOk start their tasks first
        await self._idle.wait()
        await self._close_channel()

    async def shutdown(self) -> None:
        await super().shutdown()
        tasks = [*self._tasks, *([self._closer] if self._closer else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _OrderedConsumer(ManagedConsumer):
    """No-ack consumer whose handler sees messages one at a time, in arrival order.

    aiormq runs every delivery in a task of its own; those start in arrival order, so the
    callback only appends to an inbox and one dispatcher task awaits the handler.
    """

    def __init__(
        self, queue: str, tag: str, hooks: ConsumerHooks, *, prepare: Prepare | None = None
    ) -> None:
        super().__init__(queue, tag, hooks, no_ack=True, prepare=prepare)
        self._inbox: asyncio.Queue[DeliveredMessage] = asyncio.Queue()
        self._dispatcher = asyncio.create_task(self._dispatch(), name=f"dispatch:{self.tag}")

    async def _on_message(self, message: DeliveredMessage) -> None:
        self._inbox.put_nowait(message)

    async def _dispatch(self) -> None:
        inbox = self._inbox
        while True:
            message = await inbox.get()
            try:
                await self._handle(message)
            except Exception:
                log.exception("handler failed on %s", self.queue)

    async def _handle(self, message: DeliveredMessage) -> None:
        raise NotImplementedError

    def _after_cancel(self) -> None:
        self._dispatcher.cancel()
        self._closer = asyncio.create_task(self._close_channel(), name=f"close:{self.tag}")

    async def shutdown(self) -> None:
        await super().shutdown()
        self._dispatcher.cancel()
        await asyncio.gather(self._dispatcher, return_exceptions=True)
        if self._closer is not None:
            await asyncio.gather(self._closer, return_exceptions=True)


class EventConsumer(_OrderedConsumer):
    def __init__(
        self, queue: str, tag: str, hooks: ConsumerHooks, *, handler: EventHandler
    ) -> None:
        super().__init__(queue, tag, hooks)
        self._handler = handler

    async def _handle(self, message: DeliveredMessage) -> None:
        await self._handler(message.routing_key or "", message.body)


class ControlConsumer(_OrderedConsumer):
    def __init__(
        self,
        queue: str,
        tag: str,
        hooks: ConsumerHooks,
        *,
        handler: ControlHandler,
        prepare: Prepare,
    ) -> None:
        super().__init__(queue, tag, hooks, prepare=prepare)
        self._handler = handler

    async def _handle(self, message: DeliveredMessage) -> None:
        await self._handler(message.body)
