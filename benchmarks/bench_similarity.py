"""Batched ridge engine vs a loop of scikit-learn RidgeCV fits, and one congruity call.

Similarity matrix of K models (default 32), n probes (1000), D features (192): the
engine (:class:`interpeq.equivalence.RidgeEngine`) against the reference method, one
``RidgeCV(alphas=same grid)`` fit per ordered pair on the same train split (the same
data, the same rows, the same grid), scored by held-out ``r2_score`` (sqrt, clipped).
The reference is timed on a random subset of ordered pairs and extrapolated per pair
to all K*(K-1) (said in the output). Prints both times, the ratio (goal >= 50x) and the
largest score difference on the timed pairs (goal <= 1e-3); then the time of one
``congruity`` call at the defaults (docs/method.md sections 6-8: m = 40 co-implementations per model, n
probes, D features).

Both sides run with the same number of threads (``--threads``, default 1: torch and
the BLAS under NumPy/scikit-learn; 0 keeps the libraries' defaults). On a shared
machine wall times depend on the other load, so the engine runs are interleaved with
chunks of the reference loop (both see the same load), the engine's median run is
reported, and the process CPU time of both sides is printed next to the wall time.

    python benchmarks/bench_similarity.py [--quick] [--models K] [--pairs P] [--threads T]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time

import torch


def make_reprs(k: int, n: int, d: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 16, generator=g)
    return [
        torch.tanh(z @ torch.randn(16, d, generator=g)) + 0.3 * torch.randn(n, d, generator=g)
        for _ in range(k)
    ]


class Clock:
    """Wall and process CPU seconds since construction."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="8 models, n=300, 8 reference pairs")
    ap.add_argument("--models", type=int, default=32)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--d", type=int, default=192)
    ap.add_argument("--pairs", type=int, default=48, help="reference pairs to time")
    ap.add_argument("--repeat", type=int, default=3, help="engine runs (median reported)")
    ap.add_argument("--threads", type=int, default=1, help="threads for both sides (0: defaults)")
    ap.add_argument("--precision", default="mixed", choices=["mixed", "double"])
    args = ap.parse_args()
    if args.quick:
        args.models, args.n, args.pairs = 8, 300, 8

    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from threadpoolctl import threadpool_limits

    from interpeq.equivalence import DEFAULT_ALPHAS, RidgeEngine, congruity, split_indices

    if args.threads > 0:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    k, n, d = args.models, args.n, args.d
    reprs = make_reprs(k, n, d)
    print(
        f"{k} models, n={n} probes, D={d}, {len(DEFAULT_ALPHAS)} alphas, "
        f"torch threads={torch.get_num_threads()}, precision={args.precision}"
    )

    def run_engine():
        clock = Clock()
        scores = RidgeEngine(reprs, precision=args.precision).score_matrix()
        return scores, clock.stop()

    tr, te = split_indices(n, 0.1, 0)
    xs = [r.double().numpy() for r in reprs]
    alphas = DEFAULT_ALPHAS.numpy()
    rng = random.Random(0)
    all_pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
    timed = rng.sample(all_pairs, min(args.pairs, len(all_pairs)))
    chunks = [timed[c :: args.repeat] for c in range(args.repeat)]

    # Engine runs interleaved with chunks of the reference loop (same load on both).
    engine_times, ref_wall, ref_cpu, refs = [], 0.0, 0.0, {}
    scores = None
    for chunk in chunks:
        scores, t = run_engine()
        engine_times.append(t)
        clock = Clock()
        for i, j in chunk:
            model = RidgeCV(alphas=alphas).fit(xs[i][tr], xs[j][tr])
            r2 = r2_score(xs[j][te], model.predict(xs[i][te]), multioutput="uniform_average")
            refs[(i, j)] = math.sqrt(max(r2, 0.0))
        wall, cpu = clock.stop()
        ref_wall, ref_cpu = ref_wall + wall, ref_cpu + cpu
    n_pairs = k * (k - 1)
    e_wall = statistics.median(t[0] for t in engine_times)
    e_cpu = statistics.median(t[1] for t in engine_times)
    print(
        f"engine: {e_wall:.2f} s wall ({e_cpu:.2f} s CPU) for all {n_pairs} ordered pairs "
        f"({1e3 * e_wall / n_pairs:.2f} ms/pair; median of {len(engine_times)} runs: "
        + ", ".join(f"{t[0]:.2f}" for t in engine_times)
        + " s)"
    )
    t_ref, c_ref = ref_wall / len(timed) * n_pairs, ref_cpu / len(timed) * n_pairs
    print(
        f"sklearn RidgeCV loop: {1e3 * ref_wall / len(timed):.1f} ms/pair on {len(timed)} "
        f"random pairs, extrapolated to {n_pairs} pairs: {t_ref:.1f} s wall ({c_ref:.1f} s CPU)"
    )
    print(f"speed-up: {t_ref / e_wall:.1f}x wall, {c_ref / e_cpu:.1f}x CPU time (goal >= 50x)")
    max_diff = max(abs(ref - float(scores[i, j])) for (i, j), ref in refs.items())
    print(f"largest |engine - sklearn| score difference: {max_diff:.2e} (goal <= 1e-3)")

    m = 40
    g = torch.Generator().manual_seed(1)
    impls = [r + 0.2 * torch.randn(m, n, d, generator=g) for r in reprs[:2]]
    clock = Clock()
    res = congruity(reprs[0], impls[0], reprs[1], impls[1], precision=args.precision)
    t_cong, c_cong = clock.stop()
    print(
        f"one congruity call (m={m}, n={n}, D={d}; {2 * m + 2} representations, "
        f"{4 * m + 2} scores): {t_cong:.2f} s wall ({c_cong:.2f} s CPU) -> "
        f"congruity={res.congruity:.3f}, p_value={res.p_value:.3f}"
    )


if __name__ == "__main__":
    main()
