"""Explanation fields of a non-separation on synthetic cases with known answers."""

import pytest
import torch

from interpeq.reproduce.explain import explain_pair, null_widths, readings

LAYOUT = [(3, 4), (3, 4)]  # two stages, 2 blocks each, d_model 4: 24 columns


def test_readings_partition_the_columns():
    r = readings(LAYOUT)
    assert r["embedding"] == (0, 4) and r["stage0"] == (4, 12) and r["stage1"] == (12, 24)
    assert r["stage1/layer0"] == (12, 16) and r["stage0/layer2"] == (8, 12)


def _pair(shared: slice, seed: int, n: int = 400):
    """Two representations that share exactly the columns ``shared``, noise elsewhere."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 24, generator=g, dtype=torch.float64)
    b = torch.randn(n, 24, generator=g, dtype=torch.float64)
    b[:, shared] = a[:, shared]
    return a, b


def _rows(d_ab: float, draws: float, min_p: float, decision: str) -> list[dict]:
    return [
        {"d_ab": d_ab, "d_a_impls": [draws] * 5, "d_b_impls": [draws * 1.1] * 5,
         "min_p_value": min_p, "decision": decision}
    ] * 3  # fmt: skip


def test_similarity_shared_only_through_the_embedding_is_attributed_to_it():
    pairs = [_pair(slice(0, 4), s) for s in range(2)]
    e = explain_pair(_rows(0.5, 0.6, 0.02, "equivalent"), pairs, LAYOUT, LAYOUT)
    sims = e["similarity"]
    assert sims["embedding"] > 0.99
    assert sims["stage0"] < 0.2 and sims["stage1"] < 0.2
    assert sims["stage0/layer0"] > 0.99 and sims["stage1/layer2"] < 0.2
    assert "shared input embedding" in e["why"] and "wide null" in e["why"]
    assert not e["undecidable"] and e["decisions"] == {"equivalent": 3}
    assert e["null_over_pair_a"] == pytest.approx(1.2)


def test_similarity_from_a_stage_is_attributed_to_the_stage():
    pairs = [_pair(slice(12, 24), s) for s in range(2)]  # stage 1 shared, embedding not
    e = explain_pair(_rows(0.5, 0.2, 0.02, "equivalent"), pairs, LAYOUT, LAYOUT)
    assert e["top_stage"] == "stage1" and e["similarity"]["embedding"] < 0.2
    assert "stages read alike (stage1" in e["why"] and "wide null" not in e["why"]


def test_undecidable_pairs_are_named_and_shorter_chains_compare_shared_stages():
    rows = _rows(0.3, 0.2, 0.25, "undecidable")
    w = null_widths(rows, alpha=0.05)
    assert w["undecidable"] and w["min_p_value"] == 0.25 and w["pair_distance"] == 0.3
    a, b = _pair(slice(0, 4), 0)
    e = explain_pair(rows, [(a, b[:, :12])], LAYOUT, LAYOUT[:1])
    assert "stage1" not in e["similarity"] and e["why"].startswith("undecidable at this size")
    with pytest.raises(ValueError, match="layout gives"):
        explain_pair(rows, [(a, b)], LAYOUT, LAYOUT[:1])


def test_a_side_without_a_null_is_named_not_a_crash():
    rows = [{**r, "d_a_impls": []} for r in _rows(0.5, 0.6, 0.02, "equivalent")]
    w = null_widths(rows, alpha=0.05)
    assert w["null_a"] is None and w["null_over_pair_a"] is None and w["null_b"] is not None
    e = explain_pair(rows, [_pair(slice(0, 4), 0)], LAYOUT, LAYOUT)
    assert "no null on side a (a group of fewer than 4 converged units" in e["why"]
