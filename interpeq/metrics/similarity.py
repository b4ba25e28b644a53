"""``RepresentationSimilarity``: encoding-score or CKA similarity of two models, as a Metric.

Stored per sample: ``Da + Db`` floats and one int64 index; rows are re-ordered by index
(duplicates dropped) at ``compute()`` as in :class:`InterpretiveEquivalence`, so DDP
and single-process runs agree.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from interpeq.equivalence.similarity import check_method, pair_scores
from interpeq.metrics.equivalence import (
    _check_batch,
    cat_state,
    fingerprint,
    order_rows,
    pack_index,
    unpack_index,
)


class RepresentationSimilarity(Metric):
    """``update(repr_a [B, Da], repr_b [B, Db], indices=None)``; ``compute()`` -> dict.

    ``method="ridge"``: ``similarity`` = min of the two encoding scores, plus
    ``score_ab`` / ``score_ba``; ``"cka"`` / ``"cka_debiased"``: linear CKA.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    plot_lower_bound = 0.0
    plot_upper_bound = 1.0

    def __init__(
        self,
        *,
        method: str = "ridge",
        alphas: Any = None,
        test_fraction: float = 0.1,
        seed: int = 0,
        precision: str = "mixed",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.method = check_method(method)
        self.ridge_kwargs = dict(
            alphas=alphas, test_fraction=test_fraction, seed=seed, precision=precision
        )
        for name in ("repr_a", "repr_b", "index"):
            self.add_state(name, default=[], dist_reduce_fx="cat")  # flat 1-D, see equivalence.py
        self.add_state("dims", default=torch.zeros(2, dtype=torch.long), dist_reduce_fx="max")

    def update(self, repr_a: Tensor, repr_b: Tensor, indices: Tensor | None = None) -> None:
        a = _check_batch(repr_a, "repr_a", 2)
        b = _check_batch(repr_b, "repr_b", 2)
        if b.shape[0] != a.shape[0]:
            raise ValueError(f"repr_b has {b.shape[0]} samples but repr_a has {a.shape[0]}")
        idx = fingerprint(a) if indices is None else torch.as_tensor(indices).long().reshape(-1)
        if idx.numel() != a.shape[0]:
            raise ValueError(f"indices has {idx.numel()} entries but the batch has {a.shape[0]}")
        self.dims = torch.tensor([a.shape[1], b.shape[1]], device=self.dims.device)
        self.repr_a.append(a.to(self.dtype).reshape(-1))
        self.repr_b.append(b.to(self.dtype).reshape(-1))
        self.index.append(pack_index(idx.to(a.device), self.dtype))

    def compute(self) -> dict[str, Tensor]:
        index = cat_state(self.index)
        if index is None or index.numel() == 0:
            raise ValueError("RepresentationSimilarity.compute() called before any update()")
        da, db = self.dims.tolist()
        keep = order_rows(unpack_index(index))
        a = cat_state(self.repr_a).reshape(-1, da)[keep]
        b = cat_state(self.repr_b).reshape(-1, db)[keep]
        ridge = self.ridge_kwargs if self.method == "ridge" else {}
        s = pair_scores([a, b], [(0, 1)], method=self.method, names=["repr_a", "repr_b"], **ridge)[
            0
        ]
        if self.method != "ridge":  # symmetric: one number
            return {"similarity": torch.tensor(float(s[0]))}
        return {"similarity": s.min(), "score_ab": s[0], "score_ba": s[1]}

    def plot(self, val: Any = None, ax: Any = None):
        """Plot ``similarity`` (one value or a sequence of outputs); returns ``(fig, ax)``."""
        import matplotlib.pyplot as plt

        val = val if val is not None else self.compute()
        vals = val if isinstance(val, (list, tuple)) else [val]
        fig, ax = plt.subplots() if ax is None else (ax.get_figure(), ax)
        ys = [float(v["similarity"]) for v in vals]
        ax.plot(range(len(ys)), ys, "o-")
        ax.set_ylim(self.plot_lower_bound, self.plot_upper_bound)
        ax.set_ylabel(f"similarity ({self.method})")
        ax.set_title(type(self).__name__)
        return fig, ax
