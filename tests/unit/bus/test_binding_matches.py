"""A node routes batched events by its own binding counts exactly as the broker would."""

from __future__ import annotations

import random

import pytest

from app.bus.base import BindingCounts, topic_matches

KEYS = [
    "chat.s1.chunk",
    "chat.s1.complete",
    "chat.s2.chunk",
    "chat.s1",
    "chat.s1.chunk.extra",
    "workspace.w1.document_status",
    "user.u1.workspace_access",
    "node.n1.text_reply",
    "batch",
    "",
]
PATTERNS = ["chat.s1.*", "workspace.#", "user.*.workspace_access", "node.n1.*", "#.chunk"]


@pytest.mark.parametrize("key", KEYS)
def test_matches_agrees_with_topic_rules_for_every_pattern_shape(key: str) -> None:
    counts = BindingCounts()
    for pattern in PATTERNS:
        counts.add(pattern)
    assert counts.matches(key) is any(topic_matches(p, key) for p in PATTERNS)


def test_the_last_holder_leaving_stops_the_match_and_an_extra_holder_keeps_it() -> None:
    counts = BindingCounts()
    counts.add("chat.s1.*")
    counts.add("chat.s1.*")
    counts.remove("chat.s1.*")
    assert counts.matches("chat.s1.chunk")
    counts.remove("chat.s1.*")
    assert not counts.matches("chat.s1.chunk")
    counts.add("a.#")
    counts.remove("a.#")
    assert not counts.matches("a.b")


def test_matches_agrees_with_topic_rules_under_random_binds_and_unbinds() -> None:
    rng = random.Random(7)
    words = ["chat", "s1", "s2", "*", "#", "chunk"]
    counts = BindingCounts()
    held: dict[str, int] = {}
    for _ in range(2000):
        pattern = ".".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.6:
            counts.add(pattern)
            held[pattern] = held.get(pattern, 0) + 1
        elif held.get(pattern):
            counts.remove(pattern)
            held[pattern] -= 1
        key = ".".join(rng.choice(["chat", "s1", "s2", "chunk"]) for _ in range(rng.randint(1, 4)))
        live = [p for p, n in held.items() if n > 0]
        assert counts.matches(key) is any(topic_matches(p, key) for p in live), (key, live)
