"""Congruity, its rank test, group summaries and selectivity (docs/method.md sections 7-9).

Distances are ``d = 1 - similarity`` (ridge encoding similarity by default, every
score on one shared seeded split). For models ``a`` and ``b`` with ``m``
co-implementations each (``a*_j``, ``b*_j``):

* indicators ``I_j = 1[d(a, a*_j) <= d(a, b)]`` and ``1[d(b, b*_j) <= d(a, b)]``;
  ``p`` = mean of the ``2m`` indicators; ``congruity = 1 - |2p - 1|``
  (``one_sided=True``: ``min(1, 2(1 - p))``). Under equivalence ``p`` is a normalised
  rank, so congruity is roughly uniform on [0, 1] (mean ~0.5), not near 1;
* **p-value** for H0 "b implements a's interpretation": per direction the one-sided
  rank p-value ``p_a = (1 + #{j: d(a, a*_j) >= d(a, b)}) / (m + 1)`` (only "b farther
  than the co-implementations" counts against H0), combined by Bonferroni:
  ``p_value = min(1, 2 min(p_a, p_b))``. It is valid (rejects at most ``alpha`` under
  H0) whatever the dependence between directions. The smallest attainable value is
  ``2 / (m + 1)``, hence the default ``m = 40`` (``2/41 < 0.05``).
* **Ties** are counted conservatively: a tie counts as "at least as far" in the
  p-value and as "<=" in the indicators (docs/method.md sections 7-8); no randomisation.
  ``seed`` only seeds the train/test split of the similarity.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from interpeq.equivalence.bootstrap import member_bootstrap, member_keys, pair_bootstrap
from interpeq.equivalence.checks import check_representation
from interpeq.equivalence.defaults import DEFAULT_ALPHA, DEFAULT_N_BOOT, check_level
from interpeq.equivalence.nulls import decision, min_p_value
from interpeq.equivalence.similarity import pair_scores


@dataclass(frozen=True)
class CongruityResult:
    """One pair's congruity, rank ``p``, test p-value and decision at ``alpha``."""

    congruity: float
    p: float
    p_value: float
    reject: bool
    alpha: float
    m: int
    d_ab: float
    d_a_impls: tuple[float, ...]
    d_b_impls: tuple[float, ...]
    one_sided: bool = False
    min_p_value: float = 0.0  # the smallest p-value these nulls can give
    decision: str = ""  # "rejected", "equivalent" or "undecidable" (min_p_value > alpha)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GroupSummary:
    """Mean congruity over a group of pairs, its bootstrap CI, and the rejection rate."""

    mean_congruity: float
    ci_low: float
    ci_high: float
    rejection_rate: float  # rejected / decidable pairs (NaN when none is decidable)
    n_pairs: int
    ci: float
    n_rejected: int = 0
    n_equivalent: int = 0  # decidable and not rejected
    n_undecidable: int = 0  # the nulls could not have rejected (min_p_value > alpha)
    bootstrap: str = "pairs"  # what the CI resampled: "members" or "pairs"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stack_impls(x: Any, name: str, n: int) -> list[Tensor]:
    if isinstance(x, Tensor):
        if x.ndim != 3:
            raise ValueError(f"{name} must have shape [m, n, D], got {tuple(x.shape)}")
        items = list(x.unbind(0))
    else:
        items = list(x)
    if not items:
        raise ValueError(f"{name} holds no co-implementations (m = 0)")
    return [check_representation(t, f"{name}[{j}]", n=n) for j, t in enumerate(items)]


def _pair_similarities(
    mats: list[Tensor], pairs: list[tuple[int, int]], method: str, ridge_kwargs: dict
) -> Tensor:
    """Similarity of each unordered pair (the worse direction for ridge)."""
    ridge = ridge_kwargs if method in ("ridge", "paper") else {}
    return pair_scores(mats, pairs, method=method, **ridge).amin(1)


