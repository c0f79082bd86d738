"""Checkpoints: each answer once per interval, in its own phase, never all at once."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from app.chat import store, worker
from app.chat.chunks import ChunkStream
from app.chat.worker import ChatWorker, Generation
from tests.conftest import make_settings


async def _nothing(_key: str, _body: bytes) -> None:
    return None


def _generation(started: float, interval: float) -> Generation:
    mid = uuid.uuid4()
    gen = Generation(
        mid,
        uuid.uuid4(),
        1,
        ChunkStream(
            _nothing,
            routing_key="chat.s.chunk",
            session_id="s",
            message_id=str(mid),
            attempt=1,
            min_interval_s=0.0,
        ),
        started=started,
    )
    gen.checkpoint_due = started + interval
    return gen


@pytest.fixture
def stored(monkeypatch: pytest.MonkeyPatch) -> list[dict[uuid.UUID, str | None]]:
    """What each checkpoint would have written (the statement itself is tested on both
    databases by the chat flow and recovery tests)."""
    calls: list[dict[uuid.UUID, str | None]] = []

    async def record(_db: Any, _holder: str, _lease_s: float, texts: Any) -> None:
        calls.append(dict(texts))

    monkeypatch.setattr(store, "checkpoint", record)
    assert worker.store.checkpoint is record
    return calls


def _worker_running(tmp_path: Path, gens: list[Generation]) -> ChatWorker:
    """A worker (checkpoint interval 1 s) generating ``gens``; nothing else of it is used."""
    settings = make_settings(tmp_path, checkpoint_interval_s=1.0)
    chat = ChatWorker(settings, db=None, bus=None, providers=None)  # type: ignore[arg-type]
    chat.running = {g.message_id: g for g in gens}
    return chat


async def test_answers_started_over_a_second_are_checkpointed_a_few_at_a_time(
    tmp_path: Path, stored: list[dict[uuid.UUID, str | None]]
) -> None:
    gens = [_generation(started=i / 100, interval=1.0) for i in range(100)]
    chat = _worker_running(tmp_path, gens)

    for tick in range(1, 31):  # three seconds of ticks, a tenth of the interval apart
        await chat.checkpoint_once(now=1.0 + tick / 10 - 0.001)

    seen: dict[uuid.UUID, int] = {}
    for call in stored:
        assert len(call) <= 11, "a checkpoint took far more than its share of the answers"
        for mid in call:
            seen[mid] = seen.get(mid, 0) + 1
    assert seen == {g.message_id: 3 for g in gens}  # each once per interval, none skipped


async def test_only_new_text_is_written_and_an_unchanged_answer_renews_its_lease_only(
    tmp_path: Path, stored: list[dict[uuid.UUID, str | None]]
) -> None:
    gen = _generation(started=0.0, interval=1.0)
    chat = _worker_running(tmp_path, [gen])
    gen.stream.parts.extend(["Hel", "lo"])

    await chat.checkpoint_once(now=0.5)  # not due yet
    await chat.checkpoint_once(now=1.0)
    await chat.checkpoint_once(now=2.0)  # nothing new since
    gen.stream.parts.append("!")
    await chat.checkpoint_once(now=3.0)

    assert stored == [
        {gen.message_id: "Hello"},
        {gen.message_id: None},
        {gen.message_id: "Hello!"},
    ]


async def test_a_worker_that_fell_behind_keeps_the_interval_from_then_on(
    tmp_path: Path, stored: list[dict[uuid.UUID, str | None]]
) -> None:
    gen = _generation(started=0.0, interval=1.0)
    chat = _worker_running(tmp_path, [gen])

    await chat.checkpoint_once(now=5.3)  # the loop was held up for four intervals
    assert gen.checkpoint_due == pytest.approx(6.3)
    await chat.checkpoint_once(now=5.9)
    assert stored == [{gen.message_id: None}]
