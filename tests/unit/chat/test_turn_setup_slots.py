"""New turns are stored a few at a time per process (``INSIGHTHUB_TURN_SETUP_CONCURRENCY``).

A burst of turns must not run all its database work in the same passes of the event loop
as the answers already streaming; the ones past the limit wait for a slot, and every one
of them is still stored.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from app.chat.turns import ChatTurns
from app.settings import Settings


async def test_a_burst_of_turns_is_stored_at_most_the_limit_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running = 0
    most = 0
    stored: list[str] = []

    async def store_turn(_db: Any, _user: Any, **fields: Any) -> Any:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.005)
        running -= 1
        stored.append(fields["message"])
        return fields["message"]

    monkeypatch.setattr("app.chat.service.accept_message", store_turn)
    turns = ChatTurns(Settings(turn_setup_concurrency=3), db=None, bus=None)  # type: ignore[arg-type]
    sent = [f"turn {i}" for i in range(20)]
    answers: list[Any] = list(
        await asyncio.gather(*(turns.accept(None, message=m) for m in sent))  # type: ignore[arg-type]
    )
    assert most == 3
    assert answers == sent and sorted(stored) == sorted(sent)


async def test_a_turn_that_fails_to_store_gives_its_slot_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def refuse(_db: Any, _user: Any, **_fields: Any) -> None:
        raise LookupError("no such workspace")

    monkeypatch.setattr("app.chat.service.accept_message", refuse)
    turns = ChatTurns(Settings(turn_setup_concurrency=1), db=None, bus=None)  # type: ignore[arg-type]
    for _ in range(3):  # with the slot kept, the second would wait for ever
        with pytest.raises(LookupError):
            await asyncio.wait_for(turns.accept(None, message="x"), 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -1])
def test_a_limit_below_one_is_refused(value: int) -> None:
    with pytest.raises(ValidationError, match="turn_setup_concurrency"):
        Settings(turn_setup_concurrency=value)
