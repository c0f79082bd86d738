from __future__ import annotations

import pytest

from app.text.bm25 import rank_bm25, stem, tokenize


def test_tokenize_lowercases_drops_stopwords_and_stems() -> None:
    assert tokenize("The Cats were RUNNING to their boxes!") == ["cat", "run", "box"]


def test_tokenize_keeps_unicode_words_and_numbers() -> None:
    assert tokenize("Größe 42 über Ærø, naïve") == [
        "gröss",
        "42",
        "über",
        "ærø",
        "naïv",
    ]  # casefold: ß is ss


def test_tokenize_of_punctuation_or_stopwords_only_is_empty() -> None:
    assert tokenize("... !!! ???") == []
    assert tokenize("it is what it is") == []


@pytest.mark.parametrize(
    ("words", "root"),
    [
        (["refund", "refunds", "refunded", "refunding"], "refund"),
        (["bake", "baked", "baking", "bakes"], "bak"),
        (["study", "studies", "studied"], "study"),
        (["run", "running", "runs"], "run"),
        (["agree", "agreed", "agrees"], "agree"),
        (["class", "classes"], "class"),
    ],
)
def test_stem_brings_inflections_together(words: list[str], root: str) -> None:
    assert {stem(w) for w in words} == {root}


def test_stem_leaves_short_words_and_non_plurals_alone() -> None:
    assert stem("bus") == "bus"
    assert stem("status") == "status"
    assert stem("analysis") == "analysis"
    assert stem("gas") == "gas"


def test_rank_orders_by_relevance() -> None:
    docs = [
        "The cafeteria serves lunch from noon.",
        "Refunds are issued within thirty days of purchase.",
        "A refund needs the original receipt; refunds for gift cards are not possible.",
        "Parking is free for employees.",
    ]
    ranked = rank_bm25("how do I get a refund for my purchase", docs)
    assert [i for i, _ in ranked] == [1, 2]
    assert ranked[0][1] > ranked[1][1] > 0


def test_rare_terms_weigh_more_than_common_ones() -> None:
    docs = ["policy office", "policy office", "policy office", "policy parking"]
    ranked = rank_bm25("parking policy", docs)
    assert ranked[0][0] == 3


def test_longer_documents_are_normalised() -> None:
    short = "llama wool"
    long = "llama " + " ".join(f"filler{i}" for i in range(50))
    ranked = rank_bm25("llama", [long, short])
    assert [i for i, _ in ranked] == [1, 0]
    # With b=0 the length no longer matters: the two tie and keep document order.
    flat = rank_bm25("llama", [long, short], b=0.0)
    assert [i for i, _ in flat] == [0, 1]
    assert flat[0][1] == pytest.approx(flat[1][1])


def test_only_positive_scores_are_returned() -> None:
    assert rank_bm25("volcano", ["a b c", "d e f"]) == []
    assert rank_bm25("the of and", ["the of and"]) == []
    assert rank_bm25("anything", []) == []
    assert rank_bm25("anything", ["", "  "]) == []


def test_a_term_in_every_document_still_counts() -> None:
    ranked = rank_bm25("report", ["report one", "report two"])
    assert len(ranked) == 2 and all(score > 0 for _, score in ranked)


def test_repeating_a_query_word_does_not_change_the_ranking() -> None:
    docs = ["apple pie", "banana bread", "apple banana"]
    assert rank_bm25("apple apple apple banana", docs) == rank_bm25("apple banana", docs)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        rank_bm25("x", ["x"], k1=-1)
    with pytest.raises(ValueError):
        rank_bm25("x", ["x"], b=1.5)
