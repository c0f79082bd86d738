"""The provider interface every LLM back end implements.

A provider turns a prompt into an async generator of tokens. Whoever iterates it closes
it, so a cancelled answer releases the upstream connection at once::

    async with aclosing(provider.stream(turns, model="gpt-4o-mini")) as tokens:
        async for token in tokens:
            ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from app.errors import is_retryable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatTurn:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(slots=True)
class Token:
    """One piece of answer text.

    The last item a provider yields may carry ``usage`` and ``finish_reason`` with empty
    ``text``; ``stamp`` is the wall-clock time the provider produced it (benchmarks measure
    latency from there).
    """

    text: str
    usage: Usage | None = None
    finish_reason: str | None = None
    stamp: float | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    provider: str
    default_model: str
    models: tuple[str, ...] = field(default_factory=tuple)


class LlmProviderError(Exception):
    """Every provider failure, with a PROTOCOL.md ``error_type``.

    ``before_first_token`` tells the caller whether a retry or a fallback is safe (no text
    has reached the client); ``retry_after_s`` carries a server's Retry-After.
    """

    def __init__(
        self,
        error_type: str,
        message: str,
        *,
        retryable: bool | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.retryable = is_retryable(error_type) if retryable is None else retryable
        self.retry_after_s = retry_after_s


@runtime_checkable
class LlmProvider(Protocol):
    name: str

    def stream(
        self,
        messages: Sequence[ChatTurn],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[Token]: ...

    async def aclose(self) -> None: ...

    def info(self) -> ModelInfo: ...
