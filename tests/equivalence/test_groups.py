"""interpeq.equivalence.groups: the narrow-null diagnostic, the exact group permutation
test (calibration, power, exactness, Monte Carlo), Clopper-Pearson, AUROC."""

import itertools
import math

import numpy as np
import pytest
import torch

from interpeq.equivalence import Unit, similarity_matrix
from interpeq.equivalence.groups import (
    NARROW_RATIO,
    auroc,
    clopper_pearson,
    decision_rates,
    null_spread,
)
from interpeq.equivalence.permutation import DEFAULT_N_PERM, group_permutation_test, group_tests


def _units(groups, m=40, self_scale=None, seed=0):
    """Units with random draws: ``self_scale[g]`` = (low, high) of their distances."""
    rng = np.random.default_rng(seed)
    out = []
    for g, n in groups.items():
        lo, hi = self_scale[g]
        for k in range(n):
            d = torch.tensor(rng.uniform(lo, hi, m), dtype=torch.float64)
            out.append(Unit(f"{g}-{k}", g, torch.zeros(0), torch.zeros(0), self_d=d))
    return out


def _between(units, lo=0.08, hi=0.12, seed=1):
    rng = np.random.default_rng(seed)
    return {
        (i, j): 1 - rng.uniform(lo, hi)
        for i, j in itertools.combinations(range(len(units)), 2)
        if units[i].group == units[j].group
    }


def test_narrow_null_fires_only_where_the_draws_barely_move():
    units = _units(
        {"silent": 4, "normal": 4}, self_scale={"silent": (0.5e-4, 1.5e-4), "normal": (0.05, 0.15)}
    )
    res = {s.group: s for s in null_spread(units, _between(units))}
    silent, normal = res["silent"], res["normal"]
    assert silent.narrow and not normal.narrow
    assert silent.ratio < 1e-2 and silent.ratio < NARROW_RATIO <= normal.ratio
    assert normal.ratio == pytest.approx(1.0, abs=0.2)
    assert silent.median_self == pytest.approx(1e-4, rel=0.3)
    assert silent.median_between == pytest.approx(0.1, rel=0.2)
    # every member pair lies above every draw (the pairwise test would reject them all)
    assert silent.above_all == 1.0 and normal.above_all < 0.5
    assert silent.expected_above_all == pytest.approx(1 / 41)
    assert (silent.n_members, silent.n_draws) == (4, 160)
    # distances given directly are the same thing
    dists = {k: 1 - v for k, v in _between(units).items()}
    assert null_spread(units, distances=dists)[0].to_dict() == silent.to_dict()


def test_null_spread_without_draws_or_pairs_gives_no_verdict():
    units = _units({"one": 1, "two": 2}, self_scale={"one": (0.1, 0.2), "two": (0.1, 0.2)})
    for u in units[1:]:
        u.self_d = None  # no co-implementations drawn (impls="training")
    res = {s.group: s for s in null_spread(units, _between(units))}
    assert math.isnan(res["one"].median_between) and not res["one"].narrow
    assert math.isnan(res["two"].median_self) and not res["two"].narrow


def test_null_spread_scores_missing_pairs_itself():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(200, 6, generator=g)
    units = []
    for k in range(3):
        reprs = base + 0.3 * torch.randn(200, 6, generator=g)
        units.append(Unit(f"u{k}", "g", reprs, torch.zeros(0), self_d=torch.full((10,), 0.01)))
    sim = similarity_matrix([u.reprs for u in units])
    given = null_spread(
        units, {(i, j): float(sim[i, j]) for i, j in itertools.combinations(range(3), 2)}
    )
    computed = null_spread(units)
    assert computed[0].median_between == pytest.approx(given[0].median_between, abs=1e-9)
    assert computed[0].narrow  # draws at 0.01 against members ~0.05 apart


