"""A broker restart (``rabbitmqctl stop_app`` / ``start_app``) while the nodes are idle.

One test, one outage (it stops the whole broker for a few seconds; ``broker_stopped``
always starts it again): what must not hang while the broker is away, and what must come
back, exactly once, when it returns.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from app.bus.amqp_outbox import BATCH_ROUTING_KEY
from app.bus.amqp_topology import event_queue_name
from app.bus.base import JobDelivery
from app.errors import ServiceUnavailable
from tests.integration.bus.conftest import (
    BusFactory,
    broker_stopped,
    consumer_tags,
    event_bindings,
    eventually,
    wait_for_queues,
)
from tests.integration.bus.test_amqp_events import SENTINEL, feed_of

pytestmark = pytest.mark.rabbitmq


async def test_a_broker_restart(make_bus: BusFactory, amqp_url: str, amqp_vhost: str) -> None:
    worker, api = await make_bus(publish_timeout_s=2.0), await make_bus(publish_timeout_s=2.0)
    leaving = await make_bus(publish_timeout_s=2.0)
    jobs: list[bytes] = []
    dead: list[bytes] = []
    documents: list[bytes] = []
    control: list[bytes] = []

    async def handle_job(delivery: JobDelivery) -> None:
        jobs.append(delivery.body)
        if delivery.body == b"bad":
            await delivery.reject()
        else:
            await delivery.ack()

    async def handle_dead(delivery: JobDelivery) -> None:
        dead.append(delivery.body)
        await delivery.ack()

    async def handle_document(delivery: JobDelivery) -> None:
        documents.append(delivery.body)
        await delivery.ack()

    async def handle_control(body: bytes) -> None:
        control.append(body)

    chat = await worker.consume_jobs("chat", handle_job, prefetch=2)
    chat_dead = await worker.consume_dead_letters("chat", handle_dead)
    commands = await worker.consume_control(handle_control)
    feed = await feed_of(api)
    await api.bind("chat.kept.*")
    await api.bind("chat.dropped.*")
    event_queue = event_queue_name(api.node_id)

    async with broker_stopped(amqp_url):
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable, match="within 2 s"):
            await api.publish_job("workspaces", b'{"v":1}')
        assert time.monotonic() - started < 2.0 + 2.0

        started = time.monotonic()
        await worker.publish_event("chat.kept.chunk", b"lost")  # transient: dropped quietly
        await api.publish_control(b"lost")
        assert time.monotonic() - started < 1.0
        assert not await api.ping()
        assert not api.ready and not worker.ready

        started = time.monotonic()
        await leaving.close()  # shutting down during an outage does not wait for the broker
        assert time.monotonic() - started < 2.0

        await api.bind("chat.added.*")  # made while away: must not be forgotten
        await api.unbind("chat.dropped.*")  # made while away: must not come back
        # a consumer started while away starts when the broker is back
        docs = await worker.consume_jobs("documents", handle_document, prefetch=1)

    await eventually(lambda: api.ready and worker.ready, within_s=30, what="the reconnect")
    assert await api.ping()
    expected = {
        "chat.requests": [chat.tag],
        "chat.requests.dead": [chat_dead.tag],
        "document.jobs": [docs.tag],
        commands.queue: [commands.tag],
        event_queue: [feed.tag],
    }
    deadline = time.monotonic() + 20
    while (tags := await consumer_tags(amqp_vhost)) != expected:
        assert time.monotonic() < deadline, f"consumers after the restart: {tags}"
    # The same counted the way list_queues reports it (quorum queues report it seconds
    # late), and the bindings: both checked while the traffic below flows.
    counted = asyncio.create_task(
        wait_for_queues(amqp_vhost, {queue: {"consumers": 1} for queue in expected})
    )
    bindings = asyncio.create_task(event_bindings(amqp_vhost, event_queue))

    await worker.publish_job("chat", b"good")
    await worker.publish_job("chat", b"bad")
    await api.publish_job("documents", b"doc")
    for key in ("chat.kept.chunk", "chat.dropped.chunk", "chat.added.chunk"):
        await worker.publish_event(key, key.encode())
    await api.publish_control(b"cancel")
    await feed.settle(worker)
    assert feed.keys() == ["chat.kept.chunk", "chat.added.chunk"]
    await eventually(
        lambda: dead and documents and control, what="a dead letter, a document, a command"
    )
    assert (jobs, dead, documents, control) == ([b"good", b"bad"], [b"bad"], [b"doc"], [b"cancel"])
    assert await bindings == {SENTINEL, BATCH_ROUTING_KEY, "chat.kept.*", "chat.added.*"}
    await counted
    assert await consumer_tags(amqp_vhost) == expected  # nothing doubled since
