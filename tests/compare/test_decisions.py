"""What users see is what the test decided: colours and summaries follow the p-value,
and a model compared with itself is reported as identical, not scored."""

import math

import numpy as np
import torch

from interpeq.compare.result import CompareResult, summarize
from interpeq.equivalence import Unit, group_pairs, pairwise_congruity
from interpeq.report.plots import decision_colours
from interpeq.report.summary_plots import equivalence_curves
from tests.equivalence.synthetic import fake_cross

M = 40


def units_with_nulls(spread_a: torch.Tensor, spread_b: torch.Tensor) -> list[Unit]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 12, generator=gen)
    y = x @ torch.randn(12, 12, generator=gen) + 0.05 * torch.randn(300, 12, generator=gen)
    out = []
    for name, reprs, spread in (("a", x, spread_a), ("b", y, spread_b)):
        u = Unit(name, "g", reprs, torch.zeros(M, *reprs.shape))
        u.self_d = spread.double()  # the co-implementation distances, as if drawn
        out.append(u)
    return out


def test_decision_colours_are_red_when_rejected_and_green_when_not():
    rgba = decision_colours(np.array([[np.nan, 0.02], [0.6, np.nan]]), alpha=0.05)
    red, green, grey = rgba[0, 1], rgba[1, 0], rgba[0, 0]
    assert red[0] > 0.6 and red[1] < 0.4  # rejected: red
    assert green[1] > red[1] and green[1] > green[0]  # judged equivalent: green
    assert np.allclose(grey[:3], grey[0])  # untested: grey


def test_asymmetric_nulls_are_shown_as_rejected_not_as_congruent():
    # a's draws spread widely, b's barely move: p ~ 0.5, two-sided congruity ~ 1, yet the
    # b direction says b's null never reaches d(a, b): the test rejects
    units = units_with_nulls(torch.linspace(0.0, 1.0, M), torch.full((M,), 1e-5))
    (row,) = pairwise_congruity(units, [(0, 1)], alpha=0.05, impls="intervention")
    assert row["congruity"] > 0.9 and row["reject"] and row["p_value"] <= 0.05
    colour = decision_colours(np.array([[row["p_value"]]]), alpha=0.05)[0, 0]
    assert colour[0] > colour[1]  # drawn red, although congruity is ~1
    groups = group_pairs([row])
    settings = {"zoo": "z", "against": None, "alpha": 0.05, "m": M, "n_probes": 300}
    result = CompareResult(None, {}, [row], groups, summarize([row], units, settings), [], [], None)
    text = result.summary_text()
    assert "within-group pairs rejected  100.0%" in text
    assert "  1 / 1" in text.splitlines()[-3]  # the group table leads with the decision


def test_a_model_compared_with_itself_is_identical_not_scored():
    a, b = units_with_nulls(torch.linspace(0.0, 1.0, M), torch.linspace(0.0, 1.0, M))
    twin = Unit("a-again", "g", a.reprs.clone(), a.impls, self_d=a.self_d)
    rows = pairwise_congruity([a, twin, b], [(0, 1), (0, 2)], alpha=0.05, impls="intervention")
    same, other = rows
    assert same["identical"] and not same["reject"] and math.isnan(same["congruity"])
    assert not other["identical"] and not math.isnan(other["congruity"])
    (group,) = group_pairs(rows)
    assert group["n_identical"] == 1 and group["n_pairs"] == 1
    settings = {"zoo": "z", "against": "z", "alpha": 0.05, "m": M, "n_probes": 300}
    summary = summarize(rows, [a, twin, b], settings)
    assert summary["n_identical"] == 1 and summary["within_mean"] == other["congruity"]


def test_equivalence_curve_has_one_axis_per_quantity(tmp_path):
    rows = [
        {"step": s, "congruity": c, "ci_low": c - 0.1, "ci_high": c + 0.1, "rejection_rate": r}
        for s, c, r in ((0, 0.7, 0.0), (50, 0.4, 0.5), (100, 0.1, 1.0))
    ]
    path = equivalence_curves({"ref": rows}, tmp_path / "curve.png")
    assert path.stat().st_size > 10_000
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.shape[0] > img.shape[1] * 0.7  # two stacked panels


