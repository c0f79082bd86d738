"""What the provider is sent: a system prompt (with retrieved passages), history, the question.

History is trimmed to a token budget, oldest turns first; the system prompt and the new
message always stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.llm.base import ChatTurn
from app.llm.context import SYSTEM_PROMPT, Passage, format_context


def estimate_tokens(text: str) -> int:
    """About four characters a token for English text: close enough for a budget."""
    return len(text) // 4 + 1


def fit_history(history: Sequence[ChatTurn], budget: int) -> list[ChatTurn]:
    """The newest turns that fit in ``budget`` tokens, in their original order."""
    kept: list[ChatTurn] = []
    used = 0
    for turn in reversed(history):
        cost = estimate_tokens(turn.content)
        if used + cost > budget:
            break
        kept.append(turn)
        used += cost
    kept.reverse()
    # A provider expects the history to start with a user turn.
    while kept and kept[0].role != "user":
        kept.pop(0)
    return kept


def build_prompt(
    history: Sequence[ChatTurn],
    question: str,
    sources: Sequence[dict[str, Any]],
    *,
    token_budget: int,
) -> list[ChatTurn]:
    system = SYSTEM_PROMPT
    if sources:
        passages = [
            Passage(index=i + 1, filename=str(src["filename"]), text=str(src["text"]))
            for i, src in enumerate(sources)
        ]
        system = f"{SYSTEM_PROMPT}\n\n{format_context(passages)}"
    remaining = token_budget - estimate_tokens(system) - estimate_tokens(question)
    turns = [ChatTurn("system", system)]
    turns.extend(fit_history(history, max(0, remaining)))
    turns.append(ChatTurn("user", question))
    return turns
