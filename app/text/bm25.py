"""BM25 ranking written out by hand, so that retrieval is the same on SQLite and PostgreSQL.

The tokenizer lowercases, keeps unicode word characters, drops a small English stopword
list and strips the commonest English suffixes (plural ``-s``/``-es``/``-ies``, ``-ing``,
``-ed``). The stemmer is deliberately light: it only has to make "refunds", "refunded"
and "refunding" meet "refund", not to be linguistically right::

    ranked = rank_bm25("how long is the refund window?", chunk_texts)
    best_index, best_score = ranked[0]
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_WORD = re.compile(r"\w+")

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your
    yours yourself yourselves s t d ll m re ve
    """.split()
)

_VOWELS = frozenset("aeiouy")
# Doubled final consonants that "-ing"/"-ed" created (running → run); "ll", "ss", "zz" stay.
_UNDOUBLE = frozenset("bdfgmnprt")


def stem(word: str) -> str:
    """Strip one common English suffix from a lowercased word.

    Consistent rather than correct: "baked", "baking" and "bake" all become "bak".
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith(("ches", "shes", "xes", "zes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    elif word.endswith("ied") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("eed") and len(word) > 4:
        word = word[:-1]
    elif word.endswith("ing") and len(word) > 5 and _has_vowel(word[:-3]):
        word = _undouble(word[:-3])
    elif word.endswith("ed") and len(word) > 4 and _has_vowel(word[:-2]):
        word = _undouble(word[:-2])
    if len(word) > 3 and word.endswith("e") and not word.endswith("ee"):
        word = word[:-1]
    return word


def _has_vowel(stem_part: str) -> bool:
    return any(c in _VOWELS for c in stem_part)


def _undouble(word: str) -> str:
    if len(word) > 2 and word[-1] == word[-2] and word[-1] in _UNDOUBLE:
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """The searchable terms of ``text``, in order, stopwords dropped and stemmed."""
    return [stem(w) for w in _WORD.findall(text.casefold()) if w not in STOPWORDS]


def rank_bm25(
    query: str, docs: Sequence[str], *, k1: float = 1.5, b: float = 0.75
) -> list[tuple[int, float]]:
    """Indices of ``docs`` with a positive BM25 score for ``query``, best first.

    Ties keep the documents' order, so the ranking is deterministic. Each distinct query
    term counts once: repeating a word in the question does not outweigh the others. The
    idf is the non-negative form ``ln(1 + (N - df + 0.5) / (df + 0.5))``, so a term found
    in every document still counts a little instead of pushing scores below zero.
    """
    if k1 < 0 or not 0.0 <= b <= 1.0:
        raise ValueError("k1 must be >= 0 and b within [0, 1]")
    terms = set(tokenize(query))
    if not terms or not docs:
        return []
    tokenized = [tokenize(d) for d in docs]
    lengths = [len(t) for t in tokenized]
    total = sum(lengths)
    if total == 0:
        return []
    avg_len = total / len(docs)
    counts = [Counter(t) for t in tokenized]
    n_docs = len(docs)
    idf: dict[str, float] = {}
    for term in terms:
        df = sum(1 for c in counts if term in c)
        if df:
            idf[term] = math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
    if not idf:
        return []
    scored: list[tuple[int, float]] = []
    for i, (tf, length) in enumerate(zip(counts, lengths, strict=True)):
        norm = k1 * (1.0 - b + b * length / avg_len)
        score = 0.0
        for term, weight in idf.items():
            f = tf.get(term, 0)
            if f:
                score += weight * f * (k1 + 1.0) / (f + norm)
        if score > 0.0:
            scored.append((i, score))
    scored.sort(key=lambda item: (-item[1], item[0]))
    return scored
