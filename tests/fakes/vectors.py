"""Deterministic embeddings for the fakes: a hashed, normalised bag of words."""

from __future__ import annotations

import hashlib
import math

DIMENSIONS = 16


def fake_embedding(text: str, dims: int = DIMENSIONS) -> list[float]:
    """Each word adds ±1 at a hashed position; texts sharing words point the same way."""
    vector = [0.0] * dims
    for word in text.lower().split():
        digest = hashlib.sha256(word.encode()).digest()
        index = int.from_bytes(digest[:4], "little") % dims
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector
