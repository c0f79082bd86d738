"""Several events in one AMQP message come back out whole, in order, byte for byte."""

from __future__ import annotations

import asyncio

import pytest

from app.bus.amqp_outbox import BATCH_ROUTING_KEY, EventOutbox
from app.bus.event_batches import MalformedBatch, decode_batch, encode_batch

EVENTS = [
    ("chat.s1.chunk", b'{"e":"chat_chunk","d":{"chunk":"h\xc3\xa9"}}'),
    ("chat.s2.complete", b""),
    ("workspace.wé.document_status", b"\x00\xff" * 40_000),
]


def test_a_batch_decodes_to_the_events_it_was_made_of() -> None:
    assert list(decode_batch(encode_batch(EVENTS))) == EVENTS


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "not a version"),
        (b"\x02" + encode_batch(EVENTS)[1:], "not a version"),
        (encode_batch(EVENTS)[:-1], "truncated event at"),
        (encode_batch(EVENTS[:1]) + b"\x00", "truncated event header"),
        (b"\x01\x00\x01\x00\x00\x00\x00\xff", "not UTF-8"),
    ],
)
def test_a_damaged_batch_is_refused_at_the_damage(data: bytes, why: str) -> None:
    with pytest.raises(MalformedBatch, match=why):
        list(decode_batch(data))


def test_events_before_the_damage_are_still_delivered() -> None:
    data = encode_batch(EVENTS[:2]) + encode_batch(EVENTS[2:])[1:-5]
    seen = []
    with pytest.raises(MalformedBatch):
        for event in decode_batch(data):
            seen.append(event)
    assert seen == EVENTS[:2]


class Recorder:
    """A send that records the messages and can be made to stall."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, int]] = []
        self.sent_at: list[float] = []  # loop time of each message
        self.gate = asyncio.Event()
        self.gate.set()

    async def send(self, key: str, body: bytes, count: int) -> None:
        await self.gate.wait()
        self.messages.append((key, body, count))
        self.sent_at.append(asyncio.get_running_loop().time())

    def events(self) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for key, body, _count in self.messages:
            out += list(decode_batch(body)) if key == BATCH_ROUTING_KEY else [(key, body)]
        return out


async def test_an_event_alone_goes_out_as_itself_under_its_own_key() -> None:
    sent = Recorder()
    outbox = EventOutbox(sent.send)
    await outbox.put("chat.s1.chunk", b"one")
    await outbox.flush(1.0)
    assert sent.messages == [("chat.s1.chunk", b"one", 1)]


async def test_events_put_in_one_pass_of_the_loop_go_as_one_batch() -> None:
    sent = Recorder()
    outbox = EventOutbox(sent.send)
    for i in range(50):
        await outbox.put(f"chat.s{i}.chunk", str(i).encode())
    await outbox.flush(1.0)
    assert [(key, count) for key, _body, count in sent.messages] == [(BATCH_ROUTING_KEY, 50)]
    assert sent.events() == [(f"chat.s{i}.chunk", str(i).encode()) for i in range(50)]
    assert (outbox.messages_sent, outbox.events_sent) == (1, 50)


async def test_events_put_while_the_broker_is_slow_gather_and_keep_their_order() -> None:
    sent = Recorder()
    outbox = EventOutbox(sent.send)
    sent.gate.clear()
    await outbox.put("k.a.first", b"0")
    await asyncio.sleep(0)  # the sender has taken the first event and waits on the broker
    for i in range(1, 30):
        await outbox.put("k.a.next", str(i).encode())
        await asyncio.sleep(0)
    sent.gate.set()
    await outbox.flush(1.0)
    assert [count for _key, _body, count in sent.messages] == [1, 29]
    assert [body for _key, body in sent.events()] == [str(i).encode() for i in range(30)]


async def test_with_an_interval_the_first_event_of_a_quiet_moment_still_goes_at_once() -> None:
    sent = Recorder()
    outbox = EventOutbox(sent.send, min_interval_s=60.0)
    await outbox.put("chat.s1.chunk", b"one")
    await outbox.flush(1.0)  # would time out if the interval delayed it
    assert sent.messages == [("chat.s1.chunk", b"one", 1)]


async def test_with_an_interval_events_of_many_passes_gather_into_one_message() -> None:
    sent = Recorder()
    outbox = EventOutbox(sent.send, min_interval_s=0.05)
    await outbox.put("k.a.first", b"0")
    await asyncio.sleep(0)  # the first goes out alone, at once
    for i in range(1, 10):
        await outbox.put("k.a.next", str(i).encode())
        await asyncio.sleep(0)  # each in a pass of its own: without the interval, 9 messages
    await outbox.flush(1.0)
    assert [count for _key, _body, count in sent.messages] == [1, 9]
    assert [body for _key, body in sent.events()] == [str(i).encode() for i in range(10)]
    # the second message waited out the interval (less the loop clock's resolution)
    assert sent.sent_at[1] - sent.sent_at[0] >= 0.05 * 0.9


async def test_after_a_quiet_interval_the_next_event_goes_at_once_again() -> None:
    sent = Recorder()
    outbox = EventOutbox(sent.send, min_interval_s=0.2)
    await outbox.put("k.a.b", b"1")
    await outbox.flush(1.0)
    await asyncio.sleep(0.25)  # longer than the interval: the outbox is quiet again
    put_at = asyncio.get_running_loop().time()
    await outbox.put("k.a.b", b"2")
    await outbox.flush(1.0)
    assert [body for _key, body, _count in sent.messages] == [b"1", b"2"]
    assert sent.sent_at[1] - put_at < 0.2, "a quiet outbox held an event for the interval"


async def test_a_batch_stays_under_its_size_and_the_rest_follows_in_order() -> None:
    sent = Recorder()
    outbox = EventOutbox(sent.send, max_batch_bytes=1000)
    for i in range(10):
        await outbox.put("k.a.b", bytes([i]) * 300)
    await outbox.flush(1.0)
    assert all(len(body) <= 1001 for _key, body, _count in sent.messages)
    assert len(sent.messages) == 4  # three events of 306 bytes fit in 1000
    assert [body[0] for _key, body in sent.events()] == list(range(10))


async def test_a_publisher_waits_when_the_outbox_is_full_until_the_broker_takes_it() -> None:
    sent = Recorder()
    outbox = EventOutbox(sent.send, max_pending_bytes=1000)
    sent.gate.clear()
    await outbox.put("k.a.b", b"x")
    await asyncio.sleep(0)
    await outbox.put("k.a.b", b"y" * 600)  # under the bound: returns at once
    blocked = asyncio.create_task(outbox.put("k.a.b", b"z" * 600))
    await asyncio.sleep(0.05)
    assert not blocked.done(), "a publisher past the bound did not wait"
    sent.gate.set()
    await asyncio.wait_for(blocked, 1.0)
    await outbox.flush(1.0)
    assert [body[:1] for _key, body in sent.events()] == [b"x", b"y", b"z"]


async def test_a_failing_send_loses_its_events_but_not_the_outbox() -> None:
    calls: list[str] = []

    async def send(key: str, body: bytes, count: int) -> None:
        calls.append(key)
        if len(calls) == 1:
            raise RuntimeError("broken")

    outbox = EventOutbox(send)
    await outbox.put("k.a.lost", b"1")
    await outbox.flush(1.0)
    await outbox.put("k.a.kept", b"2")
    await outbox.flush(1.0)
    assert calls == ["k.a.lost", "k.a.kept"]
