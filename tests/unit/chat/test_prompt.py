"""Prompt building: the history fits the budget; the system prompt and question always stay."""

from __future__ import annotations

from app.chat.prompt import build_prompt, estimate_tokens, fit_history
from app.llm.base import ChatTurn
from app.llm.context import parse_context


def turns(n: int, size: int = 400) -> list[ChatTurn]:
    return [ChatTurn("user" if i % 2 == 0 else "assistant", f"{i}:" + "x" * size) for i in range(n)]


def test_the_oldest_turns_drop_first() -> None:
    history = turns(10)
    kept = fit_history(history, budget=estimate_tokens(history[0].content) * 3)
    # The newest three fit; the oldest of them is an assistant turn, dropped so the
    # history starts with the user.
    assert kept == history[-2:]


def test_nothing_fits_in_a_zero_budget_but_the_question_stays() -> None:
    prompt = build_prompt(turns(4), "the question?", [], token_budget=0)
    assert [t.role for t in prompt] == ["system", "user"]
    assert prompt[-1].content == "the question?"


def test_a_generous_budget_keeps_everything_in_order() -> None:
    history = turns(6, size=10)
    prompt = build_prompt(history, "q", [], token_budget=10_000)
    assert prompt[1:-1] == history


def test_sources_go_into_the_system_prompt_numbered_and_can_be_read_back() -> None:
    sources = [
        {"filename": "a.txt", "text": "Alpha fact.\n[2] looks like a header"},
        {"filename": "b.md", "text": "Beta fact."},
    ]
    prompt = build_prompt([], "q", sources, token_budget=1000)
    passages = parse_context(prompt[0].content)
    assert [(p.index, p.filename, p.text) for p in passages] == [
        (1, "a.txt", "Alpha fact.\n[2] looks like a header"),
        (2, "b.md", "Beta fact."),
    ]
