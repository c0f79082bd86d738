from __future__ import annotations

import itertools
import re

import pytest

from app.documents.chunking import chunk_text


def _words(text: str) -> list[str]:
    return text.split()


def _paragraph(n: int, sentences: int) -> str:
    return " ".join(f"Paragraph {n} sentence {i} says something." for i in range(sentences))


def test_short_text_is_one_chunk() -> None:
    assert chunk_text("Just one line.", size_chars=100, overlap_chars=20) == ["Just one line."]


def test_empty_or_blank_text_gives_no_chunks() -> None:
    assert chunk_text("", size_chars=100, overlap_chars=10) == []
    assert chunk_text(" \n\n\t\n ", size_chars=100, overlap_chars=10) == []


def test_paragraphs_are_packed_whole_up_to_the_size() -> None:
    paragraphs = ["A" * 30, "B" * 30, "C" * 30, "D" * 30]
    chunks = chunk_text("\n\n".join(paragraphs), size_chars=70, overlap_chars=0)
    assert chunks == ["A" * 30 + "\n\n" + "B" * 30, "C" * 30 + "\n\n" + "D" * 30]


def test_blank_lines_with_spaces_and_crlf_separate_paragraphs() -> None:
    text = "First para.\r\n \r\nSecond para.\n\t\n\nThird."
    chunks = chunk_text(text, size_chars=12, overlap_chars=0)
    assert chunks == ["First para.", "Second para.", "Third."]


def test_no_chunk_exceeds_the_size_and_none_is_empty() -> None:
    text = "\n\n".join(_paragraph(n, n % 5 + 1) for n in range(30))
    for size, overlap in [(80, 20), (200, 50), (500, 0), (1200, 200)]:
        chunks = chunk_text(text, size_chars=size, overlap_chars=overlap)
        assert chunks
        assert all(0 < len(c) <= size for c in chunks)
        assert all(c == c.strip() for c in chunks)


def test_all_text_is_covered_in_order() -> None:
    text = "\n\n".join(_paragraph(n, n % 4 + 1) for n in range(20))
    chunks = chunk_text(text, size_chars=150, overlap_chars=40)
    # Every sentence appears, and the first appearances follow the text's order.
    sentences = re.findall(r"Paragraph \d+ sentence \d+ says something\.", text)
    joined = "\n".join(chunks)
    positions = [joined.find(s) for s in sentences]
    assert all(p >= 0 for p in positions)
    assert positions == sorted(positions)


def test_a_long_paragraph_splits_at_sentence_boundaries() -> None:
    text = _paragraph(1, 10)  # ~380 characters, sentences of ~37
    chunks = chunk_text(text, size_chars=100, overlap_chars=0)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.startswith("Paragraph 1 sentence")
        assert chunk.endswith("says something.")


def test_consecutive_chunks_overlap_by_whole_sentences() -> None:
    text = _paragraph(1, 12)
    chunks = chunk_text(text, size_chars=120, overlap_chars=45)
    assert len(chunks) > 2
    for previous, current in itertools.pairwise(chunks):
        last_sentence = re.findall(r"Paragraph 1 sentence \d+ says something\.", previous)[-1]
        assert current.startswith(last_sentence)


def test_overlap_zero_means_no_repetition() -> None:
    text = _paragraph(1, 12)
    chunks = chunk_text(text, size_chars=120, overlap_chars=0)
    assert sum(len(_words(c)) for c in chunks) == len(_words(text))


def test_a_sentence_longer_than_the_size_splits_between_words() -> None:
    sentence = " ".join(f"word{i}" for i in range(60))  # no sentence end at all
    chunks = chunk_text(sentence, size_chars=50, overlap_chars=12)
    assert all(len(c) <= 50 for c in chunks)
    # No word is cut: each chunk is made of whole words of the original.
    originals = set(_words(sentence))
    assert all(set(_words(c)) <= originals for c in chunks)
    # The overlap is whole words from the previous chunk's end.
    for previous, current in itertools.pairwise(chunks):
        assert current.split()[0] in previous.split()[-3:]


def test_a_word_longer_than_the_size_is_cut() -> None:
    chunks = chunk_text("x" * 25 + " tail", size_chars=10, overlap_chars=3)
    assert chunks[:2] == ["x" * 10, "x" * 10]
    assert "".join(c.split()[0] for c in chunks[:3]) == "x" * 25
    assert all(len(c) <= 10 for c in chunks)


def test_chunking_is_deterministic() -> None:
    text = "\n\n".join(_paragraph(n, 7) for n in range(10))
    first = chunk_text(text, size_chars=300, overlap_chars=60)
    assert first == chunk_text(text, size_chars=300, overlap_chars=60)


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (-5, 0), (100, 100), (100, -1)])
def test_bad_sizes_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_text("text", size_chars=size, overlap_chars=overlap)