def _points(n_a, n_b, shift, rng, dim=5):
    x = rng.normal(size=(n_a + n_b, dim))
    x[n_a:, 0] += shift
    return np.linalg.norm(x[:, None] - x[None], axis=-1), ["a"] * n_a + ["b"] * n_b


def test_group_test_is_calibrated_on_exchangeable_members():
    rng = np.random.default_rng(0)
    reps, alpha = 400, 0.05
    p = np.array(
        [group_permutation_test(*_points(4, 4, 0.0, rng), "a", "b").p_value for _ in range(reps)]
    )
    rate = float((p <= alpha).mean())
    assert rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / reps)
    # exact: under H0 P(p <= 1/35) = 1/35 and the p-values are about uniform
    assert rate == pytest.approx(1 / 35, abs=3 * math.sqrt((1 / 35) * (34 / 35) / reps))
    assert p.mean() == pytest.approx(0.5 + 1 / 70, abs=0.05)


def test_group_test_has_power_on_shifted_groups():
    rng = np.random.default_rng(1)
    res = [group_permutation_test(*_points(4, 4, 5.0, rng), "a", "b") for _ in range(100)]
    assert np.mean([r.reject for r in res]) >= 0.9
    assert all(r.statistic > 0 for r in res)


def _brute_force(d, n_a, n_b):
    """p-value over all C(n, n_a) labellings, the statistic written out pair by pair."""
    n = n_a + n_b

    def stat(sa):
        sb = [k for k in range(n) if k not in sa]
        between = np.mean([d[i, j] for i in sa for j in sb])
        within = [d[i, j] for s in (sa, sb) for i, j in itertools.combinations(s, 2)]
        return between - np.mean(within)

    obs = stat(list(range(n_a)))
    stats = [stat(list(c)) for c in itertools.combinations(range(n), n_a)]
    return obs, np.mean([s >= obs - 1e-12 for s in stats])


@pytest.mark.parametrize("sizes, n_rel", [((4, 4), 35), ((3, 3), 10), ((4, 3), 35), ((2, 5), 21)])
def test_group_test_is_exact(sizes, n_rel):
    rng = np.random.default_rng(2)
    for shift in (0.0, 0.7, 10.0):
        d, labels = _points(*sizes, shift, rng)
        r = group_permutation_test(d, labels, "a", "b")
        assert r.exact and r.n_relabelings == n_rel and (r.n_a, r.n_b) == sizes
        assert r.min_p_value == pytest.approx(1 / n_rel)
        assert r.p_value * n_rel == pytest.approx(round(r.p_value * n_rel), abs=1e-9)
        obs, p = _brute_force(d, *sizes)
        assert r.statistic == pytest.approx(obs) and r.p_value == pytest.approx(p)
    assert r.p_value == pytest.approx(
        1 / n_rel
    )  # a clear shift: the observed labelling is the extreme


def test_group_test_uses_only_the_two_groups_and_symmetric_sizes_give_1_over_35():
    rng = np.random.default_rng(3)
    d, labels = _points(4, 4, 10.0, rng)
    big = np.full((10, 10), 5.0)
    big[1:9, 1:9] = d
    r = group_permutation_test(torch.tensor(big), ["c", *labels, "c"], "a", "b")
    assert r.p_value == pytest.approx(1 / 35) and r.reject and r.min_p_value < 0.05
    r3 = group_permutation_test(*_points(3, 3, 5.0, rng), "a", "b")
    assert r3.p_value == pytest.approx(0.1) and not r3.reject  # 3 + 3 cannot reach 0.05


def test_group_test_monte_carlo_is_seeded_and_corrected():
    rng = np.random.default_rng(4)
    d, labels = _points(12, 12, 2.0, rng)  # C(24, 12) / 2 > MAX_EXACT: Monte Carlo
    r = group_permutation_test(d, labels, "a", "b", seed=5)
    assert not r.exact and r.n_relabelings == DEFAULT_N_PERM
    assert r.min_p_value == pytest.approx(1 / (DEFAULT_N_PERM + 1))
    assert r.p_value == group_permutation_test(d, labels, "a", "b", seed=5).p_value
    assert r.p_value >= r.min_p_value and r.reject
    small = group_permutation_test(*_points(4, 4, 0.0, rng), "a", "b", n_perm=20, seed=0)
    assert not small.exact and (small.p_value * 21) == pytest.approx(round(small.p_value * 21))


