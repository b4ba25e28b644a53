"""``InterpretiveEquivalence``: congruity of two models as a torchmetrics ``Metric``.

A thin adapter over :func:`interpeq.equivalence.congruity`: ``update()`` collects
per-sample representation rows, ``compute()`` runs the functional estimator on all of
them (gathered across processes under DDP).

Stored per sample: ``Da + Db + m * Da + m * Db`` floats (the rows of ``a``, ``b`` and
their ``m`` co-implementations) plus one int64 sample index; nothing else grows.

DDP: states are lists of flat 1-D tensors in the metric's dtype, reduced by
concatenation (flat, so that a rank with no samples, whose states torchmetrics fills
with an empty 1-D placeholder, still gathers cleanly), plus the feature sizes reduced
by ``max``. ``compute()`` re-orders the gathered
rows by sample index, and drops repeated indices (e.g. the padding duplicates of
``DistributedSampler``), so 1 and N processes over the same samples give the same
numbers, whatever the split of batches between ranks (a rank that saw fewer batches,
or none, is fine). Pass ``indices`` (global sample ids) to ``update()``; without them
rows are keyed by a deterministic fingerprint of ``a``'s row (identical rows of ``a``
then count once).

Which rank does what: every rank calls ``update()`` with its own batches (no
communication); ``compute()`` is the collective (torchmetrics gathers the states from
every rank), so **every rank must call it**, never inside an
``if trainer.is_global_zero`` branch, and every rank then holds the same result (the
estimator runs on each rank over the same gathered rows). In a Lightning loop, give
every rank at least one batch (an empty, zero-row batch is fine): a rank whose
dataloader has no batch skips the loop's epoch-end hooks and the others would wait
for it in the gather. Tested with ``strategy="ddp"`` on 2 gloo CPU processes, uneven
splits included (``tests/ddp_scripts/metric_ddp.py``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from interpeq.equivalence.congruity import congruity
from interpeq.equivalence.defaults import DEFAULT_ALPHA, DEFAULT_M, check_level


def cat_state(state: list[Tensor] | Tensor) -> Tensor | None:
    """A list state (before sync) or its gathered tensor (after) as one tensor; None if empty."""
    if isinstance(state, Tensor):
        return state
    state = [s for s in state if s.numel()]  # an idle rank contributes an empty placeholder
    return dim_zero_cat(state) if state else None


_SPLIT = 2**20


def pack_index(idx: Tensor, dtype: torch.dtype) -> Tensor:
    """int64 ``[B]`` -> ``[2B]`` floats (high, low parts; exact for ``|idx| < 2**44``)."""
    hi = torch.div(idx, _SPLIT, rounding_mode="floor")
    return torch.stack([hi, idx - hi * _SPLIT], 1).reshape(-1).to(dtype)


def unpack_index(flat: Tensor) -> Tensor:
    pair = flat.reshape(-1, 2).round().long()
    return pair[:, 0] * _SPLIT + pair[:, 1]


def order_rows(index: Tensor) -> Tensor:
    """Positions that sort ``index`` and keep the first occurrence of each value."""
    order = torch.sort(index, stable=True).indices
    sorted_idx = index[order]
    keep = torch.ones_like(sorted_idx, dtype=torch.bool)
    keep[1:] = sorted_idx[1:] != sorted_idx[:-1]
    return order[keep]


def fingerprint(rows: Tensor) -> Tensor:
    """A deterministic int64 key per row (same rows -> same key on every process)."""
    gen = torch.Generator().manual_seed(1234)
    proj = torch.randn(rows.shape[1], dtype=torch.float64, generator=gen).to(rows.device)
    return (rows.double() @ proj * 1e6).round().long()


def _check_batch(x: Tensor, name: str, ndim: int) -> Tensor:
    if not isinstance(x, Tensor) or x.ndim != ndim or not x.dtype.is_floating_point:
        raise ValueError(
            f"{name} must be a float tensor with {ndim} dims, got "
            f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}"
        )
    return x.detach()


class InterpretiveEquivalence(Metric):
    """Congruity of models ``a`` and ``b`` from their and their co-implementations' representations.

    ``update(repr_a [B, Da], repr_b [B, Db], impls_a [m, B, Da], impls_b [m, B, Db],
    indices [B] = None)``; ``compute()`` -> dict of tensors ``congruity``, ``p``,
    ``p_value``, ``reject``, ``d_ab``, ``n_samples``. Keyword arguments go to
    :func:`interpeq.equivalence.congruity` (``alpha``, ``seed``, ``one_sided``,
    ``method``, ``alphas``, ``test_fraction``, ``precision``). See the module docstring
    for memory and DDP behaviour.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    plot_lower_bound = 0.0
    plot_upper_bound = 1.0

    def __init__(
        self,
        *,
        alpha: float = DEFAULT_ALPHA,
        seed: int = 0,
        one_sided: bool = False,
        method: str = "ridge",
        alphas: Any = None,
        test_fraction: float = 0.1,
        precision: str = "mixed",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_level(alpha)
        self.congruity_kwargs = dict(
            alpha=alpha,
            seed=seed,
            one_sided=one_sided,
            method=method,
            alphas=alphas,
            test_fraction=test_fraction,
            precision=precision,
        )
        for name in ("repr_a", "repr_b", "impls_a", "impls_b", "index"):
            self.add_state(name, default=[], dist_reduce_fx="cat")
        self.add_state("dims", default=torch.zeros(3, dtype=torch.long), dist_reduce_fx="max")

    def update(
        self,
        repr_a: Tensor,
        repr_b: Tensor,
        impls_a: Tensor,
        impls_b: Tensor,
        indices: Tensor | None = None,
    ) -> None:
        a = _check_batch(repr_a, "repr_a", 2)
        b = _check_batch(repr_b, "repr_b", 2)
        ia = _check_batch(impls_a, "impls_a", 3)
        ib = _check_batch(impls_b, "impls_b", 3)
        n = a.shape[0]
        for name, x, dim in (("repr_b", b, 0), ("impls_a", ia, 1), ("impls_b", ib, 1)):
            if x.shape[dim] != n:
                raise ValueError(f"{name} has {x.shape[dim]} samples but repr_a has {n}")
        if ia.shape[0] != ib.shape[0]:
            raise ValueError(
                f"impls_a has {ia.shape[0]} co-implementations but impls_b has {ib.shape[0]}"
            )
        if ia.shape[2] != a.shape[1] or ib.shape[2] != b.shape[1]:
            raise ValueError("impls_a / impls_b must have the features of repr_a / repr_b")
        if indices is None:
            idx = fingerprint(a)
        else:
            idx = torch.as_tensor(indices, device=a.device).long().reshape(-1)
            if idx.numel() != n:
                raise ValueError(f"indices has {idx.numel()} entries but the batch has {n}")
        dims = torch.tensor([a.shape[1], b.shape[1], ia.shape[0]], device=self.dims.device)
        if bool(self.dims.any()) and not torch.equal(self.dims, dims):
            raise ValueError(
                f"batch has (Da, Db, m) = {tuple(dims.tolist())} but earlier batches had "
                f"{tuple(self.dims.tolist())}"
            )
        self.dims = dims
        # states live on the metric's device, whatever device the inputs came from:
        # NCCL gathers device tensors only, and interpeq's captures come back on the host
        dev, dt = self.device, self.dtype
        self.repr_a.append(a.to(dev, dt).reshape(-1))
        self.repr_b.append(b.to(dev, dt).reshape(-1))
        self.impls_a.append(ia.transpose(0, 1).to(dev, dt).reshape(-1))  # per sample m * Da
        self.impls_b.append(ib.transpose(0, 1).to(dev, dt).reshape(-1))
        self.index.append(pack_index(idx, dt).to(dev))

    def compute(self) -> dict[str, Tensor]:
        index = cat_state(self.index)
        if index is None or index.numel() == 0:
            raise ValueError("InterpretiveEquivalence.compute() called before any update()")
        da, db, m = self.dims.tolist()
        keep = order_rows(unpack_index(index))
        n = len(keep)
        a = cat_state(self.repr_a).reshape(-1, da)[keep]
        b = cat_state(self.repr_b).reshape(-1, db)[keep]
        ia = cat_state(self.impls_a).reshape(-1, m, da)[keep].transpose(0, 1)
        ib = cat_state(self.impls_b).reshape(-1, m, db)[keep].transpose(0, 1)
        res = congruity(a, ia, b, ib, **self.congruity_kwargs)
        return {
            "congruity": torch.tensor(res.congruity),
            "p": torch.tensor(res.p),
            "p_value": torch.tensor(res.p_value),
            "reject": torch.tensor(res.reject),
            "d_ab": torch.tensor(res.d_ab),
            "n_samples": torch.tensor(n),
        }

    def plot(self, val: Any = None, ax: Any = None):
        """Plot congruity (one value, or a sequence of ``compute()`` outputs as a curve).

        Returns ``(fig, ax)`` like torchmetrics' ``Metric.plot``; rejected points are
        drawn as crosses.
        """
        import matplotlib.pyplot as plt

        val = val if val is not None else self.compute()
        vals = val if isinstance(val, (list, tuple)) else [val]
        fig, ax = plt.subplots() if ax is None else (ax.get_figure(), ax)
        cong = [float(v["congruity"]) for v in vals]
        rej = [bool(v.get("reject", False)) for v in vals]
        xs = list(range(len(cong)))
        if len(cong) > 1:
            ax.plot(xs, cong, "-", color="C0")
            ax.set_xlabel("step")
        for x, c, r in zip(xs, cong, rej, strict=True):
            ax.plot([x], [c], "x" if r else "o", color="C3" if r else "C0")
        ax.set_ylim(self.plot_lower_bound, self.plot_upper_bound)
        ax.set_ylabel("congruity")
        ax.set_title(type(self).__name__)
        ax.grid(True, alpha=0.3)
        return fig, ax


__all__ = ["DEFAULT_M", "InterpretiveEquivalence"]
