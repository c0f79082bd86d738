"""The ``synthetic`` provider: a set number of tokens at a set rate, and a set failure.

Its behaviour is read from the model name (PROTOCOL.md)::

    tokens-200-rate-30                       200 tokens at 30 tokens/s (rate 0: flat out)
    tokens-200-rate-30-fail-50-llm_overloaded   fails after 50 tokens
    tokens-20000-rate-0-stamp                each word is ``t<time_ns>``: benchmarks read the
                                             moment a token was produced from its text

Every stream is recorded (start, close, how many tokens, why it ended) in memory and,
where a record file is set, as JSON lines, so tests in other processes can see that a
cancel really closed the generator.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from app.errors import ERROR_TYPES
from app.llm.base import ChatTurn, LlmProviderError, ModelInfo, Token, Usage

_SPEC = re.compile(
    r"^tokens-(?P<n>\d+)-rate-(?P<rate>\d+(?:\.\d+)?)"
    r"(?:-fail-(?P<k>\d+)-(?P<error>[a-z_]+))?(?P<stamp>-stamp)?$"
)
_WORDS = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua"
).split()
DEFAULT_MODEL = "tokens-40-rate-40"
# A token due sooner than this goes out at once with the one before it: the event loop's
# timers tick in milliseconds, so a shorter sleep is a wake-up that buys no precision, and at
# 1,000 tokens/s one wake-up per token is most of what the stream costs. A burst still
# passes the loop every MAX_BURST tokens, so a stream that fell behind cannot hog it.
TIMER_TICK_S = 0.002
MAX_BURST = 16


@dataclass(frozen=True, slots=True)
class SyntheticSpec:
    tokens: int
    rate: float
    fail_after: int | None = None
    error_type: str | None = None
    stamp: bool = False


def parse_spec(model: str) -> SyntheticSpec:
    m = _SPEC.match(model)
    if m is None:
        raise LlmProviderError(
            "llm_bad_request",
            f"synthetic model {model!r} is not tokens-<N>-rate-<R>[-fail-<K>-<error_type>]",
        )
    k = m.group("k")
    if m.group("error") is not None and m.group("error") not in ERROR_TYPES:
        raise LlmProviderError(
            "llm_bad_request", f"synthetic error type {m.group('error')!r} is not a PROTOCOL.md one"
        )
    return SyntheticSpec(
        tokens=int(m.group("n")),
        rate=float(m.group("rate")),
        fail_after=int(k) if k is not None else None,
        error_type=m.group("error"),
        stamp=m.group("stamp") is not None,
    )


class StreamRecorder:
    """What happened to each synthetic stream: the evidence that cancels close generators.

    The provider is registered by default (``INSIGHTHUB_SYNTHETIC_PROVIDER``), so a server
    left running with workspaces on it records every answer they stream: only the newest
    ``keep`` records stay in memory (the file, when there is one, has them all).
    """

    def __init__(self, path: Path | None = None, *, keep: int = 10_000) -> None:
        self.path = path
        self.records: deque[dict[str, object]] = deque(maxlen=keep)

    def record(self, **fields: object) -> None:
        fields["t"] = time.time()
        self.records.append(fields)
        if self.path is not None:
            with self.path.open("ab") as f:
                f.write(orjson.dumps(fields) + b"\n")


class SyntheticProvider:
    name = "synthetic"

    def __init__(self, recorder: StreamRecorder | None = None) -> None:
        self.recorder = recorder or StreamRecorder()

    def info(self) -> ModelInfo:
        return ModelInfo(self.name, DEFAULT_MODEL)

    async def aclose(self) -> None:
        return None

    async def stream(
        self,
        messages: Sequence[ChatTurn],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[Token]:
        spec = parse_spec(model or DEFAULT_MODEL)
        question = next((t.content for t in reversed(messages) if t.role == "user"), "")
        limit = spec.tokens if max_tokens is None else min(spec.tokens, max_tokens)
        sent = burst = 0
        outcome = "closed"
        self.recorder.record(event="started", model=model, question=question)
        try:
            start = time.perf_counter()
            for i in range(limit):
                if spec.fail_after is not None and i == spec.fail_after:
                    outcome = "failed"
                    raise LlmProviderError(
                        spec.error_type or "llm_unavailable",
                        f"synthetic failure after {i} tokens",
                    )
                if spec.rate > 0:
                    delay = start + i / spec.rate - time.perf_counter()
                    if delay > TIMER_TICK_S:
                        await asyncio.sleep(delay)
                        burst = 0
                    elif burst >= MAX_BURST:
                        await asyncio.sleep(0)
                        burst = 0
                    burst += 1
                else:
                    await asyncio.sleep(0)
                now = time.time_ns()
                word = f"t{now}" if spec.stamp else _WORDS[i % len(_WORDS)]
                sent += 1
                yield Token(word + " ", stamp=now / 1e9)
            if spec.fail_after is not None and spec.fail_after >= limit:
                outcome = "failed"
                raise LlmProviderError(spec.error_type or "llm_unavailable", "synthetic failure")
            outcome = "completed"
            yield Token(
                "",
                usage=Usage(
                    prompt_tokens=sum(len(t.content.split()) for t in messages),
                    completion_tokens=sent,
                ),
                finish_reason="length" if limit < spec.tokens else "stop",
            )
        finally:
            self.recorder.record(event="closed", outcome=outcome, tokens=sent, question=question)
