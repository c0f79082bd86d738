from __future__ import annotations

import math

import pytest

from app.rag.fusion import cosine, reciprocal_rank_fusion


def test_rrf_rewards_items_ranked_well_by_several_lists() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1, 4]], k=60)
    assert [item for item, _ in fused] == [1, 3, 2, 4]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[-1][1] == pytest.approx(1 / 63)


def test_rrf_ties_keep_first_seen_order() -> None:
    fused = reciprocal_rank_fusion([[7, 8], [8, 7]])
    assert [item for item, _ in fused] == [7, 8]
    assert fused[0][1] == pytest.approx(fused[1][1])


def test_rrf_counts_a_repeated_item_once_per_ranking() -> None:
    fused = dict(reciprocal_rank_fusion([[5, 5, 6]], k=0))
    assert fused[5] == pytest.approx(1.0)
    assert fused[6] == pytest.approx(1 / 3)


def test_rrf_of_nothing_is_nothing() -> None:
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], []]) == []


def test_rrf_refuses_negative_k() -> None:
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([[1]], k=-1)


def test_cosine_values() -> None:
    assert cosine([1.0, 0.0], [1.0, 0.0]) == pytest.approx(1.0)
    assert cosine([1.0, 0.0], [0.0, 2.0]) == pytest.approx(0.0)
    assert cosine([1.0, 2.0], [-1.0, -2.0]) == pytest.approx(-1.0)
    assert cosine([1.0, 1.0], [1.0, 0.0]) == pytest.approx(1 / math.sqrt(2))


def test_cosine_of_a_zero_vector_is_zero() -> None:
    assert cosine([0.0, 0.0], [1.0, 2.0]) == 0.0
    assert cosine([], []) == 0.0


def test_cosine_refuses_vectors_of_different_length() -> None:
    with pytest.raises(ValueError, match="length"):
        cosine([1.0], [1.0, 2.0])
