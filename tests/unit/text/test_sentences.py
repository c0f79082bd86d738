from __future__ import annotations

from app.text.sentences import split_sentences


def test_splits_after_terminal_punctuation() -> None:
    text = 'It rained. Did it? "Yes!" Then (briefly.) it stopped… Later  it cleared'
    assert split_sentences(text) == [
        "It rained.",
        "Did it?",
        '"Yes!"',
        "Then (briefly.)",
        "it stopped…",
        "Later  it cleared",
    ]


def test_no_split_inside_numbers_or_without_following_space() -> None:
    assert split_sentences("Version 3.14 shipped.Then more") == ["Version 3.14 shipped.Then more"]


def test_line_breaks_inside_a_sentence_stay() -> None:
    assert split_sentences("A sentence\nwrapped by a PDF. Next.") == [
        "A sentence\nwrapped by a PDF.",
        "Next.",
    ]


def test_blank_input_gives_nothing() -> None:
    assert split_sentences("") == []
    assert split_sentences("  \n ") == []
