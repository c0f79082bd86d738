"""The offline default provider: answers from the retrieved passages, with no model at all.

It reads the passages back out of the system prompt (:mod:`app.llm.context`), ranks their
sentences against the question with BM25, and quotes the best one to three, each with its
citation. The answer is deterministic and streams word by word, so the embedded mode
behaves like a real chat without a network or an API key::

    provider = LocalProvider()
    async with aclosing(provider.stream(turns)) as tokens:
        async for token in tokens:
            ...
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncGenerator, Sequence

from app.llm.base import ChatTurn, LlmProviderError, ModelInfo, Token, Usage
from app.llm.context import Passage, parse_context
from app.text.bm25 import rank_bm25
from app.text.sentences import split_sentences

DEFAULT_MODEL = "extractive"

_MAX_SENTENCES = 3
# A further sentence is quoted only if it matches about as well as the best one.
_RELATIVE_SCORE = 0.35
_MAX_QUOTE_CHARS = 300
_MIN_QUOTE_WORDS = 4
_MAX_ECHO_CHARS = 160
_WORD_TOKEN = re.compile(r"\S+\s*")
_SPACES = re.compile(r"\s+")
_GREETINGS = frozenset({"hi", "hello", "hey", "hallo", "howdy", "greetings", "yo", "morning"})
_THANKS = re.compile(r"^(?:thanks?|thank you|thx|cheers)\b", re.IGNORECASE)


class LocalProvider:
    """Extractive answers from the passages in the system prompt, streamed word by word.

    ``delay_s`` is the pause between words, so that a person sees the answer stream; 0
    only yields to the event loop. The model name is ignored: there is one behaviour.
    """

    name = "local"

    def __init__(self, *, delay_s: float = 0.01) -> None:
        if delay_s < 0:
            raise ValueError("delay_s must be >= 0")
        self._delay_s = delay_s

    def info(self) -> ModelInfo:
        return ModelInfo(provider=self.name, default_model=DEFAULT_MODEL, models=(DEFAULT_MODEL,))

    async def aclose(self) -> None:
        """Nothing to release: no connection, no model."""

    async def stream(
        self,
        messages: Sequence[ChatTurn],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
    ) -> AsyncGenerator[Token, None]:
        """Yield the answer one word (with its trailing whitespace) at a time.

        The last token carries the usage (word counts) and the finish reason: ``stop``, or
        ``length`` when ``max_tokens`` words cut the answer short.
        """
        if max_tokens is not None and max_tokens < 1:
            raise LlmProviderError("llm_bad_request", "max_tokens must be at least 1")
        words = _WORD_TOKEN.findall(compose_answer(messages))
        finish_reason = "stop"
        if max_tokens is not None and len(words) > max_tokens:
            words, finish_reason = words[:max_tokens], "length"
        usage = Usage(
            prompt_tokens=sum(len(turn.content.split()) for turn in messages),
            completion_tokens=len(words),
        )
        last = len(words) - 1
        for i, word in enumerate(words):
            if i == last:
                yield Token(word, usage=usage, finish_reason=finish_reason, stamp=time.time())
                return
            yield Token(word, stamp=time.time())
            await asyncio.sleep(self._delay_s)


def compose_answer(messages: Sequence[ChatTurn]) -> str:
    """The whole answer the provider streams for this conversation; never empty."""
    question = next((t.content for t in reversed(messages) if t.role == "user"), "")
    passages: list[Passage] = []
    for turn in messages:
        if turn.role == "system":
            passages = parse_context(turn.content) or passages
    if passages:
        return _answer_from_passages(question, passages)
    return _answer_without_passages(question)


def _answer_from_passages(question: str, passages: Sequence[Passage]) -> str:
    candidates: list[tuple[Passage, str]] = []
    seen: set[str] = set()
    for passage in passages:
        for sentence in split_sentences(passage.text):
            sentence = _SPACES.sub(" ", sentence)
            key = sentence.casefold()
            # Overlapping chunks repeat sentences; quote each one once.
            if key not in seen:
                seen.add(key)
                candidates.append((passage, sentence))
    # Headings ("Annual leave.") match a question's words but answer nothing.
    candidates = [c for c in candidates if len(c[1].split()) >= _MIN_QUOTE_WORDS] or candidates
    ranked = rank_bm25(question, [sentence for _, sentence in candidates])
    if not ranked:
        names = _join_names([p.filename for p in passages])
        if not candidates:
            return f"The passages from {names} are empty, so I cannot answer from them."
        passage, sentence = candidates[0]
        return (
            f"I found nothing about that in {names}. The closest passage, from "
            f"{passage.filename}, begins: {_cite(sentence, passage.index)}"
        )
    best = ranked[0][1]
    chosen = [
        candidates[i] for i, score in ranked[:_MAX_SENTENCES] if score >= best * _RELATIVE_SCORE
    ]
    names = _join_names([p.filename for p, _ in chosen])
    quotes = " ".join(_cite(sentence, passage.index) for passage, sentence in chosen)
    return f"According to {names}: {quotes}"


def _answer_without_passages(question: str) -> str:
    asked = _SPACES.sub(" ", question).strip()
    if not asked:
        return (
            "I have no document passages to draw on, and there is no question yet. "
            "Ask me about the documents in this workspace."
        )
    first_word = re.sub(r"\W", "", asked.split(" ", 1)[0]).casefold()
    if first_word in _GREETINGS and len(asked.split()) <= 4:
        return (
            "Hello! I am the offline assistant of this workspace: I answer from its "
            "documents, with citations. I have no document passages to draw on for this "
            "message, so upload a document or ask me about one."
        )
    if _THANKS.match(asked):
        return "You're welcome! Ask me anything about the documents in this workspace."
    return (
        "I have no document passages to draw on for your question "
        f"(“{_shorten(asked, _MAX_ECHO_CHARS)}”). I am the offline assistant and answer "
        "only from the documents in this workspace: upload a PDF, HTML, Markdown or text "
        "file, or ask about one that is already there, and I will answer with citations."
    )


def _cite(sentence: str, index: int) -> str:
    """The sentence with its citation before its final punctuation: ``… 30 days [1].``"""
    sentence = _shorten(sentence, _MAX_QUOTE_CHARS)
    match = re.search(r"[.!?…]+[\"'”’)\]]*\Z", sentence)
    if match is None:
        return f"{sentence} [{index}]."
    body, end = sentence[: match.start()], match.group()
    return f"{body} [{index}]{end}"


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut + "…"


def _join_names(filenames: Sequence[str]) -> str:
    names = list(dict.fromkeys(filenames))  # unique, in order of first mention
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]
