"""Reading a provider stream to the end, keeping what arrived before a failure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import cast

from app.llm.base import ChatTurn, LlmProviderError, Token

TURNS = (ChatTurn("system", "Answer briefly."), ChatTurn("user", "Say a few words."))


@dataclass
class Outcome:
    tokens: list[Token] = field(default_factory=list)
    error: LlmProviderError | None = None

    @property
    def text(self) -> str:
        return "".join(t.text for t in self.tokens)

    @property
    def final(self) -> Token:
        return self.tokens[-1]


async def drain(stream: AsyncIterator[Token]) -> Outcome:
    """Every token, and the LlmProviderError that ended the stream, if one did."""
    outcome = Outcome()
    try:
        async with aclosing(cast("AsyncIteratorWithClose", stream)) as tokens:
            async for token in tokens:
                outcome.tokens.append(token)
    except LlmProviderError as exc:
        outcome.error = exc
    return outcome


class AsyncIteratorWithClose(AsyncIterator[Token]):
    async def aclose(self) -> None: ...
