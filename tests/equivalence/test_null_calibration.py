"""The default null is valid at every draw-to-member ratio c (docs/calibration.md, 3).

Simulated zoos (:mod:`interpeq.equivalence.nullsim`): the calibrated null of
``impls="auto"`` must reject at most alpha + 2 SE of truly equivalent pairs for c from
0.5 to 1.2 and v in {0.2, 0.33}, and keep its power on groups apart; the raw draws
(``"intervention"``) must fail where c < 1, so the check can fail."""

from __future__ import annotations

import pytest
import torch

from interpeq.equivalence.nulls import MIN_MEMBERS, calibrated_draws, decision, min_p_value
from interpeq.equivalence.nullsim import calibration_table, rejection_rate
from interpeq.equivalence.pairwise import _group_peers, _null_distances
from interpeq.equivalence.units import Unit

ALPHA = 0.05
REPS = 4000  # standard error of a rate near alpha: 0.0034 <= 0.01
CS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2)


@pytest.mark.parametrize("k,rho", [(4, 0.0), (4, 0.5), (6, 0.3)])
def test_calibrated_null_keeps_alpha_at_every_ratio(k, rho):
    rows = calibration_table(
        CS, (0.2, 0.33), reps=REPS, k=k, rho=rho, rules=("auto",), deltas=(3.0,)
    )
    assert len(rows) == len(CS) * 2
    for r in rows:
        assert r["se"] <= 0.01
        assert r["frr"] <= ALPHA + 2 * r["se"], r
        assert r["power@3"] >= 0.85, r  # groups three times farther apart than members


def test_raw_draws_reject_equivalent_pairs_when_narrow():
    """The check can fail: the uncalibrated null at c = 0.8 rejects far more than alpha."""
    frr = rejection_rate("intervention", reps=REPS, k=4, c=0.8, v=0.2)
    assert frr > 0.2
    assert rejection_rate("auto", reps=REPS, k=4, c=0.8, v=0.2) <= ALPHA + 0.007


def test_calibration_wins_back_power_where_draws_are_wide():
    wide = dict(reps=REPS, k=6, c=1.2, v=0.33, delta=2.0)
    assert rejection_rate("auto", **wide) > rejection_rate("intervention", **wide) + 0.05


def test_calibrated_draws_rescale_the_draws_to_the_member_spread():
    gen = torch.Generator().manual_seed(0)
    own = 0.1 * (1 + 0.2 * torch.randn(40, generator=gen, dtype=torch.float64))
    pooled = torch.cat(
        [own, 0.1 * (1 + 0.2 * torch.randn(120, generator=gen, dtype=torch.float64))]
    )
    between = torch.full((5,), 0.5, dtype=torch.float64)
    null = calibrated_draws(own, pooled, between)
    ratio = float(null.median() / own.median())
    assert 4.5 < ratio < 6.0  # draws at 0.1, members at 0.5: stretched about 5x
    with pytest.raises(ValueError, match="at least 4 members"):
        calibrated_draws(own, pooled, between[:1])


def test_pairwise_uses_the_groups_members_without_the_pair():
    """The null of unit 0 for the pair (0, 1) is calibrated from the distances between
    the group's members with d(0, 1) left out, and its own draws."""
    gen = torch.Generator().manual_seed(1)
    k, m = 5, 40
    units = []
    for i in range(k):
        u = Unit(f"u{i}", "g", torch.zeros(4, 2), torch.zeros(m, 4, 2))
        u.self_d = 0.05 * (1 + 0.2 * torch.randn(m, generator=gen, dtype=torch.float64))
        units.append(u)
    d = {(p, q): float(0.3 + 0.01 * p + 0.001 * q) for p in range(k) for q in range(p + 1, k)}
    sim = {}
    for (p, q), v in d.items():
        sim[p, q] = sim[q, p] = 1 - v
    peers = _group_peers(units, range(k))
    null = _null_distances(units, 0, 1, peers, sim, "calibrated")
    between = torch.tensor(
        [v for (p, q), v in sorted(d.items()) if (p, q) != (0, 1)], dtype=torch.float64
    )
    pooled = torch.cat([u.self_d for u in units])
    assert torch.allclose(null, calibrated_draws(units[0].self_d, pooled, between), rtol=1e-12)
    assert len(peers[0]) + 1 >= MIN_MEMBERS


def test_three_outcomes():
    assert min_p_value([40, 40]) == pytest.approx(2 / 41)
    assert min_p_value([0, 40]) == pytest.approx(2 / 41)
    assert min_p_value([0, 0]) == 1.0
    assert min_p_value([2, 2]) == pytest.approx(2 / 3)
    assert decision(0.5, 2 / 3, ALPHA) == "undecidable"
    assert decision(0.02, 2 / 41, ALPHA) == "rejected"
    assert decision(0.5, 2 / 41, ALPHA) == "equivalent"
