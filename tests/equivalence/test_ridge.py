"""Encoding score and batched engine: agreement with sklearn, known answers, bad input."""

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score

from interpeq.equivalence import (
    DEFAULT_ALPHAS,
    RidgeEngine,
    cka,
    cka_matrix,
    encoding_score,
    similarity,
    similarity_matrix,
    split_indices,
)


def sklearn_score(x, y, *, seed=0, test_fraction=0.1, alphas=DEFAULT_ALPHAS, per_target=False):
    tr, te = split_indices(x.shape[0], test_fraction, seed)
    x, y = x.double().numpy(), y.double().numpy()
    model = RidgeCV(alphas=alphas.numpy(), alpha_per_target=per_target).fit(x[tr], y[tr])
    r2 = r2_score(y[te], model.predict(x[te]), multioutput="uniform_average")
    return math.sqrt(max(r2, 0.0))


def linear_data(n, ds, dt, noise, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, ds, generator=g) * torch.rand(ds, generator=g) * 3
    y = x @ torch.randn(ds, dt, generator=g)
    return x, y + noise * torch.randn(n, dt, generator=g) * torch.rand(dt, generator=g)


CASES = [
    (200, 10, 5, 0.5),  # narrow, predictable
    (300, 50, 40, 2.0),
    (100, 150, 20, 1.0),  # wide: more features than train rows
    (120, 30, 30, 1e-4),  # nearly noiseless (tiny LOO errors)
    (60, 8, 3, 10.0),  # mostly noise (score clipped to 0 or small)
]


@pytest.mark.parametrize("n,ds,dt,noise", CASES)
@pytest.mark.parametrize("precision", ["mixed", "double"])
def test_matches_sklearn_random(n, ds, dt, noise, precision):
    x, y = linear_data(n, ds, dt, noise, seed=n + ds)
    assert encoding_score(x, y, precision=precision) == pytest.approx(sklearn_score(x, y), abs=1e-3)
    # and in the other direction, another seed and another grid
    grid = torch.logspace(-2, 3, 6)
    got = encoding_score(y, x, seed=3, alphas=grid, precision=precision)
    assert got == pytest.approx(sklearn_score(y, x, seed=3, alphas=grid), abs=1e-3)


def test_matches_sklearn_structured():
    # Nonlinear, low-rank, badly scaled features with a few constant columns.
    g = torch.Generator().manual_seed(0)
    z = torch.randn(400, 5, generator=g)
    x = torch.cat([torch.tanh(z @ torch.randn(5, 40, generator=g)) * 100, torch.ones(400, 3)], 1)
    y = torch.relu(z @ torch.randn(5, 25, generator=g)) + 0.2 * torch.randn(400, 25, generator=g)
    for src, tgt in ((x, y), (y, x[:, :40])):
        assert encoding_score(src, tgt) == pytest.approx(sklearn_score(src, tgt), abs=1e-3)


def test_alpha_per_target_matches_sklearn():
    x, y = linear_data(150, 20, 6, 3.0, seed=1)
    got = encoding_score(x, y, alpha_per_target=True)
    assert got == pytest.approx(sklearn_score(x, y, per_target=True), abs=1e-3)


def test_engine_matches_pairwise_and_sklearn():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(150, 4, generator=g)
    reprs = [
        torch.tanh(z @ torch.randn(4, d, generator=g)) + 0.3 * torch.randn(150, d, generator=g)
        for d in (8, 12, 20, 8)
    ]
    sm = RidgeEngine(reprs).score_matrix()
    sm64 = RidgeEngine(reprs, precision="double").score_matrix()
    for i in range(4):
        for j in range(4):
            if i != j:
                assert sm[i, j] == pytest.approx(sklearn_score(reprs[i], reprs[j]), abs=1e-3)
                # the batched engine takes other (float32) routes than a single pair
                # (targets that are also sources enter through their factors, products
                # shared by both directions): equal to float32 rounding, and to float64
                # rounding at precision="double"
                assert sm[i, j] == pytest.approx(encoding_score(reprs[i], reprs[j]), abs=1e-6)
                single = encoding_score(reprs[i], reprs[j], precision="double")
                assert sm64[i, j] == pytest.approx(single, abs=1e-12)
    sim = similarity_matrix(reprs)
    assert torch.allclose(sim, sim.T) and torch.all(sim.diagonal() == 1)
    assert sim[0, 1] == pytest.approx(similarity(reprs[0], reprs[1]), abs=1e-6)


