from __future__ import annotations

import asyncio
import re
import time
from contextlib import aclosing

import pytest

from app.llm.base import ChatTurn, LlmProvider, LlmProviderError, Token
from app.llm.context import Passage, system_prompt_with_context
from app.llm.local_provider import LocalProvider, compose_answer

PASSAGES = [
    Passage(
        1,
        "handbook.pdf",
        "Full-time employees get 27 days of paid holiday per year. Holiday requests go "
        "through the HR portal.\nThe office opens at eight.",
    ),
    Passage(
        2,
        "refunds.md",
        "Customers can return unopened products within 45 days for a refund. Opened "
        "items are exchanged, not refunded.",
    ),
    Passage(3, "kitchen.md", "The espresso machine is descaled every Friday."),
]


def _turns(question: str, passages: list[Passage] | None = None) -> list[ChatTurn]:
    return [
        ChatTurn("system", system_prompt_with_context(passages or [])),
        ChatTurn("user", question),
    ]


async def _collect(
    provider: LocalProvider, turns: list[ChatTurn], max_tokens: int | None = None
) -> list[Token]:
    async with aclosing(provider.stream(turns, max_tokens=max_tokens)) as tokens:
        return [token async for token in tokens]


def test_it_is_an_llm_provider() -> None:
    provider = LocalProvider()
    assert isinstance(provider, LlmProvider)
    assert provider.name == "local"
    assert provider.info().default_model == "extractive"
    assert provider.info().provider == "local"


def test_answers_with_the_best_matching_sentence_and_its_citation() -> None:
    answer = compose_answer(_turns("How many paid holiday days does a full-timer get?", PASSAGES))
    assert answer.startswith("According to handbook.pdf:")
    assert "27 days of paid holiday per year [1]." in answer
    assert "[2]" not in answer and "[3]" not in answer


def test_cites_several_documents_when_the_question_spans_them() -> None:
    answer = compose_answer(_turns("refund for products, and paid holiday days", PASSAGES))
    assert "[1]" in answer and "[2]" in answer
    assert "handbook.pdf" in answer and "refunds.md" in answer
    assert len(re.findall(r"\[\d\]", answer)) <= 3


def test_headings_are_not_quoted_when_a_sentence_matches() -> None:
    passages = [Passage(1, "leave.md", "Paid holiday.\n\nEveryone gets 27 days of paid holiday.")]
    answer = compose_answer(_turns("How much paid holiday?", passages))
    assert answer == "According to leave.md: Everyone gets 27 days of paid holiday [1]."


def test_the_citation_uses_the_passage_number_not_its_position() -> None:
    passages = [Passage(7, "kitchen.md", "The espresso machine is descaled every Friday.")]
    assert "every Friday [7]." in compose_answer(
        _turns("When is the espresso machine descaled?", passages)
    )


def test_a_sentence_repeated_by_overlapping_chunks_is_quoted_once() -> None:
    text = "The espresso machine is descaled every Friday."
    passages = [Passage(1, "k.md", text), Passage(2, "k.md", f"{text} Other things.")]
    answer = compose_answer(_turns("espresso machine descaled", passages))
    assert answer.count("descaled every Friday") == 1


def test_a_question_the_passages_do_not_match_says_so() -> None:
    answer = compose_answer(_turns("What is the capital of Peru?", PASSAGES))
    assert answer.startswith(
        "I found nothing about that in handbook.pdf, refunds.md and kitchen.md."
    )
    assert "[1]" in answer  # points at the closest passage anyway


def test_without_passages_it_says_there_is_nothing_to_draw_on() -> None:
    answer = compose_answer(_turns("What is our refund policy?"))
    assert "no document passages to draw on" in answer
    assert "What is our refund policy?" in answer
    assert "[" not in answer


def test_without_passages_greetings_and_thanks_get_a_short_reply() -> None:
    assert compose_answer(_turns("Hi!")).startswith("Hello!")
    assert compose_answer(_turns("thanks, that helps")).startswith("You're welcome")


