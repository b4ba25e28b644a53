"""The functional similarity API, and the one place that dispatches on the method.

``method`` is ``"ridge"`` (linear predictivity, both directions, SPEC section 3: the
batched :class:`~interpeq.equivalence.ridge.RidgeEngine`), ``"cka"`` or
``"cka_debiased"`` (:mod:`interpeq.equivalence.cka`). :func:`pair_scores` is the only
function that looks at ``method``; congruity, the pairwise core, the metrics and
:func:`similarity_matrix` all score pairs through it, so a new similarity is added
here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from interpeq.equivalence.checks import check_representation
from interpeq.equivalence.cka import _cka
from interpeq.equivalence.ridge import RidgeEngine

SIMILARITY_METHODS = ("ridge", "cka", "cka_debiased")


def check_method(method: str) -> str:
    if method not in SIMILARITY_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {SIMILARITY_METHODS}")
    return method


def pair_scores(
    reprs: Sequence[Tensor],
    pairs: Sequence[tuple[int, int]],
    *,
    method: str = "ridge",
    names: Sequence[str] | None = None,
    **ridge: Any,
) -> Tensor:
    """``[len(pairs), 2]`` scores ``(i -> j, j -> i)`` of each pair of ``reprs``.

    Ridge: the two encoding scores, from one engine over ``reprs`` (each source
    factorised once, one shared split; ``ridge`` holds its options). CKA is symmetric:
    both columns hold the same value. The similarity of a pair is the row minimum.
    """
    check_method(method)
    pairs = [(int(i), int(j)) for i, j in pairs]
    if method == "ridge":
        names = list(names) if names is not None else [f"reprs[{i}]" for i in range(len(reprs))]
        engine = RidgeEngine(reprs, names=names, **ridge)
        ordered = [p for i, j in pairs for p in ((i, j), (j, i))]
        return engine.scores(ordered).reshape(-1, 2)
    mats = [check_representation(r, f"reprs[{i}]") for i, r in enumerate(reprs)]
    vals = torch.stack([_cka(mats[i], mats[j], method == "cka_debiased") for i, j in pairs])
    return vals.to(torch.float64)[:, None].expand(-1, 2)


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

    See :mod:`interpeq.equivalence.ridge` for the split, the penalty choice and
    constant features. ``alpha_per_target=True`` chooses a penalty per target column
    (sklearn's option of the same name). ``return_alpha=True`` also returns the chosen
    penalty (or the per-column penalties). ``precision``: see :class:`RidgeEngine`
    (per-target mode always runs in float64).
    """
    src = check_representation(source, "source")
    check_representation(target, "target", n=src.shape[0])
    engine = RidgeEngine(
        [source, target],
        alphas=alphas,
        test_fraction=test_fraction,
        seed=seed,
        names=["source", "target"],
        precision="double" if alpha_per_target else precision,
    )
    if alpha_per_target:
        score, alpha = engine.per_target(0, 1)
        return (score, alpha) if return_alpha else score
    sc, al = engine.scores([(0, 1)], return_alphas=True)
    return (float(sc[0]), float(al[0])) if return_alpha else float(sc[0])


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
    ridge = dict(alphas=alphas, test_fraction=test_fraction, seed=seed, precision=precision)
    return float(pair_scores([a, b], [(0, 1)], names=["a", "b"], **ridge).min())


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
    """``[k, k]`` symmetric similarity of ``k`` representations of the same probe rows
    (diagonal 1): the row minimum of :func:`pair_scores` for every pair."""
    reprs = list(reprs)
    if not reprs:
        raise ValueError("reprs must contain at least one representation")
    k = len(reprs)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    ridge = dict(
        alphas=alphas, test_fraction=test_fraction, seed=seed, device=device, precision=precision
    )
    if method != "ridge":
        ridge = {}
    dev = reprs[0].device if isinstance(reprs[0], Tensor) and device is None else device
    out = torch.ones(k, k, dtype=torch.float64, device=dev)
    if pairs:
        sims = pair_scores(reprs, pairs, method=method, **ridge).amin(1).to(out.device)
        ii, jj = zip(*pairs, strict=True)
        out[list(ii), list(jj)] = sims
        out[list(jj), list(ii)] = sims
    return out