def congruity(
    base_a: Tensor,
    impls_a: Tensor | Sequence[Tensor],
    base_b: Tensor,
    impls_b: Tensor | Sequence[Tensor],
    *,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    one_sided: bool = False,
    method: str = "ridge",
    alphas: Any = None,
    test_fraction: float = 0.1,
    precision: str = "mixed",
) -> CongruityResult:
    """Congruity of ``a [n, Da]`` and ``b [n, Db]`` given ``impls_a [m, n, Da]``, ``impls_b [m, n, Db]``.

    See the module docstring. ``method`` picks the similarity (``"ridge"``, ``"cka"``,
    ``"cka_debiased"``); ``alphas`` / ``test_fraction`` / ``precision`` go to the ridge
    engine, ``seed`` seeds its split.
    """
    check_level(alpha)
    a = check_representation(base_a, "base_a")
    n = a.shape[0]
    b = check_representation(base_b, "base_b", n=n)
    ia = _stack_impls(impls_a, "impls_a", n)
    ib = _stack_impls(impls_b, "impls_b", n)
    if len(ia) != len(ib):
        raise ValueError(
            f"impls_a has {len(ia)} co-implementations but impls_b has {len(ib)}; "
            "both models need the same number m"
        )
    for name, base, impls in (("impls_a", a, ia), ("impls_b", b, ib)):
        if impls[0].shape[1] != base.shape[1]:
            raise ValueError(
                f"{name} has {impls[0].shape[1]} features but its base model has {base.shape[1]}"
            )
    m = len(ia)
    if 2 / (m + 1) > alpha:
        warnings.warn(
            f"with m={m} co-implementations the smallest p-value is 2/(m+1)={2 / (m + 1):.3f} "
            f"> alpha={alpha}: the test can never reject; use m >= {math.ceil(2 / alpha) - 1}",
            stacklevel=2,
        )
    mats = [a, b, *ia, *ib]
    pairs = [(0, 1)] + [(0, 2 + j) for j in range(m)] + [(1, 2 + m + j) for j in range(m)]
    sims = _pair_similarities(
        mats,
        pairs,
        method,
        dict(alphas=alphas, test_fraction=test_fraction, seed=seed, precision=precision),
    )
    dist = 1 - sims
    d_ab, d_a, d_b = dist[0], dist[1 : 1 + m], dist[1 + m :]
    return _decide(d_ab, d_a, d_b, alpha=alpha, one_sided=one_sided)


def _decide(d_ab: Tensor, d_a: Tensor, d_b: Tensor, *, alpha: float, one_sided: bool):
    """The rank test of one pair from each direction's null distances (a direction may
    have none: it cannot reject, ``p = 1``; with neither, congruity is NaN)."""
    # [m] host float64 whatever device each side's draws were computed on
    d_ab, d_a, d_b = (torch.as_tensor(x).detach().double().cpu() for x in (d_ab, d_a, d_b))
    m = len(d_a)  # the two directions may have different counts (co-implementations by training)
    hits = torch.cat([d_a <= d_ab, d_b <= d_ab]).double()
    p = float(hits.mean()) if len(hits) else math.nan
    cong = min(1.0, 2 * (1 - p)) if one_sided else 1 - abs(2 * p - 1)
    p_a = (1 + int((d_a >= d_ab).sum())) / (m + 1) if m else 1.0
    p_b = (1 + int((d_b >= d_ab).sum())) / (len(d_b) + 1) if len(d_b) else 1.0
    p_value = min(1.0, 2 * min(p_a, p_b))
    lowest = min_p_value([m, len(d_b)])
    verdict = decision(p_value, lowest, alpha)
    return CongruityResult(
        congruity=float(cong),
        p=p,
        p_value=p_value,
        reject=verdict == "rejected",
        alpha=float(alpha),
        m=m,
        d_ab=float(d_ab),
        d_a_impls=tuple(float(x) for x in d_a),
        d_b_impls=tuple(float(x) for x in d_b),
        one_sided=one_sided,
        min_p_value=lowest,
        decision=verdict,
    )


