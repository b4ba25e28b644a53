"""Congruity rank test on synthetic representations with a known answer."""

import pytest
import torch

from interpeq.equivalence import CongruityResult, congruity, group_summary, selectivity

from .synthetic import implementation, pair


@pytest.fixture(scope="module")
def equivalent_results():
    return [congruity(*pair(s, same=True), seed=s, precision="double") for s in range(150)]


def test_calibration_under_h0(equivalent_results):
    summary = group_summary(equivalent_results)
    # p is a normalised rank: congruity is spread out, its mean between 0.5 (the two
    # directions' ranks perfectly dependent) and 2/3 (independent), not near 1.
    assert 0.4 < summary.mean_congruity < 0.72
    cong = torch.tensor([r.congruity for r in equivalent_results])
    assert cong.min() < 0.2 and cong.max() > 0.8
    # valid test: rejects about alpha, at most alpha plus sampling error (3 SE)
    se = (0.05 * 0.95 / len(equivalent_results)) ** 0.5
    assert summary.rejection_rate <= 0.05 + 3 * se
    assert summary.ci_low <= summary.mean_congruity <= summary.ci_high
    # p-values are (super-)uniform: P(p_value <= 0.5) <= 0.5 + sampling error
    pv = torch.tensor([r.p_value for r in equivalent_results])
    assert (pv <= 0.5).double().mean() <= 0.5 + 3 * (0.25 / len(pv)) ** 0.5


def test_different_latent_is_rejected():
    results = [
        congruity(*pair(1000 + s, same=False), seed=s, precision="double") for s in range(30)
    ]
    summary = group_summary(results)
    assert summary.mean_congruity < 0.05
    assert summary.rejection_rate >= 0.95
    assert all(r.p > 0.95 for r in results)


def test_fixed_seed_is_deterministic_and_result_fields():
    args = pair(3, same=True, m=10, n=80)
    r1 = congruity(*args, alpha=0.2, seed=4)
    r2 = congruity(*args, alpha=0.2, seed=4)
    assert r1 == r2 and isinstance(r1, CongruityResult)
    d = r1.to_dict()
    assert set(d) >= {"congruity", "p", "p_value", "reject", "alpha", "m", "d_ab"}
    assert d["m"] == 10 and len(d["d_a_impls"]) == 10
    assert group_summary([r1, r2], seed=1) == group_summary([r1, r2], seed=1)
    assert 0 <= r1.congruity <= 1 and 0 < r1.p_value <= 1


def test_one_sided_and_formulas():
    a, ia, b, ib = pair(5, same=True, m=10, n=80)
    two = congruity(a, ia, b, ib, alpha=0.2)
    one = congruity(a, ia, b, ib, alpha=0.2, one_sided=True)
    assert two.congruity == pytest.approx(1 - abs(2 * two.p - 1))
    assert one.congruity == pytest.approx(min(1.0, 2 * (1 - one.p)))
    assert one.p == two.p and one.p_value == two.p_value
    # b identical to a: closest possible, congruity 1 one-sided, never rejected
    same = congruity(a, ia, a, ia, alpha=0.2, one_sided=True)
    assert same.congruity == 1.0 and not same.reject and same.p == 0.0


def test_cka_method_runs():
    r = congruity(*pair(6, same=False, m=10, n=80), alpha=0.2, method="cka_debiased")
    assert r.reject and r.congruity < 0.2


def test_selectivity_known_answer():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(120, 6, generator=gen)
    w = torch.randn(6, 16, generator=gen)
    a, b = implementation(z, w, gen), implementation(z, w, gen)
    # "patching the circuit" replaces the latent shared with b by another input's
    patched = torch.stack(
        [implementation(z[torch.randperm(120, generator=gen)], w, gen) for _ in range(8)]
    )
    assert selectivity(a, patched, b) == 1.0
    other = implementation(torch.randn(120, 6, generator=gen), w, gen)
    assert selectivity(a, patched, other) < 1.0


def test_bad_input():
    a, ia, b, ib = pair(7, same=True, m=6, n=60)
    with pytest.raises(ValueError, match="impls_a has 6 co-implementations but impls_b has 5"):
        congruity(a, ia, b, ib[:5])
    with pytest.raises(ValueError, match=r"impls_b\[0\] has 59 rows"):
        congruity(a, ia, b, ib[:, :59])
    with pytest.raises(ValueError, match="base_b has 59 rows"):
        congruity(a, ia, b[:59], ib)
    with pytest.raises(ValueError, match="impls_a must have shape"):
        congruity(a, ia[0], b, ib)
    with pytest.raises(ValueError, match="impls_a has 8 features"):
        congruity(a, ia[..., :8], b, ib)
    with pytest.raises(ValueError, match=r"impls_a\[0\] contains .* NaN"):
        congruity(a, torch.full_like(ia, float("nan")), b, ib)
    with pytest.raises(ValueError, match="m = 0"):
        congruity(a, [], b, [])
    with pytest.raises(ValueError, match="alpha"):
        congruity(a, ia, b, ib, alpha=0)
    with pytest.warns(UserWarning, match="can never reject"):
        congruity(a, ia, b, ib, alpha=0.05)
    with pytest.raises(ValueError, match="results is empty"):
        group_summary([])
    with pytest.raises(ValueError, match="circuit_patched_a has 8 features"):
        selectivity(a, ia[..., :8], b)
