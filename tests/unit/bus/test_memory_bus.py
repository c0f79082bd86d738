"""The in-process bus keeps the AMQP bus's promises: acks, redelivery, dead letters, topics."""

from __future__ import annotations

import asyncio

import pytest

from app.bus.base import BindingCounts, JobDelivery, topic_matches
from app.bus.memory import InMemoryBus


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("chat.*.*", "chat.a.chunk", True),
        ("chat.*.*", "chat.a", False),
        ("chat.a.*", "chat.b.chunk", False),
        ("#", "anything.at.all", True),
        ("chat.#", "chat", True),
        ("chat.#", "chat.a.b.c", True),
        ("a.#.b", "a.b", True),
        ("a.#.b", "a.x.y.b", True),
        ("a.#.b", "a.x.c", False),
        ("workspace.*.workspace_status", "workspace.w1.workspace_status", True),
        ("workspace.*.workspace_status", "workspace.w1.document_status", False),
    ],
)
def test_topic_matching_follows_amqp_rules(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


def test_binding_counts_bind_on_first_and_unbind_on_last() -> None:
    counts = BindingCounts()
    assert counts.add("p") is True
    assert counts.add("p") is False
    assert counts.remove("p") is False
    assert "p" in counts
    assert counts.remove("p") is True
    assert "p" not in counts
    assert counts.remove("p") is False


async def test_a_job_is_delivered_once_and_acked() -> None:
    bus = InMemoryBus()
    seen: list[bytes] = []

    async def handler(d: JobDelivery) -> None:
        seen.append(d.body)
        await d.ack()

    await bus.consume_jobs("chat", handler, prefetch=2)
    await bus.publish_job("chat", b"one")
    await asyncio.sleep(0.01)
    assert seen == [b"one"]
    await bus.close()


async def test_requeue_redelivers_and_the_delivery_limit_dead_letters() -> None:
    bus = InMemoryBus(delivery_limit=3)
    deliveries: list[bool] = []
    dead: list[bytes] = []

    async def handler(d: JobDelivery) -> None:
        deliveries.append(d.redelivered)
        await d.requeue()

    async def on_dead(d: JobDelivery) -> None:
        dead.append(d.body)
        await d.ack()

    await bus.consume_jobs("chat", handler, prefetch=1)
    await bus.consume_dead_letters("chat", on_dead)
    await bus.publish_job("chat", b"doomed")
    await asyncio.sleep(0.05)
    assert deliveries == [False, True, True]
    assert dead == [b"doomed"]
    await bus.close()


async def test_reject_dead_letters_and_a_failing_handler_requeues() -> None:
    bus = InMemoryBus()
    attempts: list[bytes] = []
    dead: list[bytes] = []

    async def handler(d: JobDelivery) -> None:
        attempts.append(d.body)
        if d.body == b"bad":
            await d.reject()
            return
        if len([a for a in attempts if a == b"flaky"]) == 1:
            raise RuntimeError("first try fails")
        await d.ack()

    async def on_dead(d: JobDelivery) -> None:
        dead.append(d.body)
        await d.ack()

    await bus.consume_jobs("chat", handler, prefetch=1)
    await bus.consume_dead_letters("chat", on_dead)
    await bus.publish_job("chat", b"bad")
    await bus.publish_job("chat", b"flaky")
    await asyncio.sleep(0.05)
    assert dead == [b"bad"]
    assert attempts.count(b"flaky") == 2
    await bus.close()


async def test_prefetch_bounds_the_jobs_in_flight() -> None:
    bus = InMemoryBus()
    running = 0
    peak = 0
    release = asyncio.Event()

    async def handler(d: JobDelivery) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        await d.ack()

    await bus.consume_jobs("chat", handler, prefetch=3)
    for i in range(10):
        await bus.publish_job("chat", str(i).encode())
    await asyncio.sleep(0.05)
    assert peak == 3
    release.set()
    await asyncio.sleep(0.05)
    assert bus.pending_jobs("chat") == 0
    await bus.close()


async def test_events_reach_only_bound_patterns_and_bindings_are_counted() -> None:
    bus = InMemoryBus()
    got: list[str] = []

    async def on_event(key: str, body: bytes) -> None:
        got.append(key)

    await bus.consume_events(on_event)
    await bus.publish_event("chat.s1.chunk", b"{}")
    await bus.bind("chat.s1.*")
    await bus.bind("chat.s1.*")
    await bus.bind("workspace.*.workspace_status")
    await bus.publish_event("chat.s1.chunk", b"{}")
    await bus.publish_event("chat.s2.chunk", b"{}")
    await bus.publish_event("workspace.w.workspace_status", b"{}")
    await bus.publish_event("workspace.w.document_status", b"{}")
    await bus.unbind("chat.s1.*")
    await bus.publish_event("chat.s1.complete", b"{}")
    await bus.unbind("chat.s1.*")
    await bus.publish_event("chat.s1.complete", b"{}")
    assert got == ["chat.s1.chunk", "workspace.w.workspace_status", "chat.s1.complete"]


async def test_control_commands_reach_every_consumer() -> None:
    bus = InMemoryBus()
    a: list[bytes] = []
    b: list[bytes] = []

    async def on_a(body: bytes) -> None:
        a.append(body)

    async def on_b(body: bytes) -> None:
        b.append(body)

    await bus.consume_control(on_a)
    sub = await bus.consume_control(on_b)
    await bus.publish_control(b"cancel")
    await sub.cancel()
    await bus.publish_control(b"again")
    assert a == [b"cancel", b"again"] and b == [b"cancel"]
