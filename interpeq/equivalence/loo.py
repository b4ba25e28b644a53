"""Leave-one-out numerics of the ridge engine: the LOO error as a quadratic form.

For a source factorised as ``U S Vt`` (centred train rows), the mean squared
leave-one-out error of ridge regression onto a target ``Y`` at penalty ``a`` is
``w_a . rownorms(Y) - 2 <R_a, P> + <M_a, G>`` with ``P = Y (U^T Y)^T``,
``G = (U^T Y)(U^T Y)^T``, ``R_a = diag(w_a) U diag(f_a)`` and
``M_a = diag(f_a) U^T diag(w_a) U diag(f_a)``, where ``f_a = S^2 / (S^2 + a)`` and
``w_a = 1 / (1 - h_a)^2`` (``h_a`` the hat diagonal). The alpha-independent products
are shared by the whole grid; :class:`interpeq.equivalence.ridge.RidgeEngine` calls
these functions per source and batch of targets. Plain functions of tensors.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
from torch import Tensor

F = TypeVar("F", bound=Callable)


@contextmanager
def exact_float32() -> Iterator[None]:
    """Full-precision float32 products inside, whatever the caller set; restored after.

    Why: the engine's float32 products (``precision="mixed"``) and its exactness
    guarantees (penalty choice redone in float64 only where float32 *rounding* could
    change it) assume IEEE float32 matmuls. ``torch.set_float32_matmul_precision("high")``
    (TF32 on a GPU: a 10-bit mantissa; bf16 passes in oneDNN on a CPU) or an enclosing
    ``autocast`` (bf16/fp16 products) would silently break that, e.g. a training
    script that turns TF32 on for speed. So TF32 / reduced precision and autocast are
    off here and the caller's settings come back on exit, exceptions included."""
    backends = [torch.backends.cuda.matmul, torch.backends.mkldnn.matmul]
    backends = [x for x in backends if hasattr(x, "fp32_precision")]  # torch >= 2.9's API
    saved = [x.fp32_precision for x in backends]
    legacy = None if backends else torch.get_float32_matmul_precision()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    try:
        for x in backends:
            x.fp32_precision = "ieee"
        if legacy is not None:
            torch.set_float32_matmul_precision("highest")
        with _enter_all(torch.autocast(d, enabled=False) for d in devices):
            yield
    finally:
        for x, value in zip(backends, saved, strict=True):
            x.fp32_precision = value
        if legacy is not None:
            torch.set_float32_matmul_precision(legacy)