def test_without_any_user_turn() -> None:
    answer = compose_answer([ChatTurn("system", "sys")])
    assert "no question yet" in answer


def test_the_last_user_turn_is_the_question() -> None:
    turns = [
        ChatTurn("system", system_prompt_with_context(PASSAGES)),
        ChatTurn("user", "How many paid holiday days?"),
        ChatTurn("assistant", "27 [1]."),
        ChatTurn("user", "When is the espresso machine descaled?"),
    ]
    assert "[3]" in compose_answer(turns) and "[1]" not in compose_answer(turns)


def test_the_answer_is_deterministic() -> None:
    turns = _turns("refund products", PASSAGES)
    assert compose_answer(turns) == compose_answer(list(turns))


async def test_streams_word_by_word_and_the_words_make_the_answer() -> None:
    turns = _turns("When is the espresso machine descaled?", PASSAGES)
    tokens = await _collect(LocalProvider(delay_s=0), turns)
    assert len(tokens) > 3
    assert "".join(t.text for t in tokens) == compose_answer(turns)
    assert all(re.fullmatch(r"\S+\s*", t.text) for t in tokens)
    assert all(t.stamp is not None for t in tokens)


async def test_the_last_token_carries_usage_and_finish_reason() -> None:
    turns = _turns("When is the espresso machine descaled?", PASSAGES)
    tokens = await _collect(LocalProvider(delay_s=0), turns)
    last = tokens[-1]
    assert last.finish_reason == "stop"
    assert last.usage is not None
    assert last.usage.completion_tokens == len(tokens)
    assert last.usage.prompt_tokens == sum(len(t.content.split()) for t in turns)
    assert all(t.usage is None and t.finish_reason is None for t in tokens[:-1])


async def test_max_tokens_cuts_the_answer_with_finish_reason_length() -> None:
    tokens = await _collect(LocalProvider(delay_s=0), _turns("hello there friend"), max_tokens=4)
    assert len(tokens) == 4
    assert tokens[-1].finish_reason == "length"


async def test_max_tokens_below_one_is_a_bad_request() -> None:
    with pytest.raises(LlmProviderError) as info:
        await _collect(LocalProvider(delay_s=0), _turns("x"), max_tokens=0)
    assert info.value.error_type == "llm_bad_request"
    assert info.value.retryable is False


async def test_it_yields_to_the_event_loop_between_tokens() -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    tokens = await _collect(LocalProvider(delay_s=0), _turns("a question with no passages"))
    stop.set()
    await task
    assert ticks >= len(tokens) - 1


async def test_the_delay_paces_the_stream() -> None:
    turns = _turns("When is the espresso machine descaled?", PASSAGES)
    started = time.monotonic()
    tokens = await _collect(LocalProvider(delay_s=0.01), turns)
    assert time.monotonic() - started >= 0.01 * (len(tokens) - 1) * 0.9


async def test_closing_the_generator_stops_it_at_once() -> None:
    provider = LocalProvider(delay_s=10.0)  # without a prompt stop, this test would hang
    stream = provider.stream(_turns("a question"))
    first = await anext(stream)
    assert first.text
    await asyncio.wait_for(stream.aclose(), timeout=1.0)
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_cancelling_the_consumer_stops_it_at_once() -> None:
    provider = LocalProvider(delay_s=10.0)
    received: list[str] = []
    got_one = asyncio.Event()

    async def consume() -> None:
        async with aclosing(provider.stream(_turns("a question"))) as tokens:
            async for token in tokens:
                received.append(token.text)
                got_one.set()

    task = asyncio.create_task(consume())
    await got_one.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=1.0)
    assert len(received) == 1


def test_negative_delay_is_refused() -> None:
    with pytest.raises(ValueError):
        LocalProvider(delay_s=-1)
