"""Batched engine internals: every route to a score gives the same score and penalty."""

import math

import pytest
import torch
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score

from interpeq.equivalence import DEFAULT_ALPHAS, RidgeEngine, split_indices


def structured(seed, n=160):
    """Representations of one latent: well / badly conditioned, constant columns."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 5, generator=g)
    a = torch.tanh(z @ torch.randn(5, 12, generator=g)) + 0.3 * torch.randn(n, 12, generator=g)
    b = (z @ torch.randn(5, 30, generator=g)) * torch.logspace(-2, 2, 30)  # rank 5, scaled
    c = torch.cat([torch.relu(z @ torch.randn(5, 9, generator=g)), torch.full((n, 3), 2.0)], 1)
    c = c + 0.05 * torch.randn(n, 12, generator=g) * (torch.arange(12) < 9)
    d = z @ torch.randn(5, 7, generator=g) + 1e-6 * torch.randn(n, 7, generator=g)  # collinear
    return [a, b, c, d]


def reference(x, y, seed=0):
    tr, te = split_indices(x.shape[0], 0.1, seed)
    x, y = x.double().numpy(), y.double().numpy()
    y = y[:, y.max(0) > y.min(0)]
    model = RidgeCV(alphas=DEFAULT_ALPHAS.numpy()).fit(x[tr], y[tr])
    yt, ok = y[te], y[te].max(0) > y[te].min(0)
    r2 = r2_score(yt[:, ok], model.predict(x[te])[:, ok])
    return math.sqrt(max(r2, 0.0)), model.alpha_


ALL = [(i, j) for i in range(4) for j in range(4) if i != j]


@pytest.mark.parametrize("seed", [0, 1])
def test_mixed_matches_double_and_sklearn(seed):
    reprs = structured(seed)
    s32, a32 = RidgeEngine(reprs).scores(ALL, return_alphas=True)
    s64, a64 = RidgeEngine(reprs, precision="double").scores(ALL, return_alphas=True)
    assert torch.equal(a32, a64)  # the penalty choice is exact in mixed precision
    assert (s32 - s64).abs().max() < 1e-6
    for p, (i, j) in enumerate(ALL):
        ref, alpha = reference(reprs[i], reprs[j])
        assert float(s64[p]) == pytest.approx(ref, abs=1e-6)
        if ref < 1 - 1e-9:  # (near-perfect fits: LOO errors tie to rounding)
            assert float(a64[p]) == pytest.approx(alpha)


@pytest.mark.parametrize("precision,tol", [("mixed", 1e-6), ("double", 1e-12)])
def test_routes_agree(precision, tol):
    """Targets through their factors or their raw columns, with or without the products
    shared by both directions, in chunks or all at once: the same scores."""
    reprs = structured(2)
    full = RidgeEngine(reprs, precision=precision).scores(ALL, return_alphas=True)
    # only source 0: targets 1..3 enter through their raw columns
    raw = RidgeEngine(reprs, precision=precision).scores([(0, 1), (0, 2), (0, 3)])
    assert (raw - full[0][:3]).abs().max() < tol
    unshared = RidgeEngine(reprs, precision=precision)
    unshared.cache_bytes = 0
    chunked = RidgeEngine(reprs, precision=precision, target_chunk=1)
    reversed_order = RidgeEngine(reprs, precision=precision).scores(ALL[::-1])
    for other in (unshared.scores(ALL), chunked.scores(ALL), reversed_order.flip(0)):
        assert (other - full[0]).abs().max() < tol


def test_factorisation_routes():
    """The Gram eigendecomposition (well conditioned) and the SVD (ill conditioned,
    rank deficient, wide) give the scores of sklearn."""
    g = torch.Generator().manual_seed(3)
    n = 120
    x = torch.randn(n, 10, generator=g)
    y = x @ torch.randn(10, 6, generator=g) + 0.5 * torch.randn(n, 6, generator=g)
    ill = torch.cat([x, x[:, :3] * 1e-4 + 1e-9 * torch.randn(n, 3, generator=g)], 1)
    deficient = torch.cat([x, x[:, :4]], 1)
    wide = torch.randn(n, 150, generator=g)
    for src in (x, ill, deficient, wide):
        engine = RidgeEngine([src, y], precision="double")
        got = float(engine.scores([(0, 1)]))
        assert got == pytest.approx(reference(src, y)[0], abs=1e-6)
        u, s, vh, _ = engine._factor(0)
        xtr = engine._xtr[0]
        assert torch.allclose((u * s) @ vh, xtr, atol=1e-9 * xtr.abs().max())
    assert RidgeEngine([deficient, y])._factor(0)[1].numel() == 10


def test_near_zero_r2_is_recomputed_in_float64():
    g = torch.Generator().manual_seed(4)
    reprs = [torch.randn(200, 6, generator=g) for _ in range(4)]
    engine = RidgeEngine(reprs)
    s64 = RidgeEngine(reprs, precision="double").scores(ALL[:6])
    assert (engine.scores(ALL[:6]) - s64).abs().max() < 1e-6
    # the float64 R2 used in the band around 0 is the double-precision one
    u, s, _, _ = engine._factor(0)
    coef = s / (s * s + 1.0)
    exact = engine._r2_exact(0, 1, coef)
    e64 = RidgeEngine(reprs, precision="double")
    e64._factor(0)
    assert float(exact) == pytest.approx(float(e64._r2_exact(0, 1, coef)), abs=1e-12)


def test_gram_route_with_weak_directions():
    """Float32 representations sit at a ~1e-7 rounding floor in many directions: the
    Gram route keeps the strong directions and takes the weak ones from their own small
    SVD; the factors are orthonormal and rebuild the rows."""
    g = torch.Generator().manual_seed(5)
    z = torch.randn(200, 8, generator=g)
    x = torch.nn.functional.layer_norm(z @ torch.randn(8, 40, generator=g), (40,))  # rank 8
    engine = RidgeEngine([x, z], precision="double")
    u, s, vh, _ = engine._factor(0)
    xtr = engine._xtr[0]
    assert torch.allclose((u * s) @ vh, xtr, atol=1e-9 * xtr.abs().max())
    assert torch.allclose(u.T @ u, torch.eye(s.numel(), dtype=u.dtype), atol=1e-6)
    assert torch.allclose(s[:8], torch.linalg.svdvals(xtr)[:8], rtol=1e-10)
    assert float(engine.scores([(0, 1)])) == pytest.approx(reference(x, z)[0], abs=1e-6)


def test_few_candidate_penalties_are_resolved_exactly(monkeypatch):
    """A source with one near-copy target (a co-implementation predicting its model):
    float32 leaves a few candidate penalties, whose exact LOO errors choose the same
    penalty as the all-float64 engine and sklearn."""
    import interpeq.equivalence.ridge as ridge

    g = torch.Generator().manual_seed(6)
    base = torch.randn(230, 48, generator=g) @ torch.randn(48, 96, generator=g)
    copies = [base + 1e-3 * torch.randn(230, 96, generator=g) for _ in range(6)]
    used = []
    monkeypatch.setattr(ridge, "_loo_direct_among", lambda *a: used.append(1) or _direct_among(*a))
    pairs = [(k, 0) for k in range(1, 7)]
    s32, a32 = RidgeEngine([base, *copies]).scores(pairs, return_alphas=True)
    assert used  # the float32 pass was ambiguous and the direct route decided
    s64, a64 = RidgeEngine([base, *copies], precision="double").scores(pairs, return_alphas=True)
    assert torch.equal(a32, a64) and (s32 - s64).abs().max() < 1e-6
    for p, k in enumerate(range(1, 7)):
        assert float(a64[p]) == pytest.approx(reference(copies[k - 1], base)[1])


def _direct_among(*args):
    from interpeq.equivalence.loo import _loo_direct_among

    return _loo_direct_among(*args)
