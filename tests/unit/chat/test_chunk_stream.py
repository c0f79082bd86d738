"""The chunk stream: offsets and seq by the rules, and coalescing while the pipe is busy."""

from __future__ import annotations

import asyncio

import orjson

from app.chat.chunks import BURST_CHUNKS, ChunkStream


class SlowPipe:
    """A publisher that takes ``delay`` per event, like a busy broker or socket."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.events: list[dict[str, object]] = []

    async def __call__(self, key: str, body: bytes) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        decoded = orjson.loads(body)
        assert decoded["event"] == "chat_chunk"
        self.events.append(decoded["data"])


def stream(pipe: SlowPipe, interval: float = 0.0) -> ChunkStream:
    return ChunkStream(
        pipe,
        routing_key="chat.s.chunk",
        session_id="s",
        message_id="m",
        attempt=2,
        min_interval_s=interval,
    )


async def test_an_idle_pipe_sends_each_token_as_its_own_chunk() -> None:
    pipe = SlowPipe()
    chunks = stream(pipe)
    for word in ["a ", "bb ", "ccc "]:
        chunks.push(word)
        await asyncio.sleep(0.01)
    await chunks.drain()
    assert [e["chunk"] for e in pipe.events] == ["a ", "bb ", "ccc "]
    assert [e["offset"] for e in pipe.events] == [0, 2, 5]
    assert [e["seq"] for e in pipe.events] == [0, 1, 2]
    assert all(e["attempt"] == 2 and e["message_id"] == "m" for e in pipe.events)


async def test_a_busy_pipe_coalesces_tokens_into_fewer_chunks_with_the_same_text() -> None:
    pipe = SlowPipe(delay=0.02)
    chunks = stream(pipe)
    words = [f"w{i} " for i in range(200)]
    for word in words:
        chunks.push(word)
        await asyncio.sleep(0)
    await chunks.drain()
    assert 1 < len(pipe.events) < 50
    assert "".join(str(e["chunk"]) for e in pipe.events) == "".join(words)
    offsets = [e["offset"] for e in pipe.events]
    lengths = [len(str(e["chunk"])) for e in pipe.events]
    assert offsets == [sum(lengths[:i]) for i in range(len(lengths))]
    assert chunks.text() == "".join(words)


async def test_offsets_count_code_points_not_bytes_or_utf16_units() -> None:
    pipe = SlowPipe()
    chunks = stream(pipe)
    for piece in ["naïve ", "👋 ", "日本語"]:
        chunks.push(piece)
        await asyncio.sleep(0.005)
    await chunks.drain()
    assert [e["offset"] for e in pipe.events] == [0, 6, 8]
    assert chunks.offset == len("naïve 👋 日本語")


async def test_a_failing_publisher_does_not_stop_the_stream() -> None:
    calls = 0

    async def flaky(key: str, body: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("broker away")

    chunks = ChunkStream(
        flaky, routing_key="k", session_id="s", message_id="m", attempt=1, min_interval_s=0
    )
    chunks.push("one ")
    await asyncio.sleep(0.01)
    chunks.push("two ")
    await chunks.drain()
    assert calls == 2
    assert chunks.text() == "one two "
    assert chunks.seq == 2 and chunks.offset == len("one two ")


async def test_the_minimum_interval_spaces_chunks_out() -> None:
    pipe = SlowPipe()
    chunks = stream(pipe, interval=0.05)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(20):
        chunks.push(f"{i} ")
        await asyncio.sleep(0.005)
    await chunks.drain()
    elapsed = loop.time() - start
    # 20 tokens over ~0.1 s, one chunk per 50 ms after the first burst: a handful of chunks.
    assert len(pipe.events) <= int(BURST_CHUNKS) + int(elapsed / 0.05) + 1
    assert "".join(str(e["chunk"]) for e in pipe.events) == "".join(f"{i} " for i in range(20))


async def test_a_fast_answer_is_capped_at_one_chunk_per_interval_after_its_burst() -> None:
    pipe = SlowPipe()
    chunks = stream(pipe, interval=0.02)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(200):  # ~1,000 tokens a second for 0.2 s
        chunks.push(f"{i} ")
        await asyncio.sleep(0.001)
    await chunks.drain()
    elapsed = loop.time() - start
    assert len(pipe.events) <= int(BURST_CHUNKS) + int(elapsed / 0.02) + 1
    assert len(pipe.events) < 50  # without the cap: about one chunk per token
    assert "".join(str(e["chunk"]) for e in pipe.events) == "".join(f"{i} " for i in range(200))


async def test_tokens_that_come_together_after_a_pause_go_out_at_once_within_the_burst() -> None:
    pipe = SlowPipe()
    chunks = stream(pipe, interval=60.0)  # past the burst, the next chunk would wait a minute
    for word in ["a ", "b ", "c "]:
        chunks.push(word)
        await asyncio.sleep(0.002)
    # each was published as it came, not held for the interval
    assert [e["chunk"] for e in pipe.events] == ["a ", "b ", "c "]
    await chunks.drain()
