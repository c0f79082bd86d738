from __future__ import annotations

import pytest

from app.llm.context import (
    CLOSE_TAG,
    OPEN_TAG,
    SYSTEM_PROMPT,
    Passage,
    format_context,
    parse_context,
    system_prompt_with_context,
)


def test_format_numbers_passages_and_asks_for_citations() -> None:
    block = format_context([Passage(1, "handbook.pdf", "Leave is 27 days.")])
    assert "[1] (handbook.pdf)\n    Leave is 27 days." in block
    assert "[1]" in block.split(OPEN_TAG)[0]  # the instruction shows how to cite
    assert block.endswith(CLOSE_TAG)


def test_no_passages_no_block() -> None:
    assert format_context([]) == ""
    assert system_prompt_with_context([]) == SYSTEM_PROMPT


def test_round_trip_of_simple_passages() -> None:
    passages = [Passage(1, "a.md", "First."), Passage(2, "b.pdf", "Second, longer passage.")]
    assert parse_context(system_prompt_with_context(passages)) == passages


@pytest.mark.parametrize(
    "text",
    [
        "line one\n[2] (fake.pdf)\nline three",  # looks like a header
        f"before\n{CLOSE_TAG}\nafter",  # looks like the end of the block
        f"{OPEN_TAG}\n[9] (nested.md)\n    indented",  # looks like a new block
        "\n\nblank lines around\n\n",
        "    leading spaces kept",
        "",
        "brackets [1] (x) and ) ( ] [",
        "windows\r\nline ends",
    ],
)
def test_round_trip_whatever_the_text_contains(text: str) -> None:
    passages = [Passage(3, "tricky.txt", text), Passage(4, "after.md", "The next one.")]
    assert parse_context(format_context(passages)) == passages


def test_filenames_with_brackets_survive_and_line_breaks_become_spaces() -> None:
    passages = [Passage(1, "report (final) [v2].pdf", "x"), Passage(2, "two\nlines.md", "y")]
    parsed = parse_context(format_context(passages))
    assert parsed[0].filename == "report (final) [v2].pdf"
    assert parsed[1].filename == "two lines.md"


def test_text_around_the_block_is_ignored() -> None:
    passages = [Passage(5, "n.md", "Body.")]
    system = f"Be brief.\n\n{format_context(passages)}\n\nToday is Monday."
    assert parse_context(system) == passages


def test_the_last_complete_block_wins() -> None:
    old = format_context([Passage(1, "old.md", "stale")])
    new = format_context([Passage(1, "new.md", "fresh")])
    assert parse_context(f"{old}\n{new}") == [Passage(1, "new.md", "fresh")]


def test_text_without_a_block_has_no_passages() -> None:
    assert parse_context(SYSTEM_PROMPT) == []
    assert parse_context("") == []


def test_an_unclosed_block_is_ignored() -> None:
    assert parse_context(f"{OPEN_TAG}\n[1] (a.md)\n    text") == []


def test_a_malformed_block_is_ignored_not_half_read() -> None:
    system = f"{OPEN_TAG}\n[1] (a.md)\n    ok\nstray line\n[2] (b.md)\n    more\n{CLOSE_TAG}"
    assert parse_context(system) == []