@contextmanager
def _enter_all(managers) -> Iterator[None]:
    """Enter every context manager of ``managers`` (an ExitStack, inline)."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        for m in managers:
            stack.enter_context(m)
        yield


def exact(fn: F) -> F:
    """``fn`` run under :func:`exact_float32` (the engine's public entry points)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with exact_float32():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@exact
def factorise(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Thin ``(U, S, Vt)`` of the centred train rows ``x [ntr, D]``, numerically zero
    directions (``S <= S_max * max(ntr, D) * eps``) dropped.

    Where ``D <= ntr``, from the eigendecomposition of ``X^T X`` (2-3x cheaper than the
    SVD) for the directions with ``lam >= 1e-4 lam_max``, where ``U = X V / S`` is
    accurate to ``~eps * cond^2 <= 1e-12``. The weaker directions (representations are
    float32 and often rank-deficient, so many sit at the ~1e-7 rounding floor) come
    from the SVD of ``X`` restricted to them (``[ntr, k]``, cheaper than the whole),
    orthogonalised against the strong ones. Where ``D > ntr`` (or no direction is
    strong), the SVD of ``X``.
    """
    if x.shape[1] <= x.shape[0]:
        lam, v = torch.linalg.eigh(x.T @ x)  # ascending
        n_weak = int((lam <= 1e-4 * lam[-1]).sum())
        vb = v[:, n_weak:].flip(1)
        sb = lam[n_weak:].flip(0).sqrt()
        ub = (x @ vb) / sb
        if n_weak == 0:
            return ub, sb, vb.T
        if n_weak < x.shape[1]:
            xw = x @ v[:, :n_weak]
            uw, sw, wh = torch.linalg.svd(xw - ub @ (ub.T @ xw), full_matrices=False)
            vh = torch.cat([vb.T, wh @ v[:, :n_weak].T])
            return _drop_zero(torch.cat([ub, uw], 1), torch.cat([sb, sw]), vh, x.shape)
    return _drop_zero(*torch.linalg.svd(x, full_matrices=False), x.shape)


def _drop_zero(u: Tensor, s: Tensor, vh: Tensor, shape) -> tuple[Tensor, Tensor, Tensor]:
    keep = s > s.max() * max(shape) * torch.finfo(s.dtype).eps
    keep[s.argmax()] = True  # at least one direction
    return u[:, keep], s[keep], vh[keep]


def _loo_operators(u: Tensor, w: Tensor, f: Tensor, dtype: torch.dtype, buffer=None):
    """``(U, R, M)`` in ``dtype``: ``R[(i, k), a] = w_ia U_ik f_ka`` ``[ntr * r, A]`` and
    ``M[(k, l), a] = f_ka (U^T diag(w_a) U)_kl f_la`` ``[r * r, A]``. ``buffer(name,
    shape, dtype)`` may supply scratch space."""
    ug, fg = u.to(dtype), f.to(dtype)
    ntr, r = ug.shape
    n_alpha = f.shape[1]

    def empty(name, *shape):
        if buffer is None:
            return torch.empty(shape, dtype=dtype, device=u.device)
        return buffer(name, shape, dtype)

    # U^T diag(w_a) U for all alphas from a low-rank basis of the weights W = [w_a]:
    # the w_a of penalties far below the smallest S^2 (f ~ 1) nearly coincide. Dropped
    # components change each w_ia by at most their singular value <= `tol` * min(w),
    # hence each M_a (and the LOO term it enters) by at most that fraction.
    wu, ws, wvh = torch.linalg.svd(w, full_matrices=False)
    tol = (1e-15 if dtype == torch.float64 else 1e-9) * w.min()
    rho = max(1, int((ws > tol).sum()))
    ub = torch.mul(
        ug[:, :, None], (wu[:, :rho] * ws[:rho]).to(dtype)[:, None, :], out=empty("ub", ntr, r, rho)
    )
    # U^T diag(b) U for the basis: one GEMM for the first half of the rows and one for
    # the lower-right block; the lower-left block is the transposed upper-right.
    h = r // 2
    mb = torch.empty(r, r, rho, dtype=dtype, device=u.device)
    mb[:h] = (ug[:, :h].T @ ub.view(ntr, r * rho)).view(h, r, rho)
    mb[h:, h:] = (ug[:, h:].T @ ub[:, h:].reshape(ntr, -1)).view(r - h, r - h, rho)
    mb[h:, :h] = mb[:h, h:].transpose(0, 1)
    m = (mb.view(r * r, rho) @ wvh[:rho].to(dtype)).view(r, r, n_alpha)
    m = m * fg[:, None, :] * fg[None, :, :]
    rmat = torch.mul(ug[:, :, None], w.to(dtype)[:, None, :], out=empty("rmat", ntr, r, n_alpha))
    rmat.mul_(fg[None])
    return ug, rmat.view(ntr * r, n_alpha), m.view(r * r, n_alpha)


def _loo(rmat, mt, phi, lmat, ynorm, w, buffer=None):
    """Summed squared LOO errors ``[T, A]`` and their terms' magnitude.

    ``w_a . rownorms(Y) - 2 <R_a, P> + <M_a, G>`` with ``P = Phi L^T`` and ``G = L L^T``
    (see :meth:`RidgeEngine._scores_from`); the products run in ``phi``'s dtype.
    """
    t, ntr, r = phi.shape[0], phi.shape[1], lmat.shape[1]
    p = buffer("p", (t, ntr, r), phi.dtype) if buffer is not None else None
    p = torch.bmm(phi, lmat.transpose(1, 2), out=p)  # [T, ntr, r]
    gram = torch.bmm(lmat, lmat.transpose(1, 2))  # [T, r, r]
    term1 = ynorm @ w
    term2 = _mm64(p.view(t, -1), rmat)
    term3 = _mm64(gram.view(t, -1), mt)
    return term1 - 2 * term2 + term3, term1 + 2 * term2.abs() + term3.abs()


def _mm64(a: Tensor, b: Tensor, block: int = 4096) -> Tensor:
    """``a [T, n] @ b [n, A]`` in float64, summing blocks of the long contraction in
    float64 (float32 partial sums over ~1e5 terms lose ~1e-5 relative; blocks ~1e-7)."""
    n = a.shape[1]
    if a.dtype == torch.float64 or n < 2 * block:
        return (a @ b).double()
    nb = n // block
    cut = nb * block
    parts = torch.bmm(
        a[:, :cut].reshape(-1, nb, block).transpose(0, 1), b[:cut].view(nb, block, -1)
    )
    return parts.double().sum(0) + (a[:, cut:] @ b[cut:]).double()


def _candidates(loo: Tensor, tol: Tensor) -> Tensor:
    """``[T, A]``: the penalties that errors up to ``tol`` could make the minimum (the
    current minimum included); every other penalty is provably not the argmin."""
    best = loo.argmin(1, keepdim=True)
    return loo - loo.gather(1, best) - tol - tol.gather(1, best) <= 0


def _ambiguous(loo: Tensor, tol: Tensor) -> Tensor:
    """Rows whose argmin could change by errors up to ``tol`` (indices)."""
    return (_candidates(loo, tol).sum(1) > 1).nonzero().flatten()


def _loo_direct_among(u: Tensor, f: Tensor, h: Tensor, y: Tensor, keep: Tensor) -> Tensor:
    """``[A]``: the exact LOO errors (:func:`_loo_direct`) at the penalties ``keep``,
    ``inf`` at the others. Where a float32 pass left only a few candidates for one
    target this is far cheaper than the float64 operators of the whole grid."""
    out = torch.full((f.shape[1],), float("inf"), dtype=torch.float64, device=f.device)
    out[keep] = _loo_direct(u, f[:, keep], h[:, keep], y, u.T @ y)
    return out


def _loo_direct(u: Tensor, f: Tensor, h: Tensor, y: Tensor, b: Tensor) -> Tensor:
    """Summed squared LOO errors ``[A]`` from explicit residuals (float64, stable)."""
    fitted = torch.einsum("ik,ka,kd->aid", u, f, b)
    return ((y[None] - fitted) / (1 - h.T[:, :, None])).pow(2).sum((1, 2))
