"""The functional similarity API, and the one place that dispatches on the method.

``method`` is ``"ridge"`` (linear predictivity, both directions, docs/method.md section 5: the
batched :class:`~interpeq.equivalence.ridge.RidgeEngine`), ``"paper"`` (the paper
code's score, so that numbers can be compared with the paper: one direction, ``i -> j``,
with sklearn ``RidgeCV``'s default grid ``(0.1, 1, 10)`` on a 90/10 split; the same
engine), ``"cka"`` or ``"cka_debiased"`` (:mod:`interpeq.equivalence.cka`).
:func:`pair_scores` is the only
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

SIMILARITY_METHODS = ("ridge", "paper", "cka", "cka_debiased")
ENGINE_METHODS = ("ridge", "paper")  # the methods that take the ridge engine's options
# The paper code (alansun17904/interp-equiv, ``encoder_fit``): ``RidgeCV()`` (sklearn's
# default alphas, one penalty for all targets, intercept) fitted on a random 90% of
# the rows, ``sqrt(max(R2, 0))`` on the other 10%, in one direction.
PAPER_ALPHAS = (0.1, 1.0, 10.0)
PAPER_TEST_FRACTION = 0.1


def check_method(method: str) -> str:
    if method not in SIMILARITY_METHODS:
        raise ValueError(
            f"unknown similarity method {method!r}; choose one of {', '.join(SIMILARITY_METHODS)}"
        )
    return method


def _paper_options(ridge: dict[str, Any]) -> dict[str, Any]:
    """The engine options of ``"paper"``: its grid and split are the paper's, so a
    caller asking for others gets an error rather than a score that is not the paper's
    (``None`` / the default 0.1, what every caller passes by default, are accepted)."""
    opts = dict(ridge)
    alphas = opts.pop("alphas", None)
    got = None if alphas is None else torch.as_tensor(alphas, dtype=torch.float64)
    if got is not None and got.reshape(-1).tolist() != list(PAPER_ALPHAS):
        raise ValueError(
            f"method 'paper' uses the paper's alphas {PAPER_ALPHAS}, got {alphas!r}; "
            "use method='ridge' for another grid"
        )
    test_fraction = opts.pop("test_fraction", PAPER_TEST_FRACTION)
    if test_fraction != PAPER_TEST_FRACTION:
        raise ValueError(
            f"method 'paper' holds out {PAPER_TEST_FRACTION} of the rows, got "
            f"test_fraction={test_fraction!r}; use method='ridge' for another split"
        )
    return dict(opts, alphas=PAPER_ALPHAS, test_fraction=PAPER_TEST_FRACTION)


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
    factorised once, one shared split; ``ridge`` holds its options). ``"paper"`` scores
    one direction only, ``i -> j`` (``j`` predicted from ``i``, the paper code's
    ``encoder_fit(X=i, Y=j)``), and puts it in both columns, so that callers taking the
    row minimum get that score; ``ridge`` may hold ``seed``, ``device``, ``precision``
    (its grid and split are fixed, see :func:`_paper_options`). CKA is symmetric: both
    columns hold the same value. The similarity of a pair is the row minimum.
    """
    check_method(method)
    pairs = [(int(i), int(j)) for i, j in pairs]
    if method in ENGINE_METHODS:
        names = list(names) if names is not None else [f"reprs[{i}]" for i in range(len(reprs))]
        if method == "paper":
            engine = RidgeEngine(reprs, names=names, **_paper_options(ridge))
            return engine.scores(pairs)[:, None].repeat(1, 2)
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
    """``min(score(a -> b), score(b -> a))`` on one shared split (docs/method.md section 5)."""
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
    (diagonal 1): the row minimum of :func:`pair_scores` for every pair (``"paper"``:
    the score of ``i -> j`` for ``i < j``, in both cells)."""
    reprs = list(reprs)
    if not reprs:
        raise ValueError("reprs must contain at least one representation")
    k = len(reprs)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    ridge = dict(
        alphas=alphas, test_fraction=test_fraction, seed=seed, device=device, precision=precision
    )
    if method not in ENGINE_METHODS:
        ridge = {}
    dev = reprs[0].device if isinstance(reprs[0], Tensor) and device is None else device
    out = torch.ones(k, k, dtype=torch.float64, device=dev)
    if pairs:
        sims = pair_scores(reprs, pairs, method=method, **ridge).amin(1).to(out.device)
        ii, jj = zip(*pairs, strict=True)
        out[list(ii), list(jj)] = sims
        out[list(jj), list(ii)] = sims
    return out
