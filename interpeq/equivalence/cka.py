"""Linear centred kernel alignment (CKA), a cheaper alternative similarity.

``cka(a, b)`` = ``||B^T A||_F^2 / (||A^T A||_F ||B^T B||_F)`` on column-centred ``a``
and ``b`` (Kornblith et al. 2019). ``debiased=True`` uses the unbiased HSIC estimator
(Song et al. 2012) on the linear kernels, as in Nguyen et al. 2020: nearly 0 for
independent representations at small ``n`` (the biased form is not). It needs
``n >= 4`` rows and can be slightly negative. No split, no fitting: one pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from interpeq.equivalence.checks import check_representation


def _hsic_unbiased(k: Tensor, l: Tensor) -> Tensor:  # noqa: E741
    n = k.shape[0]
    k = k - torch.diag(torch.diag(k))
    l = l - torch.diag(torch.diag(l))  # noqa: E741
    trace = (k * l).sum()
    middle = k.sum() * l.sum() / ((n - 1) * (n - 2))
    last = 2 * (k.sum(0) @ l.sum(0)) / (n - 2)
    return (trace + middle - last) / (n * (n - 3))


def cka(a: Tensor, b: Tensor, *, debiased: bool = False) -> float:
    """Linear CKA of ``a [n, Da]`` and ``b [n, Db]`` (same probe rows)."""
    x = check_representation(a, "a")
    y = check_representation(b, "b", n=x.shape[0])
    return float(_cka(x, y, debiased))


def _cka(x: Tensor, y: Tensor, debiased: bool) -> Tensor:
    if debiased:
        if x.shape[0] < 4:
            raise ValueError(f"debiased CKA needs at least 4 probe rows, got {x.shape[0]}")
        kx, ky = x @ x.T, y @ y.T
        num = _hsic_unbiased(kx, ky)
        den = (_hsic_unbiased(kx, kx) * _hsic_unbiased(ky, ky)).clamp_min(0).sqrt()
        return num / den
    x = x - x.mean(0)
    y = y - y.mean(0)
    num = (y.T @ x).pow(2).sum()
    den = (x.T @ x).pow(2).sum().sqrt() * (y.T @ y).pow(2).sum().sqrt()
    return num / den


def cka_matrix(reprs: Sequence[Tensor], *, debiased: bool = False) -> Tensor:
    """``[k, k]`` linear CKA between every pair of ``reprs`` (same probe rows)."""
    reprs = list(reprs)
    if not reprs:
        raise ValueError("reprs must contain at least one representation")
    first = check_representation(reprs[0], "reprs[0]")
    mats = [first] + [
        check_representation(r, f"reprs[{i}]", n=first.shape[0]) for i, r in enumerate(reprs[1:], 1)
    ]
    k = len(mats)
    out = torch.ones(k, k, dtype=torch.float64)
    for i in range(k):
        for j in range(i + 1, k):
            out[i, j] = out[j, i] = _cka(mats[i], mats[j], debiased)
    return out
