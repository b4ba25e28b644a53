"""Batched ridge engine vs a loop of scikit-learn RidgeCV fits, and one congruity call.

Similarity matrix of K models (default 32), n probes (1000), D features (192): the
engine (:class:`interpeq.equivalence.RidgeEngine`) against the reference method, one
``RidgeCV(alphas=same grid)`` fit per ordered pair on the same train split, scored by
held-out ``r2_score`` (sqrt, clipped). The reference is timed on a random subset of
ordered pairs and extrapolated per pair to all K*(K-1) (said in the output). Prints
both times, the ratio (goal >= 50x) and the largest score difference on the timed
pairs (goal <= 1e-3); then the time of one ``congruity`` call at the SPEC defaults
(m = 40 co-implementations per model, n probes, D features).

    python benchmarks/bench_similarity.py [--quick] [--models K] [--pairs P]
"""

from __future__ import annotations

import argparse
import math
import random
import time

import torch


def make_reprs(k: int, n: int, d: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 16, generator=g)
    return [
        torch.tanh(z @ torch.randn(16, d, generator=g)) + 0.3 * torch.randn(n, d, generator=g)
        for _ in range(k)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="8 models, n=300, 8 reference pairs")
    ap.add_argument("--models", type=int, default=32)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--d", type=int, default=192)
    ap.add_argument("--pairs", type=int, default=48, help="reference pairs to time")
    ap.add_argument("--precision", default="mixed", choices=["mixed", "double"])
    args = ap.parse_args()
    if args.quick:
        args.models, args.n, args.pairs = 8, 300, 8

    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score

    from interpeq.equivalence import DEFAULT_ALPHAS, RidgeEngine, congruity, split_indices

    k, n, d = args.models, args.n, args.d
    reprs = make_reprs(k, n, d)
    print(
        f"{k} models, n={n} probes, D={d}, {len(DEFAULT_ALPHAS)} alphas, "
        f"torch threads={torch.get_num_threads()}, precision={args.precision}"
    )

    t0 = time.perf_counter()
    engine = RidgeEngine(reprs, precision=args.precision)
    scores = engine.score_matrix()
    sim = torch.minimum(scores, scores.T)
    t_engine = time.perf_counter() - t0
    n_pairs = k * (k - 1)
    print(
        f"engine: {t_engine:.2f} s for all {n_pairs} ordered pairs "
        f"({1e3 * t_engine / n_pairs:.2f} ms/pair); similarity matrix {tuple(sim.shape)}"
    )

    m = 40
    g = torch.Generator().manual_seed(1)
    impls = [r + 0.2 * torch.randn(m, n, d, generator=g) for r in reprs[:2]]
    t0 = time.perf_counter()
    res = congruity(reprs[0], impls[0], reprs[1], impls[1], precision=args.precision)
    t_cong = time.perf_counter() - t0
    print(
        f"one congruity call (m={m}, n={n}, D={d}; {2 * m + 2} representations, "
        f"{4 * m + 2} scores): {t_cong:.2f} s -> congruity={res.congruity:.3f}, "
        f"p_value={res.p_value:.3f}"
    )

    # (timed before the sklearn loop: NumPy's BLAS threads left spinning slow torch down)

    tr, te = split_indices(n, 0.1, 0)
    xs = [r.double().numpy() for r in reprs]
    rng = random.Random(0)
    all_pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
    timed = rng.sample(all_pairs, min(args.pairs, len(all_pairs)))
    max_diff = 0.0
    t0 = time.perf_counter()
    for i, j in timed:
        model = RidgeCV(alphas=DEFAULT_ALPHAS.numpy()).fit(xs[i][tr], xs[j][tr])
        r2 = r2_score(xs[j][te], model.predict(xs[i][te]), multioutput="uniform_average")
        ref = math.sqrt(max(r2, 0.0))
        max_diff = max(max_diff, abs(ref - float(scores[i, j])))
    t_ref_pair = (time.perf_counter() - t0) / len(timed)
    t_ref = t_ref_pair * n_pairs
    print(
        f"sklearn RidgeCV loop: {1e3 * t_ref_pair:.1f} ms/pair on {len(timed)} random pairs, "
        f"extrapolated to {n_pairs} pairs: {t_ref:.1f} s"
    )
    print(f"speed-up: {t_ref / t_engine:.1f}x (goal >= 50x)")
    print(f"largest |engine - sklearn| score difference: {max_diff:.2e} (goal <= 1e-3)")


if __name__ == "__main__":
    main()