def test_compare_warns_about_a_narrow_raw_null_and_a_group_too_small_to_calibrate():
    import pytest

    from interpeq.compare.run import _narrow_nulls

    gen = torch.Generator().manual_seed(1)
    base = torch.randn(200, 8, generator=gen)
    units = []
    for group, k in (("narrow", 4), ("normal", 4), ("small", 2)):
        for i in range(k):
            reprs = base + 0.3 * torch.randn(200, 8, generator=gen)
            units.append(Unit(f"{group}{i}", group, reprs, torch.zeros(M, 200, 8)))
    n = len(units)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    rows = [{"similarity": 0.8} for _ in pairs]  # between members: distance 0.2
    for u in units:
        u.self_d = torch.full((M,), 1e-4) if u.group == "narrow" else torch.linspace(0.05, 0.4, M)
    with pytest.warns(RuntimeWarning, match=r"narrower than retraining in narrow \(") as caught:
        spread = _narrow_nulls(units, pairs, rows, "intervention")
    assert "normal" not in str(caught[0].message)
    assert {g["group"]: g["narrow"] for g in spread} == {
        "narrow": True, "normal": False, "small": False
    }  # fmt: skip
    with pytest.warns(RuntimeWarning, match=r"no calibrated null in small \(2 member") as caught:
        _narrow_nulls(units, pairs, rows, "auto")
    assert len(caught) == 1 and "narrow" not in str(caught[0].message)


def _synthetic_zoo(n: int, narrow: bool, between: float, across: float, seed: int):
    """Two groups of ``n`` exchangeable units: group "n" with draws that barely move
    (``narrow``) or draws like its between-member distances; group "w" always normal.
    Similarities come from a fake ``cross`` (pairwise_congruity's hook for them)."""
    gen = torch.Generator().manual_seed(seed)
    units = []
    for g in ("n", "w"):
        for k in range(n):
            u = Unit(f"{g}{k}", g, torch.randn(4, 2, generator=gen), torch.zeros(M, 4, 2))
            spread = 1e-4 * torch.rand(M, generator=gen) if g == "n" and narrow else None
            u.self_d = (
                spread if spread is not None else between * (0.5 + torch.rand(M, generator=gen))
            )
            units.append(u)
    return units, fake_cross(gen, between, across)


def test_auto_null_keeps_equivalent_members_of_a_narrow_group_and_still_separates():
    rejected_same, rejected_diff, n_same, n_diff = 0, 0, 0, 0
    for seed in range(20):
        units, cross = _synthetic_zoo(4, narrow=True, between=0.2, across=0.8, seed=seed)
        rows = pairwise_congruity(units, alpha=0.05, impls="auto", cross=cross)
        for r in rows:
            assert r["decision"] != "undecidable" and r["min_p_value"] <= 0.05
            if r["group_a"] == r["group_b"] == "n":
                n_same += 1
                rejected_same += r["reject"]
                assert r["null_a"] == r["null_b"] == "calibrated"
            elif r["group_a"] != r["group_b"]:
                n_diff += 1
                rejected_diff += r["reject"]
        intervention = pairwise_congruity(units, alpha=0.05, impls="intervention", cross=cross)
        assert all(r["reject"] for r in intervention if r["group_a"] == r["group_b"] == "n")
    assert rejected_same / n_same <= 0.1  # the narrow draws alone would reject every one
    assert rejected_diff / n_diff >= 0.95  # groups four times farther apart: told apart


def test_auto_is_undecidable_for_groups_too_small_to_calibrate():
    units, cross = _synthetic_zoo(3, narrow=True, between=0.2, across=0.8, seed=3)
    rows = pairwise_congruity(units, alpha=0.05, impls="auto", cross=cross)
    assert {r["null_a"] for r in rows} == {"none"}
    assert all(r["decision"] == "undecidable" and not r["reject"] for r in rows)
    assert all(r["members_needed"] == 4 and r["min_p_value"] == 1.0 for r in rows)
    (group,) = [g for g in group_pairs(rows) if g["group_a"] == g["group_b"] == "n"]
    assert group["n_undecidable"] == 3 and group["n_equivalent"] == 0
    assert math.isnan(group["rejection_rate"])
    # one side of four members decides a pair with a group of three through its own null
    big, cross = _synthetic_zoo(4, narrow=False, between=0.2, across=0.8, seed=3)
    mixed = [u for u in big if u.group == "w"] + [u for u in units if u.group == "n"]
    rows = pairwise_congruity(mixed, alpha=0.05, impls="auto", cross=cross)
    across = [r for r in rows if r["group_a"] != r["group_b"]]
    assert all(r["null_a"] == "calibrated" and r["null_b"] == "none" for r in across)
    assert all(r["decision"] == "rejected" for r in across)
