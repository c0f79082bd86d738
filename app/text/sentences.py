"""Sentence splitting shared by the chunker and the offline ``local`` provider.

A light rule, not a linguistic model: a sentence ends at ``.``, ``!``, ``?`` or ``…``
(optionally followed by a closing quote or bracket) that is followed by whitespace. It
errs towards splitting too often (``e.g. this``), which costs the chunker nothing: it
packs sentences back together up to its size.
"""

from __future__ import annotations

import re

# Two fixed-width look-behinds because ``re`` allows no variable-width one.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)\]]))\s+")


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, stripped, in order; no empty strings.

    Whitespace inside a sentence (a PDF's line breaks) is kept as it was.
    """
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
