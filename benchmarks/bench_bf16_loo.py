"""Could the ridge engine's large products run in bfloat16? Speed against the margin needed.

The engine chooses the penalty by exact leave-one-out error (as sklearn's RidgeCV does),
so a faster, less precise product is usable only if its rounding cannot change which
penalty wins. This prints, on the data of ``bench_similarity.py``:

1. the speed of one batch of the engine's main product ``[31, 900, 192] @ [192, 192]``
   in float32 and bfloat16 (one thread);
2. for sources ``0, 4, 8, ...`` against every other model: the largest error of the
   LOO errors when ``L = U^T Phi`` and ``P = Phi L^T`` are bfloat16 products,
   relative to the terms' magnitude (the engine's ``scale``), against the gap between
   the best and the second-best penalty in float64, relative to the same magnitude.

The float32 tier of the engine accepts a choice when the gap exceeds 2 x 1e-5 of the
magnitude (float32 rounding is ~3e-7 of it); a bfloat16 tier would need a gap of
several times its error.

    python benchmarks/bench_bf16_loo.py [--models 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_similarity import make_reprs
from torch import Tensor

from interpeq.equivalence.loo import _loo, _loo_operators, _mm64
from interpeq.equivalence.ridge import RidgeEngine


def gemm_rate(dtype: torch.dtype, k: int = 31, n: int = 900, r: int = 192) -> float:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(k, n, r, generator=g).to(dtype)
    b = torch.randn(k, r, r, generator=g).to(dtype)
    torch.bmm(a, b)
    start = time.perf_counter()
    for _ in range(5):
        torch.bmm(a, b)
    return 2 * k * n * r * r * 5 / (time.perf_counter() - start) / 1e9


def loo_errors(engine: RidgeEngine, i: int, targets: list[int]) -> tuple[Tensor, Tensor]:
    """(error of the bfloat16 LOO curve, gap best/second best), both / magnitude."""
    u, s, _, _ = engine._factor(i)
    s2 = s * s
    f = s2[:, None] / (s2[:, None] + engine.alphas[None, :])
    w = (1.0 - ((u * u) @ f + 1.0 / u.shape[0])).pow(-2)
    _, r64, m64 = _loo_operators(u, w, f, torch.float64)
    _, r32, m32 = _loo_operators(u, w, f, torch.float32)
    phi = torch.stack([engine._factor(j)[0] * engine._factor(j)[1] for j in targets])
    exact, scale = _loo(r64, m64, phi, torch.matmul(u.T, phi), engine._ynorm[targets], w)
    lmat = torch.matmul(u.T.bfloat16(), phi.bfloat16()).float()
    p = torch.bmm(phi.bfloat16(), lmat.bfloat16().transpose(1, 2)).float()
    gram = torch.bmm(lmat, lmat.transpose(1, 2))
    t = len(targets)
    term2 = _mm64(p.reshape(t, -1), r32)
    term3 = _mm64(gram.reshape(t, -1), m32)
    approx = engine._ynorm[targets] @ w - 2 * term2 + term3
    err = ((approx - exact).abs() / scale).amax(1)
    top2 = exact.sort(1).values[:, :2]
    gap = (top2[:, 1] - top2[:, 0]) / scale.gather(1, exact.argmin(1, keepdim=True))[:, 0]
    return err, gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    f32, bf16 = gemm_rate(torch.float32), gemm_rate(torch.bfloat16)
    print(
        f"bmm [31x900x192]@[192x192]: float32 {f32:.0f} GFLOP/s, bfloat16 {bf16:.0f} GFLOP/s "
        f"({bf16 / f32:.1f}x)"
    )
    engine = RidgeEngine(make_reprs(args.models, 1000, 192))
    errs, gaps = [], []
    for i in range(0, args.models, 4):
        err, gap = loo_errors(engine, i, [j for j in range(args.models) if j != i])
        errs.append(err)
        gaps.append(gap)
    err, gap = torch.cat(errs), torch.cat(gaps)
    print(
        f"{len(err)} source-target pairs; bfloat16 LOO error / magnitude: max {err.max():.1e}, "
        f"median {err.median():.1e}"
    )
    print(
        f"gap best - second best penalty / magnitude: min {gap.min():.1e}, "
        f"median {gap.median():.1e}"
    )
    print(
        f"margin (smallest gap / largest error): {gap.min() / err.max():.1f}x; the float32 "
        "tier keeps a margin of ~30x between its rounding and its tolerance"
    )


if __name__ == "__main__":
    main()
