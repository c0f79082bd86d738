"""The RabbitMQ topology of the bus, declared explicitly and idempotently.

Every exchange and durable queue is declared on each (re)connection: a broker that lost
its definitions (a new node, a wiped volume) gets them back before anything is published.
The names of the per-node queues live here too, so the tests can find them.

Job queues are quorum queues with a delivery limit; a job that is rejected or runs out of
deliveries is dead-lettered *at least once* (``x-dead-letter-strategy``) through
``insighthub.dead`` into ``<queue>.dead``. RabbitMQ only allows that strategy together with
``x-overflow: reject-publish``, which is why a full queue nacks publishes instead of
dropping its head.
"""

from __future__ import annotations

from typing import Any

import aiormq.abc

from app.bus.base import (
    CONTROL_EXCHANGE,
    EVENTS_EXCHANGE,
    JOB_QUEUE_NAMES,
    JOB_QUEUES,
    JOB_ROUTING_KEYS,
    JOBS_EXCHANGE,
    PARKED_QUEUE,
    JobQueue,
)

DEAD_EXCHANGE = "insighthub.dead"

_QUORUM: dict[str, Any] = {"x-queue-type": "quorum"}


def dead_queue_name(queue: JobQueue) -> str:
    """``<queue>.dead``: also the routing key dead letters carry through ``insighthub.dead``."""
    return f"{JOB_QUEUE_NAMES[queue]}.dead"


def event_queue_name(node_id: str) -> str:
    """The node's own exclusive event queue."""
    return f"insighthub.events.{node_id}"


def control_queue_name(node_id: str, n: int) -> str:
    """One exclusive queue per control consumer, so every consumer gets every command."""
    return f"insighthub.control.{node_id}.{n}"


def job_queue_arguments(queue: JobQueue, delivery_limit: int) -> dict[str, Any]:
    return {
        **_QUORUM,
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": DEAD_EXCHANGE,
        "x-dead-letter-routing-key": dead_queue_name(queue),
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


async def declare_topology(
    channel: aiormq.abc.AbstractChannel, *, delivery_limit: int, rpc_timeout: float
) -> None:
    """Declare exchanges, job queues, their dead-letter queues and the parked queue.

    A queue that exists with other arguments (say, another delivery limit) makes the broker
    close the channel with PRECONDITION_FAILED: that is a deployment error and surfaces as
    the exception of this call. ``rpc_timeout`` bounds each call, not the whole.
    """
    for name, kind in (
        (JOBS_EXCHANGE, "direct"),
        (EVENTS_EXCHANGE, "topic"),
        (CONTROL_EXCHANGE, "fanout"),
        (DEAD_EXCHANGE, "direct"),
    ):
        await channel.exchange_declare(name, exchange_type=kind, durable=True, timeout=rpc_timeout)

    for queue in JOB_QUEUES:
        dead = dead_queue_name(queue)
        await channel.queue_declare(dead, durable=True, arguments=_QUORUM, timeout=rpc_timeout)
        await channel.queue_bind(dead, DEAD_EXCHANGE, routing_key=dead, timeout=rpc_timeout)

        name = JOB_QUEUE_NAMES[queue]
        await channel.queue_declare(
            name,
            durable=True,
            arguments=job_queue_arguments(queue, delivery_limit),
            timeout=rpc_timeout,
        )
        await channel.queue_bind(
            name, JOBS_EXCHANGE, routing_key=JOB_ROUTING_KEYS[queue], timeout=rpc_timeout
        )

    await channel.queue_declare(PARKED_QUEUE, durable=True, arguments=_QUORUM, timeout=rpc_timeout)