def test_known_answers_order_of_noise_and_independence():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 20, generator=g)
    w = torch.randn(20, 15, generator=g)
    scores = [
        encoding_score(x, x @ w + s * torch.randn(500, 15, generator=g)) for s in (0.5, 2, 5, 10)
    ]
    assert scores[0] > 0.95
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False))
    indep = encoding_score(x, torch.randn(500, 15, generator=g))
    assert indep < 0.2
    assert similarity(x, torch.randn(500, 30, generator=g)) < 0.2


def test_seed_determinism_and_shared_split():
    x, y = linear_data(200, 10, 5, 3.0, seed=5)
    assert encoding_score(x, y, seed=7) == encoding_score(x, y, seed=7)
    assert encoding_score(x, y, seed=7) != encoding_score(x, y, seed=8)
    tr, te = split_indices(200, 0.1, 7)
    assert len(te) == 20 and len(tr) == 180 and set(tr.tolist()).isdisjoint(te.tolist())


def test_constant_features_are_handled():
    x, y = linear_data(200, 10, 5, 1.0, seed=2)
    y_const = torch.cat([y, torch.full((200, 2), 3.0)], 1)
    x_const = torch.cat([x, torch.zeros(200, 4)], 1)
    # constant target columns are dropped; constant source columns are harmless
    assert encoding_score(x, y_const) == pytest.approx(encoding_score(x, y), abs=1e-12)
    assert encoding_score(x_const, y) == pytest.approx(encoding_score(x, y), abs=1e-9)


def test_cka_known_answers():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 10, generator=g)
    q, _ = torch.linalg.qr(torch.randn(10, 10, generator=g))
    assert cka(x, x @ q * 3 + 1) == pytest.approx(1.0, abs=1e-9)  # rotation/scale invariant
    assert cka(x, x @ q, debiased=True) == pytest.approx(1.0, abs=1e-9)
    y = torch.randn(300, 10, generator=g)
    assert abs(cka(x[:40], y[:40], debiased=True)) < 0.1 < cka(x[:40], y[:40])  # bias at small n
    mat = cka_matrix([x, y, x @ q])
    assert mat.shape == (3, 3) and mat[0, 2] == pytest.approx(1.0)
    assert torch.allclose(similarity_matrix([x, y], method="cka"), cka_matrix([x, y]))


# ----------------------------------------------------------------------------- bad input

GOOD = torch.randn(50, 4)


@pytest.mark.parametrize(
    "source,target,match",
    [
        (GOOD, torch.randn(49, 4), "target has 49 rows"),
        (GOOD[:, :0], GOOD, "source has no features"),
        (GOOD, GOOD[:, :0], "target has no features"),
        (torch.where(GOOD > 1, float("nan"), GOOD), GOOD, "source contains .* NaN/inf"),
        (GOOD, torch.where(GOOD > 1, float("inf"), GOOD), "target contains .* NaN/inf"),
        (torch.ones(50, 3), GOOD, "source: every feature is constant"),
        (GOOD, torch.ones(50, 3), "target: every feature is constant"),
        (GOOD[:4], GOOD[:4], "too few probe rows"),
        (GOOD[0], GOOD, "source must be a 2-D"),
    ],
)
def test_bad_input_is_a_clear_value_error(source, target, match):
    with pytest.raises(ValueError, match=match):
        encoding_score(source, target)


def test_bad_options():
    with pytest.raises(ValueError, match="test_fraction"):
        encoding_score(GOOD, GOOD, test_fraction=1.5)
    with pytest.raises(ValueError, match="alphas"):
        encoding_score(GOOD, GOOD, alphas=[1.0, -1.0])
    with pytest.raises(ValueError, match="precision"):
        encoding_score(GOOD, GOOD, precision="half")
    with pytest.raises(ValueError, match="method"):
        similarity_matrix([GOOD, GOOD], method="svcca")
    with pytest.raises(ValueError, match=r"reprs\[1\] has 10 rows"):
        similarity_matrix([GOOD, GOOD[:10]])
    held_out_constant = torch.cat([torch.zeros(45, 1), torch.ones(5, 1)]).expand(50, 2).clone()
    tr, te = split_indices(50, 0.1, 0)
    held_out_constant[te] = 0.0  # varies on train rows only
    with pytest.raises(ValueError, match="constant on the 5 held-out rows"):
        encoding_score(GOOD, held_out_constant)
    assert np.isfinite(encoding_score(GOOD, GOOD))
