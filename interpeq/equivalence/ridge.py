"""Linear predictivity with ridge regression: the encoding score and a batched engine.

``encoding_score(X -> Y)`` fits ridge regression (with intercept) from ``X`` to ``Y`` on
a train split of the probe rows, choosing the penalty from a log grid by exact
(closed-form) leave-one-out error on the train split, and scores the held-out rows:
``sqrt(max(R2, 0))`` with ``R2`` averaged uniformly over the columns of ``Y``.

This matches scikit-learn's ``RidgeCV(alphas=grid)`` (its default efficient LOO,
``alpha_per_target=False``: one penalty for all columns, minimising the mean squared
LOO error over all rows and columns, first grid value on ties) fitted on the same
train split, followed by ``r2_score(..., multioutput="uniform_average")`` on the
held-out rows.

Conventions (shared by every function here):

* **Split**: ``n_test = ceil(test_fraction * n)`` rows are held out, chosen by
  ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))``; the same rows
  are held out in both directions and for every pair of the batched engine, so all
  scores of one call are computed on the same rows. At least 3 train and 2 test rows
  are needed.
* **Constant features**: a target column that is constant over all ``n`` rows is
  dropped before fitting (it carries no information); a column that happens to be
  constant on the held-out rows only is excluded from the R2 average (R2 is undefined
  there). Constant *source* columns are harmless (they centre to zero). A matrix whose
  every column is constant is a ``ValueError``.
* **Default grid**: ``DEFAULT_ALPHAS = torch.logspace(-3, 5, 17)``.
* Everything is computed in float64 on the device of the inputs.

The engine (:class:`RidgeEngine`) factorises each source once (SVD of its centred
train rows, ``U S Vt``) and scores every target from it. For the penalty choice it
never forms per-alpha predictions: the mean squared LOO error of target ``Y`` is a
quadratic form in ``Y Y^T`` that splits into alpha-independent matrix products
(``U^T Y``, ``Y (U^T Y)^T``, ``(U^T Y)(U^T Y)^T``) and small per-alpha contractions
with the hat-matrix diagonal ``h_i = 1/n + sum_k U_ik^2 S_k^2 / (S_k^2 + alpha)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

DEFAULT_ALPHAS = torch.logspace(-3, 5, 17, dtype=torch.float64)

_MIN_TRAIN = 3
_MIN_TEST = 2


# ----------------------------------------------------------------------------- checks


def check_representation(x: Any, name: str, *, n: int | None = None) -> Tensor:
    """Validate a ``[n, D]`` representation matrix; return it as a float64 tensor.

    Raises ``ValueError`` naming ``name`` for: not 2-D, no rows, no features, NaN/inf,
    every feature constant, or (with ``n``) a row count different from ``n``.
    """
    if not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(x)
        except Exception as exc:  # noqa: BLE001 - re-raised with the argument name
            raise ValueError(f"{name} must be a [n, D] tensor, got {type(x).__name__}") from exc
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [n, D] tensor, got shape {tuple(x.shape)}")
    if not (x.dtype.is_floating_point or x.dtype in (torch.int64, torch.int32, torch.bool)):
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {tuple(x.shape)})")
    if x.shape[0] == 0:
        raise ValueError(f"{name} has no rows (shape {tuple(x.shape)})")
    if n is not None and x.shape[0] != n:
        raise ValueError(
            f"{name} has {x.shape[0]} rows but {n} were expected: every representation "
            "must hold the same probe inputs in the same order"
        )
    x = x.detach().to(torch.float64)
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} NaN/inf value(s)")
    if x.shape[0] > 1 and not bool((x.amax(0) > x.amin(0)).any()):
        raise ValueError(f"{name}: every feature is constant over the probe rows")
    return x


def check_alphas(alphas: Any) -> Tensor:
    if alphas is None:
        return DEFAULT_ALPHAS.clone()
    a = torch.as_tensor(alphas, dtype=torch.float64).reshape(-1)
    if a.numel() == 0 or not bool(torch.isfinite(a).all()) or bool((a <= 0).any()):
        raise ValueError(
            f"alphas must be a nonempty sequence of finite positive numbers, got {alphas!r}"
        )
    return a


def split_indices(n: int, test_fraction: float = 0.1, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``(train, test)`` row indices (each sorted) of the seeded hold-out split."""
    if not isinstance(test_fraction, (float, int)) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    n_test = math.ceil(test_fraction * n)
    if n_test < _MIN_TEST or n - n_test < _MIN_TRAIN:
        need = max(_MIN_TRAIN + _MIN_TEST, math.ceil(_MIN_TEST / test_fraction))
        raise ValueError(
            f"too few probe rows: n={n} gives {n - n_test} train / {n_test} test rows at "
            f"test_fraction={test_fraction}; need >= {_MIN_TRAIN} train and >= {_MIN_TEST} "
            f"test rows (n >= {need})"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    return perm[n_test:].sort().values, perm[:n_test].sort().values


# ----------------------------------------------------------------------------- engine


class RidgeEngine:
    """Encoding scores between many representations of the same probe rows.

    ``RidgeEngine(reprs, alphas=None, test_fraction=0.1, seed=0, device=None)``
    validates the ``k`` matrices ``[n, D_i]`` (same ``n``), splits rows once, and then
    :meth:`scores` / :meth:`score_matrix` compute ``score(i -> j)`` for any pairs,
    factorising each source once. ``names`` label the matrices in error messages.

    ``precision="mixed"`` (default) runs the three large products per source
    (``U^T Y``, ``Y (U^T Y)^T``, ``U^T diag(w) U``) in float32 and everything else
    (SVD, hat diagonal, LOO sums, predictions, R2) in float64; the effect on a score is
    ~1e-6 (tested against scikit-learn to 1e-3, typically agreeing to 1e-6).
    ``precision="double"`` runs everything in float64 (about 2x slower on CPU).

    Memory: the padded targets ``[k, n, max D]`` in float64 plus float32 copies.
    """

    def __init__(
        self,
        reprs: Sequence[Tensor],
        *,
        alphas: Any = None,
        test_fraction: float = 0.1,
        seed: int = 0,
        device: torch.device | str | None = None,
        names: Sequence[str] | None = None,
        precision: str = "mixed",
        target_chunk: int = 64,
    ) -> None:
        reprs = list(reprs)
        if not reprs:
            raise ValueError("reprs must contain at least one representation")
        if precision not in ("mixed", "double"):
            raise ValueError(f"precision must be 'mixed' or 'double', got {precision!r}")
        names = list(names) if names is not None else [f"reprs[{i}]" for i in range(len(reprs))]
        first = check_representation(reprs[0], names[0])
        n = first.shape[0]
        mats = [first] + [
            check_representation(r, nm, n=n) for r, nm in zip(reprs[1:], names[1:], strict=True)
        ]
        if device is None:
            device = reprs[0].device if isinstance(reprs[0], Tensor) else torch.device("cpu")
        self.device = torch.device(device)
        self.alphas = check_alphas(alphas).to(self.device)
        self.train, self.test = split_indices(n, test_fraction, seed)
        self.n, self.k = n, len(mats)
        self.gemm_dtype = torch.float32 if precision == "mixed" else torch.float64
        self.target_chunk = max(1, int(target_chunk))
        tr, te = self.train.to(self.device), self.test.to(self.device)
        ntr, nte = len(tr), len(te)

        # Sources: centred train / test rows (centre = train mean).
        self._xtr: list[Tensor] = []
        self._xte: list[Tensor] = []
        # Targets: non-constant columns only, centred by their train mean, zero-padded
        # to a common width; `valid` marks columns that vary on the held-out rows.
        kept: list[Tensor] = []
        for x, name in zip(mats, names, strict=True):
            x = x.to(self.device)
            mu = x[tr].mean(0)
            self._xtr.append(x[tr] - mu)
            self._xte.append(x[te] - mu)
            y = x[:, x.amax(0) > x.amin(0)]
            if not bool((y[te].amax(0) > y[te].amin(0)).any()):
                raise ValueError(
                    f"{name}: every feature is constant on the {nte} held-out rows; "
                    "use more probe rows or another seed"
                )
            kept.append(y)
        dmax = max(y.shape[1] for y in kept)
        self._ytr = torch.zeros(self.k, ntr, dmax, dtype=torch.float64, device=self.device)
        self._yte = torch.zeros(self.k, nte, dmax, dtype=torch.float64, device=self.device)
        self._valid = torch.zeros(self.k, dmax, dtype=torch.bool, device=self.device)
        for t, y in enumerate(kept):
            d = y.shape[1]
            ymu = y[tr].mean(0)
            self._ytr[t, :, :d] = y[tr] - ymu
            self._yte[t, :, :d] = y[te] - ymu
            self._valid[t, :d] = y[te].amax(0) > y[te].amin(0)
        self._ytr_g = self._ytr.to(self.gemm_dtype) if precision == "mixed" else self._ytr
        self._ynorm = self._ytr.pow(2).sum(2)  # [k, ntr]
        sst = (self._yte - self._yte.mean(1, keepdim=True)).pow(2).sum(1)
        self._inv_sst = torch.where(self._valid, 1.0 / torch.where(self._valid, sst, 1.0), 0.0)
        self._factors: dict[int, tuple[Tensor, Tensor, Tensor]] = {}

    # -- per-source factorisation ---------------------------------------------------
    def _factor(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(U [ntr, r], S [r], C [nte, r])`` with C = centred test rows @ V."""
        if i not in self._factors:
            x = self._xtr[i]
            u, s, vh = torch.linalg.svd(x, full_matrices=False)
            tol = s.max() * max(x.shape) * torch.finfo(s.dtype).eps
            r = max(1, int((s > tol).sum()))
            u, s, vh = u[:, :r], s[:r], vh[:r]
            self._factors[i] = (u, s, self._xte[i] @ vh.T)
        return self._factors[i]

    def _targets(self, idx: list[int], dtype: torch.dtype) -> tuple[Tensor, ...]:
        ytr = self._ytr_g if dtype != torch.float64 else self._ytr
        if idx == list(range(idx[0], idx[0] + len(idx))):  # contiguous: views, no copies
            ix = slice(idx[0], idx[0] + len(idx))
        else:
            ix = torch.tensor(idx, device=self.device)
        return ytr[ix], self._yte[ix], self._ynorm[ix], self._inv_sst[ix], self._valid[ix]

    def _scores_from(self, i: int, targets: list[int]) -> tuple[Tensor, Tensor]:
        """Scores and chosen alphas of source ``i`` predicting each of ``targets``."""
        u, s, c = self._factor(i)
        ntr = u.shape[0]
        s2 = s * s
        f = s2[:, None] / (s2[:, None] + self.alphas[None, :])  # [r, A] shrinkage
        h = (u * u) @ f + 1.0 / ntr  # [ntr, A] hat diagonal, intercept included
        w = (1.0 - h).clamp_min(1e-12).pow(-2)  # LOO weights 1 / (1 - h)^2
        # Mean squared LOO error of target Y (centred, [ntr, D]) at alpha a is
        #   sum_i w_ia ||y_i - (U diag(f_a) U^T Y)_i||^2
        # = w_a . rownorms(Y) - 2 <R_a, Y B^T> + <M_a, B B^T>,   B = U^T Y,
        # with R_a = diag(w_a) U diag(f_a), M_a = diag(f_a) U^T diag(w_a) U diag(f_a).
        # Tiers of the penalty choice: the expansion in the GEMM dtype; where rounding
        # (bounded generously by `rel_tol` of the terms' magnitude) could change the
        # argmin, the expansion in float64; where even that is ambiguous (ill-conditioned
        # fits, h_ii near 1), the LOO errors from explicit residuals (as sklearn does).
        tiers = [(self.gemm_dtype, 1e-4)] if self.gemm_dtype != torch.float64 else []
        tiers.append((torch.float64, 1e-11))
        ops: dict[int, tuple[Tensor, Tensor, Tensor]] = {}  # built on first use

        def op(tier: int) -> tuple[Tensor, Tensor, Tensor]:
            if tier not in ops:
                ops[tier] = _loo_operators(u, w, f, tiers[tier][0])
            return ops[tier]

        g = s[:, None] / (s2[:, None] + self.alphas[None, :])  # [r, A] coefficient scale
        out_s, out_a = [], []
        for lo in range(0, len(targets), self.target_chunk):
            idx = targets[lo : lo + self.target_chunk]
            ytr, yte, ynorm, inv_sst, valid = self._targets(idx, self.gemm_dtype)
            loo, scale, b = _loo(*op(0), ytr, ynorm, w)
            b = b.double()
            todo = _ambiguous(loo, tiers[0][1] * scale)
            for tier in range(1, len(tiers)):
                if len(todo) == 0:
                    break
                dt, rel_tol = tiers[tier]
                y = self._ytr[torch.tensor(idx, device=self.device)[todo]].to(dt)
                loo_t, scale_t, b_t = _loo(*op(tier), y, ynorm[todo], w)
                loo[todo], b[todo] = loo_t, b_t.double()
                todo = todo[_ambiguous(loo_t, rel_tol * scale_t)]
            for t in todo.tolist():
                loo[t] = _loo_direct(u, f, h, self._ytr[idx[t]], b[t])
            best = loo.argmin(1)  # first minimum, like sklearn
            coef = g.T[best]  # [T, r]
            pred = torch.matmul(c[None] * coef[:, None, :], b)  # [T, nte, D]
            sse = (yte - pred).pow(2).sum(1)  # [T, D]
            r2 = 1 - (sse * inv_sst).sum(1) / valid.sum(1)
            out_s.append(r2.clamp_min(0).sqrt())
            out_a.append(self.alphas[best])
        return torch.cat(out_s), torch.cat(out_a)

    # -- public ---------------------------------------------------------------------
    def scores(self, pairs: Sequence[tuple[int, int]], *, return_alphas: bool = False):
        """``score(i -> j)`` for each ``(i, j)`` in ``pairs`` (float64 ``[len(pairs)]``).

        With ``return_alphas=True`` also the chosen penalties.
        """
        pairs = [(int(i), int(j)) for i, j in pairs]
        for i, j in pairs:
            if not (0 <= i < self.k and 0 <= j < self.k):
                raise ValueError(f"pair {(i, j)} out of range for {self.k} representations")
        out = torch.empty(len(pairs), dtype=torch.float64, device=self.device)
        alph = torch.empty_like(out)
        by_source: dict[int, list[int]] = {}
        for pos, (i, _) in enumerate(pairs):
            by_source.setdefault(i, []).append(pos)
        for i, positions in by_source.items():
            sc, al = self._scores_from(i, [pairs[p][1] for p in positions])
            out[positions] = sc
            alph[positions] = al
        return (out, alph) if return_alphas else out

    def score_matrix(self, *, diagonal: bool = False) -> Tensor:
        """``[k, k]`` matrix of ``score(i -> j)`` (row = source, column = target).

        The diagonal (a representation predicting itself) is 1 unless ``diagonal=True``
        asks for it to be computed (it is then ~1 with the default grid).
        """
        pairs = [(i, j) for i in range(self.k) for j in range(self.k) if diagonal or i != j]
        out = torch.ones(self.k, self.k, dtype=torch.float64, device=self.device)
        if pairs:
            ii, jj = zip(*pairs, strict=True)
            out[list(ii), list(jj)] = self.scores(pairs)
        return out

    def similarity_matrix(self) -> Tensor:
        """``[k, k]`` symmetric ``min(score(i -> j), score(j -> i))``; diagonal 1."""
        sm = self.score_matrix()
        return torch.minimum(sm, sm.T)


def _loo_operators(u: Tensor, w: Tensor, f: Tensor, dtype: torch.dtype):
    """``(U, R, M)`` in ``dtype``: ``R_a = diag(w_a) U diag(f_a)``,
    ``M_a = diag(f_a) U^T diag(w_a) U diag(f_a)``, flattened to ``[A, -1]``."""
    ug, wg, fg = u.to(dtype), w.to(dtype), f.to(dtype)
    n_alpha = f.shape[1]
    rmat = (wg.T[:, :, None] * ug[None] * fg.T[:, None, :]).reshape(n_alpha, -1)
    m = torch.matmul(ug.T[None] * wg.T[:, None, :], ug) * (fg.T[:, :, None] * fg.T[:, None, :])
    return ug, rmat, m.reshape(n_alpha, -1)


def _loo(u: Tensor, rmat: Tensor, m: Tensor, ytr: Tensor, ynorm: Tensor, w: Tensor):
    """Summed squared LOO errors ``[T, A]``, their terms' magnitude, and ``B = U^T Y``.

    ``sum_i w_ia ||y_i - (U diag(f_a) U^T Y)_i||^2 = w_a . rownorms(Y) - 2 <R_a, Y B^T>
    + <M_a, B B^T>``. The three products run in ``u``'s dtype.
    """
    t = ytr.shape[0]
    b = torch.matmul(u.T, ytr)  # [T, r, D]
    p = torch.bmm(ytr, b.transpose(1, 2))  # [T, ntr, r]
    gram = torch.bmm(b, b.transpose(1, 2))  # [T, r, r]
    term1 = ynorm @ w
    term2 = (p.reshape(t, -1) @ rmat.T).double()
    term3 = (gram.reshape(t, -1) @ m.T).double()
    return term1 - 2 * term2 + term3, term1 + 2 * term2.abs() + term3.abs(), b


def _ambiguous(loo: Tensor, tol: Tensor) -> Tensor:
    """Rows whose argmin could change by errors up to ``tol`` (indices)."""
    best = loo.argmin(1, keepdim=True)
    gap = loo - loo.gather(1, best) - tol - tol.gather(1, best)
    gap.scatter_(1, best, float("inf"))
    return (gap <= 0).any(1).nonzero().flatten()


def _loo_direct(u: Tensor, f: Tensor, h: Tensor, y: Tensor, b: Tensor) -> Tensor:
    """Summed squared LOO errors ``[A]`` from explicit residuals (float64, stable)."""
    fitted = torch.einsum("ik,ka,kd->aid", u, f, b)
    return ((y[None] - fitted) / (1 - h.T[:, :, None])).pow(2).sum((1, 2))


# ----------------------------------------------------------------------------- functional


def encoding_score(
    source: Tensor,
    target: Tensor,
    *,
    alphas: Any = None,
    test_fraction: float = 0.1,
    seed: int = 0,
    alpha_per_target: bool = False,
    return_alpha: bool = False,
    precision: str = "mixed",
):
    """``sqrt(max(held-out R2, 0))`` of ridge regression ``source [n, Ds] -> target [n, Dt]``.

    See the module docstring for the split, the penalty choice and constant features.
    ``alpha_per_target=True`` chooses a penalty per target column (sklearn's option of
    the same name). ``return_alpha=True`` also returns the chosen penalty (or the
    per-column penalties). ``precision``: see :class:`RidgeEngine` (per-target mode
    always runs in float64).
    """
    src = check_representation(source, "source")
    check_representation(target, "target", n=src.shape[0])
    if not alpha_per_target:
        engine = RidgeEngine(
            [source, target],
            alphas=alphas,
            test_fraction=test_fraction,
            seed=seed,
            names=["source", "target"],
            precision=precision,
        )
        sc, al = engine.scores([(0, 1)], return_alphas=True)
        return (float(sc[0]), float(al[0])) if return_alpha else float(sc[0])
    return _per_target(source, target, alphas, test_fraction, seed, return_alpha)


def _per_target(source, target, alphas, test_fraction, seed, return_alpha):
    engine = RidgeEngine(
        [source, target],
        alphas=alphas,
        test_fraction=test_fraction,
        seed=seed,
        names=["source", "target"],
        precision="double",
    )
    u, s, c = engine._factor(0)
    valid = engine._valid[1]
    d = int(engine._valid[1].shape[0])
    y, yte = engine._ytr[1, :, :d], engine._yte[1, :, :d]
    s2 = s * s
    f = s2[:, None] / (s2[:, None] + engine.alphas[None, :])
    h = (u * u) @ f + 1.0 / u.shape[0]
    b = u.T @ y  # [r, D]
    # LOO residuals per alpha: (y - U diag(f_a) b) / (1 - h_a)   -> mean over rows [A, D]
    fitted = torch.einsum("ik,ka,kd->aid", u, f, b)
    loo = ((y[None] - fitted) / (1 - h.T[:, :, None])).pow(2).mean(1)
    best = loo.argmin(0)  # [D]
    g = s[:, None] / (s2[:, None] + engine.alphas[None, :])
    pred = c @ (g[:, best] * b)
    sse = (yte - pred).pow(2).sum(0)
    sst = (yte - yte.mean(0)).pow(2).sum(0)
    r2 = (1 - sse[valid] / sst[valid]).mean()
    score = float(r2.clamp_min(0).sqrt())
    return (score, engine.alphas[best]) if return_alpha else score


def similarity(
    a: Tensor,
    b: Tensor,
    *,
    alphas: Any = None,
    test_fraction: float = 0.1,
    seed: int = 0,
    precision: str = "mixed",
) -> float:
    """``min(score(a -> b), score(b -> a))`` on one shared split (SPEC section 3)."""
    engine = RidgeEngine(
        [a, b],
        alphas=alphas,
        test_fraction=test_fraction,
        seed=seed,
        names=["a", "b"],
        precision=precision,
    )
    return float(engine.scores([(0, 1), (1, 0)]).min())


def similarity_matrix(
    reprs: Sequence[Tensor],
    *,
    method: str = "ridge",
    alphas: Any = None,
    test_fraction: float = 0.1,
    seed: int = 0,
    device: torch.device | str | None = None,
    precision: str = "mixed",
) -> Tensor:
    """``[k, k]`` symmetric similarity of ``k`` representations of the same probe rows.

    ``method="ridge"`` (default): ``min`` of both encoding-score directions, all on one
    shared split, with the batched engine (diagonal 1). ``method="cka"`` / ``"cka_debiased"``: linear CKA.
    """
    if method == "ridge":
        return RidgeEngine(
            reprs,
            alphas=alphas,
            test_fraction=test_fraction,
            seed=seed,
            device=device,
            precision=precision,
        ).similarity_matrix()
    if method in ("cka", "cka_debiased"):
        from interpeq.equivalence.cka import cka_matrix

        return cka_matrix(reprs, debiased=method == "cka_debiased")
    raise ValueError(f"unknown method {method!r}; choose one of ('ridge', 'cka', 'cka_debiased')")