def test_group_test_errors():
    d, labels = _points(2, 2, 0.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no members"):
        group_permutation_test(d, labels, "a", "zz")
    with pytest.raises(ValueError, match="both 'a'"):
        group_permutation_test(d, labels, "a", "a")
    with pytest.raises(ValueError, match="one member each"):
        group_permutation_test(d[np.ix_([0, 2], [0, 2])], ["a", "b"], "a", "b")
    with pytest.raises(ValueError, match="n_perm"):
        group_permutation_test(d, labels, "a", "b", n_perm=0)
    with pytest.raises(ValueError, match=r"\[N, N\]"):
        group_permutation_test(d[:3], labels, "a", "b")


def test_clopper_pearson_auroc_and_rates():
    lo, hi = clopper_pearson(3, 10)
    assert lo == pytest.approx(0.06674, abs=1e-4) and hi == pytest.approx(0.65245, abs=1e-4)
    assert clopper_pearson(0, 10) == pytest.approx((0.0, 1 - 0.025**0.1))
    assert clopper_pearson(10, 10)[1] == 1.0 and all(map(math.isnan, clopper_pearson(0, 0)))
    assert auroc([3, 2], [1, 0]) == 1.0 and auroc([1], [1]) == 0.5 and auroc([0], [1]) == 0.0
    rows = [
        {"p_value": 0.5, "reject": False},
        {"p_value": 0.01, "reject": True},
        {"p_value": 0.02, "reject": True},
        {"p_value": 0.6, "reject": False},
    ]
    r = decision_rates(rows, [True, True, False, False])
    assert (r["n_same"], r["false_rejections"], r["false_rejection_rate"]) == (2, 1, 0.5)
    assert (r["n_different"], r["power"]) == (2, 0.5)
    assert r["auroc"] == pytest.approx(0.25)  # of the 4 (diff, same) pairs only 0.02 < 0.5


def test_group_tests_decide_every_group_pair_three_ways():
    """Known answer: groups a and b far apart (4 + 4: rejectable at 1/35), a and c
    indistinguishable, and d with 1 member (1 + 4: smallest p 1/5 > alpha, undecidable)."""
    rng = np.random.default_rng(0)
    centre = {"a": 0.0, "b": 6.0, "c": 0.0, "d": 0.0}
    units = [(f"{g}{i}", g) for g, n in (("a", 4), ("b", 4), ("c", 4), ("d", 1)) for i in range(n)]
    pts = {u: rng.normal(centre[g], 1.0, size=3) for u, g in units}
    rows = [
        {"a": u, "b": v, "group_a": g, "group_b": h,
         "similarity": 1 - float(np.linalg.norm(pts[u] - pts[v]))}
        for k, (u, g) in enumerate(units) for v, h in units[k + 1:]
    ]  # fmt: skip
    tests = {(t["group_a"], t["group_b"]): t for t in group_tests(rows, alpha=0.05)}
    assert tests["a", "b"]["decision"] == "rejected"
    assert tests["a", "b"]["p_value"] == pytest.approx(1 / 35)
    assert tests["a", "c"]["decision"] == "not rejected"
    assert tests["a", "c"]["min_p_value"] == pytest.approx(1 / 35)
    assert tests["a", "d"]["decision"] == "undecidable"
    assert tests["a", "d"]["min_p_value"] == pytest.approx(1 / 5)
    assert len(tests) == 6
    ordered = group_tests(rows, order=["d", "c", "b", "a"])
    assert (ordered[0]["group_a"], ordered[0]["group_b"]) == ("d", "c")
