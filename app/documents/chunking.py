"""Splitting a document's text into overlapping chunks for retrieval.

Chunks follow the text's own structure: paragraphs (separated by blank lines) are packed
whole up to the size; a paragraph longer than the size is cut between sentences, a
sentence longer than the size between words, and only a word longer than the size in the
middle. Each chunk after the first repeats about ``overlap_chars`` of the end of the one
before, in whole sentences (or whole words when one sentence is too long), so a fact
that straddles a boundary is still found in one piece::

    chunks = chunk_text(text, size_chars=1200, overlap_chars=200)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.text.sentences import split_sentences

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\f\v]*\n\s*")
_PARAGRAPH_SEP = "\n\n"
_SENTENCE_SEP = " "


@dataclass(frozen=True, slots=True)
class _Piece:
    """A unit the packer never cuts, and what joins it to the piece before."""

    text: str
    sep: str


def chunk_text(text: str, *, size_chars: int, overlap_chars: int) -> list[str]:
    """``text`` cut into chunks of at most ``size_chars`` characters, none empty.

    Deterministic: the same text and sizes give the same chunks.
    """
    if size_chars <= 0:
        raise ValueError("size_chars must be positive")
    if not 0 <= overlap_chars < size_chars:
        raise ValueError("overlap_chars must be >= 0 and smaller than size_chars")
    pieces = _pieces(text, size_chars)
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if not current:
            current = piece.text
            continue
        candidate = current + piece.sep + piece.text
        if len(candidate) <= size_chars:
            current = candidate
            continue
        chunks.append(current)
        # Room for the overlap: what the size leaves after this piece and its separator.
        room = size_chars - len(piece.text) - len(piece.sep)
        overlap = _tail(current, min(overlap_chars, room))
        current = overlap + piece.sep + piece.text if overlap else piece.text
    if current:
        chunks.append(current)
    return chunks


def _pieces(text: str, size: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    for paragraph in _PARAGRAPH_BREAK.split(text.replace("\r\n", "\n").replace("\r", "\n")):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= size:
            pieces.append(_Piece(paragraph, _PARAGRAPH_SEP))
            continue
        first = True
        for part in _split_long(paragraph, size):
            pieces.append(_Piece(part, _PARAGRAPH_SEP if first else _SENTENCE_SEP))
            first = False
    return pieces


def _split_long(paragraph: str, size: int) -> list[str]:
    """Sentences of at most ``size``; longer ones as runs of words; longer words cut."""
    parts: list[str] = []
    for sentence in split_sentences(paragraph):
        if len(sentence) <= size:
            parts.append(sentence)
            continue
        for word in sentence.split():
            while len(word) > size:
                parts.append(word[:size])
                word = word[size:]
            if word:
                parts.append(word)
    # Words and short sentences are packed back together later; here they stay apart so
    # that the overlap can start at any of them.
    return parts


def _tail(chunk: str, limit: int) -> str:
    """The longest run of whole sentences (else whole words) ending ``chunk``, ≤ ``limit``."""
    if limit <= 0:
        return ""
    last_paragraph = chunk.rsplit(_PARAGRAPH_SEP, 1)[-1]
    sentences = split_sentences(last_paragraph)
    taken: list[str] = []
    length = 0
    for sentence in reversed(sentences):
        extra = len(sentence) + (1 if taken else 0)
        if length + extra > limit:
            break
        taken.append(sentence)
        length += extra
    if taken:
        return _SENTENCE_SEP.join(reversed(taken))
    words: list[str] = []
    length = 0
    for word in reversed(last_paragraph.split()):
        extra = len(word) + (1 if words else 0)
        if length + extra > limit:
            break
        words.append(word)
        length += extra
    return _SENTENCE_SEP.join(reversed(words))
