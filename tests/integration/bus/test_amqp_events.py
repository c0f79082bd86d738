"""Events and control over the real broker: bound patterns only, refcounts, fanout.

"Not delivered" is checked without sleeping: events from one publisher channel reach a
queue in order, so once a later sentinel event has arrived, an earlier one that was going
to arrive has arrived too.
"""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from app.bus.amqp import AmqpBus
from app.bus.amqp_outbox import BATCH_ROUTING_KEY
from app.bus.amqp_topology import event_queue_name
from app.bus.base import EVENTS_EXCHANGE, ControlHandler, session_pattern
from app.bus.event_batches import encode_batch
from tests.integration.bus.conftest import BusFactory, event_bindings, eventually

pytestmark = pytest.mark.rabbitmq

SENTINEL = "sentinel.end.now"


class Feed:
    """What one node's event handler has seen."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []
        self.tag = ""  # the consumer tag of the feed, once consuming

    async def __call__(self, routing_key: str, body: bytes) -> None:
        self.events.append((routing_key, body))

    def keys(self) -> list[str]:
        return [key for key, _ in self.events if key != SENTINEL]

    async def settle(self, publisher: AmqpBus, *, sentinels: int = 1) -> None:
        """Wait until this feed has seen ``sentinels`` sentinel events in all."""
        await publisher.publish_event(SENTINEL, b"")
        await eventually(
            lambda: sum(key == SENTINEL for key, _ in self.events) >= sentinels,
            what="the sentinel event",
        )


async def feed_of(bus: AmqpBus) -> Feed:
    feed = Feed()
    feed.tag = (await bus.consume_events(feed)).tag
    await bus.bind(SENTINEL)
    return feed


async def test_events_reach_only_bound_patterns(make_bus: BusFactory) -> None:
    bus = await make_bus()
    feed = await feed_of(bus)
    await bus.bind("chat.a.*")
    await bus.bind("workspace.w.#")

    for key in ("chat.a.chunk", "chat.b.chunk", "chat.a.x.y", "workspace.w.status", "user.u.x"):
        await bus.publish_event(key, key.encode())
    await feed.settle(bus)
    assert feed.events[:2] == [(b, b.encode()) for b in ("chat.a.chunk", "workspace.w.status")]
    assert feed.keys() == ["chat.a.chunk", "workspace.w.status"]


async def test_bind_and_unbind_are_reference_counted(make_bus: BusFactory, amqp_vhost: str) -> None:
    bus = await make_bus()
    feed = await feed_of(bus)
    pattern = session_pattern("s1")

    await bus.bind(pattern)
    await bus.bind(pattern)  # a second socket on this node joins the same session
    await bus.unbind(pattern)  # one of them leaves
    await bus.publish_event("chat.s1.chunk", b"1")
    await feed.settle(bus, sentinels=1)
    assert feed.keys() == ["chat.s1.chunk"]
    bindings = await event_bindings(amqp_vhost, event_queue_name(bus.node_id))
    assert bindings == {SENTINEL, BATCH_ROUTING_KEY, pattern}

    await bus.unbind(pattern)  # the last one leaves
    await bus.publish_event("chat.s1.chunk", b"2")
    await feed.settle(bus, sentinels=2)
    assert feed.keys() == ["chat.s1.chunk"]
    assert pattern not in bus.bound_patterns()

    await bus.unbind(pattern)  # one unbind too many changes nothing
    await bus.bind(pattern)
    await bus.publish_event("chat.s1.chunk", b"3")
    await feed.settle(bus, sentinels=3)
    assert [body for key, body in feed.events if key != SENTINEL] == [b"1", b"3"]


async def test_two_nodes_bound_to_a_pattern_each_get_an_event_once(
    make_bus: BusFactory,
) -> None:
    one, two = await make_bus(), await make_bus()
    feed_one, feed_two = await feed_of(one), await feed_of(two)
    await one.bind("chat.s.*")
    await two.bind("chat.s.*")
    await two.bind("chat.only-two.*")

    await one.publish_event("chat.s.chunk", b"both")
    await one.publish_event("chat.only-two.chunk", b"two")
    await feed_one.settle(one)
    await feed_two.settle(one)
    assert feed_one.events[0] == ("chat.s.chunk", b"both")
    assert feed_one.keys() == ["chat.s.chunk"]
    assert feed_two.keys() == ["chat.s.chunk", "chat.only-two.chunk"]


async def test_events_arrive_in_publish_order(make_bus: BusFactory) -> None:
    bus = await make_bus()
    feed = await feed_of(bus)
    await bus.bind("chat.o.*")
    for n in range(300):
        await bus.publish_event("chat.o.chunk", str(n).encode())
    await feed.settle(bus)
    assert [int(body) for key, body in feed.events if key != SENTINEL] == list(range(300))


async def test_a_failing_event_handler_does_not_stop_the_feed(make_bus: BusFactory) -> None:
    bus = await make_bus()
    seen: list[bytes] = []

    async def handler(routing_key: str, body: bytes) -> None:
        seen.append(body)
        if body == b"boom":
            raise RuntimeError("the relay broke on this one")

    await bus.consume_events(handler)
    await bus.bind("chat.f.*")
    await bus.publish_event("chat.f.chunk", b"boom")
    await bus.publish_event("chat.f.chunk", b"after")
    await eventually(lambda: seen == [b"boom", b"after"], what="the event after the failure")


async def test_one_event_feed_per_node(make_bus: BusFactory) -> None:
    bus = await make_bus()
    await feed_of(bus)
    with pytest.raises(RuntimeError, match="already consumes"):
        await bus.consume_events(Feed())


async def test_a_new_feed_after_cancel_keeps_the_bindings(make_bus: BusFactory) -> None:
    """The queue is auto-delete: cancelling its consumer deletes it, bindings and all."""
    bus = await make_bus()
    first = Feed()
    subscription = await bus.consume_events(first)
    await bus.bind("chat.k.*")
    await subscription.cancel()

    second = await feed_of(bus)
    await bus.publish_event("chat.k.chunk", b"kept")
    await second.settle(bus)
    assert second.keys() == ["chat.k.chunk"]
    assert first.events == []


async def test_a_pattern_the_broker_cannot_take_is_refused_up_front(make_bus: BusFactory) -> None:
    bus = await make_bus()
    feed = await feed_of(bus)
    with pytest.raises(ValueError):
        await bus.bind("chat." + "x" * 300 + ".*")
    with pytest.raises(ValueError):
        await bus.bind("")
    await bus.bind("chat.ok.*")  # and it left nothing behind that breaks the next bind
    await bus.publish_event("chat.ok.chunk", b"ok")
    await feed.settle(bus)
    assert feed.keys() == ["chat.ok.chunk"]
    assert bus.bound_patterns() == {SENTINEL, "chat.ok.*"}


async def test_publishing_to_a_key_nobody_binds_is_fine(make_bus: BusFactory) -> None:
    bus = await make_bus()
    await bus.publish_event("chat.nobody.chunk", b"x")  # no exception, nothing to wait for
    assert await bus.ping()


async def test_control_fanout_reaches_every_consumer_once(make_bus: BusFactory) -> None:
    api, worker_one, worker_two = await make_bus(), await make_bus(), await make_bus()
    got: dict[str, list[bytes]] = {"one": [], "two": [], "three": []}

    def collector(name: str) -> ControlHandler:
        async def handle(body: bytes) -> None:
            got[name].append(body)

        return handle

    await worker_one.consume_control(collector("one"))
    await worker_two.consume_control(collector("two"))
    await worker_two.consume_control(collector("three"))  # a second consumer on one node
    expected = [b'{"kind":"cancel"}', b'{"kind":"text_request"}', b"end"]
    for body in expected:
        await api.publish_control(body)
    await eventually(
        lambda: all(bodies[-1:] == [b"end"] for bodies in got.values()), what="every command"
    )
    assert got == {"one": expected, "two": expected, "three": expected}


async def test_events_of_many_sessions_published_together_travel_batched_to_their_nodes(
    make_bus: BusFactory,
) -> None:
    publisher, one, two = await make_bus(), await make_bus(), await make_bus()
    feed_one, feed_two = await feed_of(one), await feed_of(two)
    await one.bind("chat.a.*")
    await two.bind("chat.b.*")

    for n in range(200):  # one pass of the loop: nothing here yields to the sender
        await publisher.publish_event("chat.a.chunk" if n % 2 == 0 else "chat.b.chunk", b"%d" % n)
    await feed_one.settle(publisher)  # both nodes are bound to the sentinel
    await eventually(lambda: (SENTINEL, b"") in feed_two.events, what="the sentinel on two")

    assert [int(b) for k, b in feed_one.events if k != SENTINEL] == list(range(0, 200, 2))
    assert [int(b) for k, b in feed_two.events if k != SENTINEL] == list(range(1, 200, 2))
    events, messages = publisher.events_sent
    assert events == 200 + 1  # and the sentinel
    assert messages <= 3, f"{events} events took {messages} AMQP messages"


async def test_with_a_batch_interval_events_of_many_passes_arrive_whole_in_few_messages(
    make_bus: BusFactory,
) -> None:
    publisher = await make_bus(event_batch_interval_s=0.05)
    node = await make_bus()
    feed = await feed_of(node)
    await node.bind("chat.a.*")

    for n in range(100):  # a pass of the loop each: without the interval, ~100 messages
        await publisher.publish_event("chat.a.chunk", b"%d" % n)
        await asyncio.sleep(0)
    await feed.settle(publisher)

    assert [int(b) for k, b in feed.events if k != SENTINEL] == list(range(100))
    events, messages = publisher.events_sent
    assert events == 100 + 1  # and the sentinel
    assert messages <= 5, f"{events} events took {messages} AMQP messages"


async def test_an_event_published_alone_is_routed_by_the_broker_to_bound_nodes_only(
    make_bus: BusFactory, amqp_vhost: str
) -> None:
    publisher, one = await make_bus(), await make_bus()
    feed = await feed_of(one)
    await one.bind("chat.a.*")
    await publisher.publish_event("chat.a.chunk", b"alone")
    await eventually(lambda: feed.keys() == ["chat.a.chunk"], what="the event")
    assert publisher.events_sent == (1, 1)
    assert await event_bindings(amqp_vhost, event_queue_name(one.node_id)) == {
        SENTINEL,
        BATCH_ROUTING_KEY,
        "chat.a.*",
    }


async def test_a_damaged_batch_is_dropped_and_the_feed_goes_on(
    make_bus: BusFactory, amqp_url: str
) -> None:
    bus = await make_bus()
    feed = await feed_of(bus)
    await bus.bind("chat.a.*")
    good = encode_batch([("chat.a.chunk", b"1"), ("chat.a.chunk", b"2")])
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(EVENTS_EXCHANGE)
        for body in (b"\x09not a batch", good[:-1], good):
            await exchange.publish(aio_pika.Message(body), routing_key=BATCH_ROUTING_KEY)
    finally:
        await connection.close()
    await feed.settle(bus)
    # the truncated copy still delivered its first, whole event; the junk nothing
    assert [body for key, body in feed.events if key != SENTINEL] == [b"1", b"1", b"2"]
