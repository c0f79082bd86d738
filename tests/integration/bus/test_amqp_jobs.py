"""Jobs over the real broker: ack, requeue, reject, the delivery limit, dead letters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aiormq
import pydantic
import pytest

from app.bus.amqp_topology import dead_queue_name
from app.bus.base import JOB_QUEUE_NAMES, JOB_QUEUES, PARKED_QUEUE, JobDelivery
from app.bus.messages import ChatJob
from tests.integration.bus.conftest import (
    BusFactory,
    consumer_tags,
    eventually,
    queue_state,
)

pytestmark = pytest.mark.rabbitmq

LIMIT = 2  # every bus of this module declares the queues with the same delivery limit


@pytest.fixture(autouse=True)
async def _empty_queues(amqp_url: str) -> AsyncIterator[None]:
    """Tests share the module's vhost: leave no job behind for the next one."""
    yield
    connection = await aiormq.connect(amqp_url)
    try:
        channel = await connection.channel()
        for queue in JOB_QUEUES:
            for name in (JOB_QUEUE_NAMES[queue], dead_queue_name(queue)):
                await channel.queue_purge(name)
        await channel.queue_purge(PARKED_QUEUE)
    finally:
        await connection.close()


def chat_job() -> bytes:
    return ChatJob(message_id=uuid.uuid4(), session_id=uuid.uuid4()).dumps()


async def test_job_is_consumed_and_acked_once(
    make_bus: BusFactory, amqp_url: str, amqp_vhost: str
) -> None:
    bus = await make_bus(delivery_limit=LIMIT)
    seen: list[tuple[bytes, bool]] = []

    async def handle(delivery: JobDelivery) -> None:
        seen.append((delivery.body, delivery.redelivered))
        await delivery.ack()

    subscription = await bus.consume_jobs("chat", handle, prefetch=4)
    body = chat_job()
    await bus.publish_job("chat", body)
    await eventually(lambda: seen, what="the job")
    await asyncio.sleep(0.2)  # time for a wrong second delivery to show up
    assert seen == [(body, False)]
    assert await queue_state(amqp_url, "chat.requests") == (0, 1)  # acked, one consumer
    assert (await consumer_tags(amqp_vhost))["chat.requests"] == [subscription.tag]


async def test_requeue_redelivers(make_bus: BusFactory) -> None:
    bus = await make_bus(delivery_limit=LIMIT)
    seen: list[bool] = []

    async def handle(delivery: JobDelivery) -> None:
        seen.append(delivery.redelivered)
        if len(seen) == 1:
            await delivery.requeue()
        else:
            await delivery.ack()

    await bus.consume_jobs("documents", handle, prefetch=1)
    await bus.publish_job("documents", b'{"v":1}')
    await eventually(lambda: len(seen) == 2, what="the redelivery")
    await asyncio.sleep(0.2)
    assert seen == [False, True]


async def test_reject_dead_letters(make_bus: BusFactory) -> None:
    bus = await make_bus(delivery_limit=LIMIT)
    seen: list[bytes] = []
    dead: list[bytes] = []

    async def handle(delivery: JobDelivery) -> None:
        seen.append(delivery.body)
        await delivery.reject()

    async def handle_dead(delivery: JobDelivery) -> None:
        dead.append(delivery.body)
        await delivery.ack()

    await bus.consume_jobs("chat", handle, prefetch=1)
    await bus.consume_dead_letters("chat", handle_dead)
    body = chat_job()
    await bus.publish_job("chat", body)
    await eventually(lambda: dead, what="the dead letter")
    assert seen == [body]  # rejected means never retried
    assert dead == [body]


async def test_running_out_of_deliveries_dead_letters(make_bus: BusFactory, amqp_url: str) -> None:
    bus = await make_bus(delivery_limit=LIMIT)
    deliveries = 0
    dead: list[bytes] = []

    async def handle(delivery: JobDelivery) -> None:
        nonlocal deliveries
        deliveries += 1
        await delivery.requeue()  # a worker that never manages to finish it

    async def handle_dead(delivery: JobDelivery) -> None:
        dead.append(delivery.body)
        await delivery.ack()

    await bus.consume_jobs("workspaces", handle, prefetch=1)
    await bus.consume_dead_letters("workspaces", handle_dead)
    body = b'{"v":1,"workspace_id":"x"}'
    await bus.publish_job("workspaces", body)
    await eventually(lambda: dead, what="the dead letter")
    await asyncio.sleep(0.2)
    assert dead == [body]
    # RabbitMQ 3.10 counts every return against x-delivery-limit and dead-letters the
    # message when the count exceeds the limit: the handler sees it limit + 1 times.
    assert deliveries == LIMIT + 1
    assert await queue_state(amqp_url, "workspace.jobs") == (0, 1)