def _field(r: Any, key: str) -> float:
    v = r[key] if isinstance(r, dict) else getattr(r, key)
    return float(v.item() if isinstance(v, Tensor) else v)


def group_summary(
    results: Sequence[CongruityResult | dict],
    *,
    n_boot: int = DEFAULT_N_BOOT,
    ci: float = 0.95,
    seed: int = 0,
) -> GroupSummary:
    """Mean congruity with a percentile bootstrap CI, and the rejection rate.

    ``results`` are :class:`CongruityResult` s or dicts with ``congruity`` and ``reject``
    (e.g. :class:`interpeq.metrics.InterpretiveEquivalence` outputs). Pairs share
    members, so where every row names its members (``a``, ``b``, ``group_a``,
    ``group_b``, as :func:`interpeq.equivalence.pairwise_congruity` rows do) the CI
    resamples members (``bootstrap="members"``); otherwise it can only resample pairs
    (``bootstrap="pairs"``), which is too narrow when pairs share members
    (:mod:`interpeq.equivalence.bootstrap`). NaN congruities are left out.
    """
    results = list(results)
    if not results:
        raise ValueError("results is empty: a group needs at least one pair")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot!r}")
    verdicts = [_verdict(r) for r in results]
    n_rej, n_und = verdicts.count("rejected"), verdicts.count("undecidable")
    n_dec = len(verdicts) - n_und
    c = torch.tensor([_field(r, "congruity") for r in results], dtype=torch.float64)
    keep = ~c.isnan()
    keys = member_keys(results)
    kind = "pairs" if keys is None else "members"
    if bool(keep.any()):
        opts = dict(n_boot=n_boot, ci=ci, seed=seed)
        if keys is None:
            lo, hi = pair_bootstrap(c[keep], **opts)
        else:
            ok = keep.tolist()
            ka, kb = ([k for k, o in zip(ks, ok, strict=True) if o] for ks in keys)
            lo, hi = member_bootstrap(c[keep], ka, kb, **opts)
        mean = float(c[keep].mean())
    else:
        mean = lo = hi = math.nan
    rate = n_rej / n_dec if n_dec else math.nan
    return GroupSummary(
        mean, lo, hi, rate, len(results), float(ci), n_rej, n_dec - n_rej, n_und, kind
    )


def _verdict(r: Any) -> str:
    """A result's decision (results without one: from ``reject``)."""
    d = r.get("decision") if isinstance(r, dict) else getattr(r, "decision", "")
    if d:
        return d
    return "rejected" if _field(r, "reject") else "equivalent"


def selectivity(
    base_a: Tensor,
    circuit_patched_a: Tensor | Sequence[Tensor],
    base_b: Tensor,
    *,
    seed: int = 0,
    method: str = "ridge",
    alphas: Any = None,
    test_fraction: float = 0.1,
    precision: str = "mixed",
) -> float:
    """Fraction of draws ``j`` with ``similarity(a, b) > similarity(a_patched_j, b)``.

    ``circuit_patched_a [m, n, Da]``: ``a`` with circuit components patched (e.g. from
    :func:`interpeq.equivalence.circuit_patches`). High for an equivalent ``b``
    (patching the circuit moves ``a`` away from it), ~chance for a non-equivalent one.
    """
    a = check_representation(base_a, "base_a")
    b = check_representation(base_b, "base_b", n=a.shape[0])
    pa = _stack_impls(circuit_patched_a, "circuit_patched_a", a.shape[0])
    if pa[0].shape[1] != a.shape[1]:
        raise ValueError(
            f"circuit_patched_a has {pa[0].shape[1]} features but base_a has {a.shape[1]}"
        )
    mats = [a, b, *pa]
    pairs = [(0, 1)] + [(2 + j, 1) for j in range(len(pa))]
    sims = _pair_similarities(
        mats,
        pairs,
        method,
        dict(alphas=alphas, test_fraction=test_fraction, seed=seed, precision=precision),
    )
    return float((sims[0] > sims[1:]).double().mean())
