"""The batched ridge engine: encoding scores between many representations at once.

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
* Everything is computed in float64 on the device of the inputs (``precision="mixed"``:
  the large products in float32, with exact penalty choice; see :class:`RidgeEngine`).

The engine (:class:`RidgeEngine`) factorises each representation once (``U S Vt`` of
its centred train rows: eigendecomposition of ``X^T X`` where that is well
conditioned, else the SVD) and scores every target from it. For the penalty choice it
never forms per-alpha predictions: the mean squared LOO error of target ``Y`` is a
quadratic form in ``Y Y^T`` that splits into alpha-independent matrix products
(``P = Y (U^T Y)^T``, ``G = (U^T Y)(U^T Y)^T``) and small per-alpha contractions with
the hat-matrix diagonal ``h_i = 1/n + sum_k U_ik^2 S_k^2 / (S_k^2 + alpha)``. A target
that is also a source enters through its own factors (``Y = U_j S_j Vt_j``), so both
directions of a pair share the one product ``U_i^T U_j``; per pair the necessary work
is ``U_i^T U_j`` (half of it) and ``P`` (``n r_i r_j`` each), per source the
factorisation and ``U^T diag(w_alpha) U`` for the grid (from a low-rank basis of the
LOO weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from interpeq.equivalence.checks import check_alphas, check_representation, split_indices
from interpeq.equivalence.loo import (
    _ambiguous,
    _candidates,
    _loo,
    _loo_direct,
    _loo_direct_among,
    _loo_operators,
    exact,
    factorise,
)


class RidgeEngine:
    """Encoding scores between many representations of the same probe rows.

    ``RidgeEngine(reprs, alphas=None, test_fraction=0.1, seed=0, device=None)``
    validates the ``k`` matrices ``[n, D_i]`` (same ``n``), splits rows once, and then
    :meth:`scores` / :meth:`score_matrix` compute ``score(i -> j)`` for any pairs,
    factorising each representation once. ``names`` label the matrices in error
    messages.

    ``precision="mixed"`` (default) runs the large products (``U_i^T U_j``, the LOO
    operators, the predictions) in float32 and everything else (the factorisation, hat
    diagonal, LOO sums, R2) in float64. The penalty choice is still exact: wherever
    float32 rounding could change the argmin it is redone in float64 (and, if still
    ambiguous, from explicit residuals), and held-out R2 values near 0 (where the
    square root amplifies rounding) are recomputed in float64; the effect on a score
    is ~1e-6 (tested against scikit-learn to 1e-3). ``precision="double"`` runs
    everything in float64 (about 2x slower on CPU).

    Memory: float32 (``"double"``: float64) copies of the factors ``[k, n, max D]``.
    """

    @exact
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
        self.cache_bytes = 256 * 2**20  # budget for products shared by both directions
        self._centre(mats, names)
        self._targets()
        ntr, dmax = len(self.train), self._dmax
        # Factors of the centred train rows (U S Vt) and, in the GEMM dtype, padded
        # stacks of every target's train rows in coordinates Y_j = Phi_j Psi_j (Psi_j
        # with orthonormal rows): Phi = U S [k, ntr, rcap] and Psi = Vt on the kept
        # columns [k, rcap, dmax] where j is factorised, else Phi = Y_j [k, ntr, dmax]
        # (built on first use).
        self._factors: dict[int, tuple[Tensor, Tensor, Tensor, Tensor]] = {}
        self._rcap = min(ntr, dmax)
        self._phi_f: Tensor | None = None
        self._phi_y: Tensor | None = None
        self._kcache: dict[tuple[int, int], Tensor] = {}
        self._kcache_used = 0
        self._work: dict[str, Tensor] = {}

    def _centre(self, mats: Sequence[Tensor], names: Sequence[str]) -> None:
        """Sources: centred train / test rows (centre = train mean). Targets: the
        non-constant columns of the same rows (``keep``)."""
        tr, te = self.train.to(self.device), self.test.to(self.device)
        self._xtr: list[Tensor] = []
        self._xte: list[Tensor] = []
        self._keep: list[Tensor] = []
        widths = []
        for x, name in zip(mats, names, strict=True):
            x = x.to(self.device)
            mu = x[tr].mean(0)
            self._xtr.append(x[tr] - mu)
            self._xte.append(x[te] - mu)
            keep = x.amax(0) > x.amin(0)
            if not bool((x[te][:, keep].amax(0) > x[te][:, keep].amin(0)).any()):
                raise ValueError(
                    f"{name}: every feature is constant on the {len(te)} held-out rows; "
                    "use more probe rows or another seed"
                )
            self._keep.append(keep)
            widths.append(int(keep.sum()))
        self._dmax = max(widths)
        self._width = widths

    def _targets(self) -> None:
        """Padded held-out targets, the columns that vary on the held-out rows
        (``valid``: the R2 average runs over those), their inverse total sums of squares
        and the train rows' norms."""
        ntr, nte, dmax, g = len(self.train), len(self.test), self._dmax, self.gemm_dtype
        self._yte = torch.zeros(self.k, nte, dmax, dtype=g, device=self.device)
        self._valid = torch.zeros(self.k, dmax, dtype=torch.bool, device=self.device)
        self._ynorm = torch.empty(self.k, ntr, dtype=torch.float64, device=self.device)
        inv_sst = torch.zeros(self.k, dmax, dtype=torch.float64, device=self.device)
        for t in range(self.k):
            d, yte = self._width[t], self._ytest(t)
            self._yte[t, :, :d] = yte
            self._valid[t, :d] = yte.amax(0) > yte.amin(0)
            sst = (yte - yte.mean(0)).pow(2).sum(0)
            inv_sst[t, :d] = torch.where(self._valid[t, :d], 1 / torch.where(sst > 0, sst, 1), 0)
            self._ynorm[t] = self._ytrain(t).pow(2).sum(1)
        self._inv_sst, self._nvalid = inv_sst, self._valid.sum(1)

    def _ytrain(self, t: int) -> Tensor:
        keep = self._keep[t]
        return self._xtr[t] if bool(keep.all()) else self._xtr[t][:, keep]

    def _ytest(self, t: int) -> Tensor:
        keep = self._keep[t]
        return self._xte[t] if bool(keep.all()) else self._xte[t][:, keep]

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """A reused scratch tensor (big temporaries cost page faults when reallocated)."""
        numel = math.prod(shape)
        buf = self._work.get(name)
        if buf is None or buf.dtype != dtype or buf.numel() < numel:
            buf = self._work[name] = torch.empty(numel, dtype=dtype, device=self.device)
        return buf[:numel].view(shape)

    # -- factors ----------------------------------------------------------------------
    def _factor(self, i: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(U [ntr, r], S [r], Vt [r, D], C [nte, r])``, C = centred test rows @ V."""
        if i not in self._factors:
            u, s, vh = factorise(self._xtr[i])
            r = s.numel()
            self._factors[i] = (u, s, vh, self._xte[i] @ vh.T)
            if self._phi_f is None:
                g, dev = self.gemm_dtype, self.device
                self._phi_f = torch.zeros(self.k, len(self.train), self._rcap, dtype=g, device=dev)
                self._psi = torch.zeros(self.k, self._rcap, self._dmax, dtype=g, device=dev)
            self._phi_f[i, :, :r] = u * s
            self._psi[i, :r, : self._width[i]] = vh[:, self._keep[i]]
        return self._factors[i]

    def _rank(self, j: int) -> int:
        return self._factors[j][1].numel()

    def _phi(self, idx: slice, factored: bool) -> Tensor:
        """Stacked ``Phi`` of the targets ``idx`` (see ``__init__``)."""
        if factored:
            return self._phi_f[idx]
        if self._phi_y is None:
            shape = (self.k, len(self.train), self._dmax)
            self._phi_y = torch.zeros(shape, dtype=self.gemm_dtype, device=self.device)
            for t in range(self.k):
                self._phi_y[t, :, : self._width[t]] = self._ytrain(t)
        return self._phi_y[idx]

    # -- one source, many targets -----------------------------------------------------
    def _scores_from(
        self, i: int, targets: list[int], share: set[int] = frozenset()
    ) -> tuple[Tensor, Tensor]:
        """Scores and chosen alphas of source ``i`` predicting each of ``targets``.

        A target's train rows are ``Y = Phi Psi`` (``Psi`` with orthonormal rows, see
        ``__init__``); everything below needs only ``L = U^T Phi`` (``B = U^T Y = L
        Psi``): ``P = Y B^T = Phi L^T``, ``G = B B^T = L L^T`` and the held-out
        prediction ``C diag(g) L Psi``. For factorised targets ``L_ij = K S_j`` with
        ``K = U_i^T U_j``, which the reverse direction reuses: it is kept for the
        targets in ``share`` (their turn as source comes later).
        """
        u, s, _, c = self._factor(i)
        ntr, r = u.shape
        s2 = s * s
        f = s2[:, None] / (s2[:, None] + self.alphas[None, :])  # [r, A] shrinkage
        h = (u * u) @ f + 1.0 / ntr  # [ntr, A] hat diagonal, intercept included
        w = (1.0 - h).clamp_min(1e-12).pow(-2)  # LOO weights 1 / (1 - h)^2
        # Mean squared LOO error of target Y (centred, [ntr, D]) at alpha a is
        #   sum_i w_ia ||y_i - (U diag(f_a) U^T Y)_i||^2
        # = w_a . rownorms(Y) - 2 <R_a, P> + <M_a, G>,   P = Y B^T, G = B B^T,
        # with R_a = diag(w_a) U diag(f_a), M_a = diag(f_a) U^T diag(w_a) U diag(f_a).
        # Tiers of the penalty choice: the expansion in the GEMM dtype; where rounding
        # (bounded by `rel_tol` of the terms' magnitude: float32 products with float64
        # sums over blocks err by ~3e-7 of it) could change the argmin, the expansion in
        # float64; where even that is ambiguous (ill-conditioned fits, h_ii near 1), the
        # LOO errors from explicit residuals (as sklearn does).
        gd = self.gemm_dtype
        tiers = [(gd, 1e-5)] if gd != torch.float64 else []
        tiers.append((torch.float64, 1e-11))
        ops: dict[int, tuple[Tensor, Tensor, Tensor]] = {}  # built on first use

        def op(tier: int) -> tuple[Tensor, Tensor, Tensor]:
            if tier not in ops:
                buf = self._buffer if tier == 0 else None
                ops[tier] = _loo_operators(u, w, f, tiers[tier][0], buf)
            return ops[tier]

        g = s[:, None] / (s2[:, None] + self.alphas[None, :])  # [r, A] coefficient scale
        cg = c.to(gd)
        out_s, out_a = [], []
        for lo, hi, fac in self._runs(targets):
            idx = targets[lo:hi]
            sl = slice(idx[0], idx[-1] + 1)
            q = max(self._rank(j) if fac else self._width[j] for j in idx)
            phi = self._phi(sl, fac)[:, :, :q]
            lmat = self._cross(i, idx, phi, op(0)[0], share if fac else ())
            loo, scale = _loo(*op(0)[1:], phi, lmat, self._ynorm[sl], w, self._buffer)
            todo = self._settle_few(u, f, h, idx, loo, _candidates(loo, tiers[0][1] * scale))
            for tier in range(1, len(tiers)):
                if len(todo) == 0:
                    break
                dt, rel_tol = tiers[tier]
                ph, lm = self._exact_terms(i, [idx[t] for t in todo.tolist()], fac, dt)
                loo_t, scale_t = _loo(*op(tier)[1:], ph, lm, self._ynorm[sl][todo], w)
                loo[todo] = loo_t
                todo = todo[_ambiguous(loo_t, rel_tol * scale_t)]
            for t in todo.tolist():
                y = self._ytrain(idx[t])
                loo[t] = _loo_direct(u, f, h, y, u.T @ y)
            best = loo.argmin(1)  # first minimum, like sklearn
            coef = g.T[best]  # [T, r]
            d = max(self._width[j] for j in idx)
            pred = torch.matmul(cg, coef.to(gd)[:, :, None] * lmat)  # [T, nte, q]
            if fac:
                pred = torch.bmm(pred, self._psi[sl, :q, :d])
            sse = (self._yte[sl, :, :d] - pred[:, :, :d]).pow(2).sum(1).double()  # [T, d]
            r2 = 1 - (sse * self._inv_sst[sl, :d]).sum(1) / self._nvalid[sl]
            if gd != torch.float64:
                # sqrt amplifies rounding where R2 ~ 0: redo those in float64
                for t in ((r2 > -1e-5) & (r2 < 1e-4)).nonzero().flatten().tolist():
                    r2[t] = self._r2_exact(i, idx[t], coef[t])
            out_s.append(r2.clamp_min(0).sqrt())
            out_a.append(self.alphas[best])
        return torch.cat(out_s), torch.cat(out_a)

    def _settle_few(self, u, f, h, idx: list[int], loo: Tensor, cand: Tensor) -> Tensor:
        """Rows of ``loo`` still ambiguous (indices) after the cheap exact route: when few
        targets have few candidate penalties, their exact residuals at those (~(1 + k)
        ``D_t`` columns each) cost less than the float64 operators (~``r A`` columns);
        ``loo`` is updated in place. Otherwise nothing is settled here."""
        todo = (cand.sum(1) > 1).nonzero().flatten().tolist()
        cost = sum((1 + int(cand[t].sum())) * self._width[idx[t]] for t in todo)
        if cost > u.shape[1] * f.shape[1]:
            return torch.tensor(todo, dtype=torch.long, device=loo.device)
        for t in todo:
            loo[t] = _loo_direct_among(u, f, h, self._ytrain(idx[t]), cand[t])
        return torch.empty(0, dtype=torch.long, device=loo.device)

    def _runs(self, targets: list[int]):
        """``(lo, hi, factorised)``: chunks of consecutive target indices of one kind."""
        lo = 0
        for t in range(1, len(targets) + 1):
            if (
                t == len(targets)
                or t - lo >= self.target_chunk
                or targets[t] != targets[t - 1] + 1
                or (targets[t] in self._factors) != (targets[lo] in self._factors)
            ):
                yield lo, t, targets[lo] in self._factors
                lo = t

    def _cross(self, i: int, idx: list[int], phi: Tensor, ug: Tensor, share) -> Tensor:
        """``L = U_i^T Phi_j`` for the targets ``idx`` ``[T, r_i, q]``.

        Factorised targets: ``L_ij = K S_j`` with ``K = U_i^T U_j``; an ``L_ji`` kept by
        an earlier source ``j`` gives ``L_ij = (L_ji / S_i)^T S_j``.
        """
        got = [self._kcache.pop((j, i), None) for j in idx]
        self._kcache_used -= sum(k.numel() * k.element_size() for k in got if k is not None)
        if all(k is not None for k in got):
            s_i = self._factors[i][1].to(ug.dtype)
            lmat = phi.new_zeros(len(idx), ug.shape[1], phi.shape[2])
            for t, (j, lji) in enumerate(zip(idx, got, strict=True)):
                s_j = self._factors[j][1].to(ug.dtype)
                lmat[t, :, : len(s_j)] = (lji / s_i).T * s_j
            return lmat
        lmat = torch.matmul(ug.T, phi)
        for t, j in enumerate(idx):
            if j not in share:
                continue
            keep = lmat[t, :, : self._rank(j)]
            size = keep.numel() * keep.element_size()
            if self._kcache_used + size <= self.cache_bytes:
                self._kcache[(i, j)] = keep
                self._kcache_used += size
        return lmat

    def _exact_terms(self, i: int, idx: list[int], fac: bool, dt: torch.dtype):
        """``(Phi, L)`` for targets ``idx`` recomputed in ``dt`` (float64)."""
        u = self._factors[i][0].to(dt)
        phis = [
            (self._factors[j][0] * self._factors[j][1] if fac else self._ytrain(j)).to(dt)
            for j in idx
        ]
        shape = (len(idx), u.shape[0], max(p.shape[1] for p in phis))
        phi = torch.zeros(shape, dtype=dt, device=self.device)
        for t, p in enumerate(phis):
            phi[t, :, : p.shape[1]] = p
        return phi, torch.matmul(u.T, phi)

    def _r2_exact(self, i: int, j: int, coef: Tensor) -> Tensor:
        """Held-out R2 of source ``i`` -> target ``j`` in float64 (``coef`` = scale g)."""
        u, _, _, c = self._factors[i]
        pred = (c * coef) @ (u.T @ self._ytrain(j))
        d = self._width[j]
        sse = (self._ytest(j) - pred).pow(2).sum(0)
        return 1 - (sse * self._inv_sst[j, :d]).sum() / self._nvalid[j]

    # -- public ---------------------------------------------------------------------
    @exact
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
        for i in by_source:  # every source is factorised (and then a cheaper target)
            self._factor(i)
        pending = set(pairs)
        try:
            for i, positions in by_source.items():
                targets = [pairs[p][1] for p in positions]
                pending.difference_update((i, j) for j in targets)
                share = {j for j in targets if (j, i) in pending}
                sc, al = self._scores_from(i, targets, share)
                out[positions] = sc
                alph[positions] = al
        finally:
            self._kcache.clear()
            self._kcache_used = 0
        return (out, alph) if return_alphas else out

    @exact
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

    @exact
    def per_target(self, i: int, j: int) -> tuple[float, Tensor]:
        """``score(i -> j)`` with one penalty chosen per target column (sklearn's
        ``alpha_per_target=True``), from explicit float64 LOO residuals; returns the
        score and the ``[D_j]`` chosen penalties of the kept columns."""
        u, s, _, c = self._factor(i)
        d = self._width[j]
        valid = self._valid[j, :d]
        y, yte = self._ytrain(j), self._ytest(j)
        s2 = s * s
        f = s2[:, None] / (s2[:, None] + self.alphas[None, :])
        h = (u * u) @ f + 1.0 / u.shape[0]
        b = u.T @ y  # [r, D]
        # LOO residuals per alpha: (y - U diag(f_a) b) / (1 - h_a) -> mean over rows [A, D]
        fitted = torch.einsum("ik,ka,kd->aid", u, f, b)
        loo = ((y[None] - fitted) / (1 - h.T[:, :, None])).pow(2).mean(1)
        best = loo.argmin(0)  # [D]
        g = s[:, None] / (s2[:, None] + self.alphas[None, :])
        pred = c @ (g[:, best] * b)
        sse = (yte - pred).pow(2).sum(0)
        sst = (yte - yte.mean(0)).pow(2).sum(0)
        r2 = (1 - sse[valid] / sst[valid]).mean()
        return float(r2.clamp_min(0).sqrt()), self.alphas[best]