async def test_malformed_body_is_dead_lettered_parked_and_the_next_job_served(
    make_bus: BusFactory, amqp_url: str
) -> None:
    bus = await make_bus(delivery_limit=LIMIT)
    served: list[ChatJob] = []
    rejected: list[bytes] = []
    parked: list[bytes] = []

    async def handle(delivery: JobDelivery) -> None:
        try:
            job = ChatJob.model_validate_json(delivery.body)
        except pydantic.ValidationError:
            rejected.append(delivery.body)
            await delivery.reject()
            return
        served.append(job)
        await delivery.ack()

    async def handle_dead(delivery: JobDelivery) -> None:
        try:
            ChatJob.model_validate_json(delivery.body)
        except pydantic.ValidationError:
            await bus.park(delivery.body, "does not parse as a chat job")
            parked.append(delivery.body)
        await delivery.ack()

    await bus.consume_jobs("chat", handle, prefetch=1)
    await bus.consume_dead_letters("chat", handle_dead)
    await bus.publish_job("chat", b"not json {")
    good = ChatJob(message_id=uuid.uuid4(), session_id=uuid.uuid4())
    await bus.publish_job("chat", good.dumps())
    await eventually(lambda: served and parked, what="the good job and the parked one")
    assert rejected == [b"not json {"]
    assert served == [good]
    assert parked == [b"not json {"]
    assert await queue_state(amqp_url, PARKED_QUEUE) == (1, 0)
    assert await queue_state(amqp_url, "chat.requests.dead") == (0, 1)


async def test_a_failing_handler_requeues_and_the_consumer_lives_on(make_bus: BusFactory) -> None:
    bus = await make_bus(delivery_limit=LIMIT)
    attempts: list[bytes] = []
    done: list[bytes] = []

    async def handle(delivery: JobDelivery) -> None:
        attempts.append(delivery.body)
        if delivery.body == b"1" and not delivery.redelivered:
            raise RuntimeError("the handler broke")
        await delivery.ack()
        done.append(delivery.body)

    await bus.consume_jobs("documents", handle, prefetch=1)
    await bus.publish_job("documents", b"1")
    await bus.publish_job("documents", b"2")
    await eventually(lambda: len(done) == 2, what="both jobs")
    assert sorted(done) == [b"1", b"2"]
    assert attempts.count(b"1") == 2


async def test_a_handler_that_forgets_to_settle_gets_the_job_back(make_bus: BusFactory) -> None:
    bus = await make_bus(delivery_limit=LIMIT)
    seen: list[bool] = []

    async def handle(delivery: JobDelivery) -> None:
        seen.append(delivery.redelivered)
        if delivery.redelivered:
            await delivery.ack()

    await bus.consume_jobs("documents", handle, prefetch=1)
    await bus.publish_job("documents", b"forgotten")
    await eventually(lambda: len(seen) == 2, what="the redelivery")
    assert seen == [False, True]


async def test_settling_twice_is_ignored_and_the_channel_survives(make_bus: BusFactory) -> None:
    bus = await make_bus(delivery_limit=LIMIT)
    done: list[bytes] = []

    async def handle(delivery: JobDelivery) -> None:
        await delivery.ack()
        await delivery.ack()  # a second ack of the tag would close the channel
        await delivery.reject()
        done.append(delivery.body)

    await bus.consume_jobs("chat", handle, prefetch=1)
    await bus.publish_job("chat", b"a")
    await bus.publish_job("chat", b"b")
    await eventually(lambda: len(done) == 2, what="both jobs")
    await asyncio.sleep(0.2)
    assert done == [b"a", b"b"]


async def test_prefetch_bounds_concurrent_handlers(make_bus: BusFactory) -> None:
    bus = await make_bus(delivery_limit=LIMIT)
    release = asyncio.Event()
    running = 0
    peak = 0
    done = 0

    async def handle(delivery: JobDelivery) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        await delivery.ack()
        done += 1

    await bus.consume_jobs("workspaces", handle, prefetch=2)
    for n in range(5):
        await bus.publish_job("workspaces", str(n).encode())
    await eventually(lambda: running == 2, what="two handlers running")
    await asyncio.sleep(0.2)
    assert running == 2  # not more, although five jobs wait
    release.set()
    await eventually(lambda: done == 5, what="all five jobs")
    assert peak == 2


async def test_cancel_stops_deliveries_but_running_handlers_finish(
    make_bus: BusFactory, amqp_url: str
) -> None:
    bus = await make_bus(delivery_limit=LIMIT)
    release = asyncio.Event()
    started: list[bytes] = []
    acked: list[bytes] = []

    async def handle(delivery: JobDelivery) -> None:
        started.append(delivery.body)
        await release.wait()
        await delivery.ack()
        acked.append(delivery.body)

    subscription = await bus.consume_jobs("chat", handle, prefetch=1)
    await bus.publish_job("chat", b"running")
    await eventually(lambda: started, what="the first job")
    await subscription.cancel()
    await bus.publish_job("chat", b"after cancel")
    assert subscription.in_flight == 1
    release.set()
    await asyncio.wait_for(subscription.wait_idle(), 5)
    assert acked == [b"running"]  # its channel stayed open for the ack
    await asyncio.sleep(0.2)
    assert started == [b"running"]
    assert await queue_state(amqp_url, "chat.requests") == (1, 0)  # waiting, nobody consumes


async def test_prefetch_must_be_positive(make_bus: BusFactory) -> None:
    bus = await make_bus(delivery_limit=LIMIT)

    async def handle(delivery: JobDelivery) -> None:
        await delivery.ack()

    with pytest.raises(ValueError):
        await bus.consume_jobs("chat", handle, prefetch=0)


async def test_another_delivery_limit_on_existing_queues_fails_start(
    make_bus: BusFactory,
) -> None:
    await make_bus(delivery_limit=LIMIT)
    from app.errors import ServiceUnavailable

    with pytest.raises(ServiceUnavailable, match="setup failed"):
        await make_bus(delivery_limit=LIMIT + 1)
