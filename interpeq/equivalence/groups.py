"""Group-level checks of the pairwise test: how wide the raw intervention null is, and
the statistics a calibration reports (docs/method.md sections 6 and 9; the maths:
``docs/calibration.md``).

* :func:`null_spread` (a diagnostic): per group, the median distance from its members
  to their own co-implementations (``Unit.self_d``) against the median distance
  between the group's members. Under H0 the pair distance ``d(a, b)`` of two members
  is exchangeable with the draws ``d(a, a*_j)``, so the two medians agree; a ratio far
  below 1 means the draws barely move the models and the pairwise test rejects
  equivalent members (``narrow``).
* the group permutation test, which does not depend on the draws at all, is
  :mod:`interpeq.equivalence.permutation`.
* :func:`decision_rates` (false-rejection rate, power, AUROC), :func:`clopper_pearson`,
  :func:`auroc`: the small statistics a calibration reports.

Plain torch / numpy / math: no zoo, no Lightning.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

# NARROW_RATIO: median(draws) / median(between members) below which a group's raw
# intervention null is "narrow": at a ratio of 0.9 the uncalibrated test already rejects
# about twice alpha of the equivalent pairs (docs/calibration.md, section 3). The
# default, calibrated null does not depend on it (interpeq.equivalence.nulls).
from interpeq.equivalence.pairwise import NARROW_RATIO, self_distances
from interpeq.equivalence.similarity import pair_scores
from interpeq.equivalence.units import Unit


@dataclass(frozen=True)
class NullSpread:
    """One group's narrow-null diagnostic (see :func:`null_spread`)."""

    group: str
    n_members: int
    n_draws: int  # co-implementation distances pooled over the members
    median_self: float  # median d(a, a*_j) over members and draws (NaN without draws)
    median_between: float  # median 1 - similarity(a, b) over member pairs (NaN: 1 member)
    ratio: float  # median_self / median_between (NaN when either is missing)
    above_all: float  # fraction of ordered member pairs (a, b) with d(a, b) > max_j d(a, a*_j)
    expected_above_all: float  # its value under exchangeability: 1 / (m + 1)
    narrow: bool  # ratio < threshold
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pair_lookup(
    units: Sequence[Unit],
    pairs: list[tuple[int, int]],
    similarities: Mapping | None,
    distances: Mapping | None,
    seed: int,
    ridge: dict,
) -> dict[tuple[int, int], float]:
    """Distance ``1 - similarity`` of each pair (from the mappings, else computed)."""
    given = distances if distances is not None else similarities
    out = {}
    missing = []
    for i, j in pairs:
        v = None
        if given is not None:
            v = given.get((i, j), given.get((j, i)))
        if v is None:
            missing.append((i, j))
        else:
            v = float(v)
            out[i, j] = v if distances is not None else 1 - v
    if missing:
        used = sorted({k for p in missing for k in p})
        pos = {k: n for n, k in enumerate(used)}
        sims = pair_scores(
            [units[k].reprs for k in used],
            [(pos[i], pos[j]) for i, j in missing],
            names=[units[k].id for k in used],
            seed=seed,
            **ridge,
        ).amin(1)
        for (i, j), s in zip(missing, sims.tolist(), strict=True):
            out[i, j] = 1 - s
    return out


def null_spread(
    units: Sequence[Unit],
    similarities: Mapping[tuple[int, int], float] | None = None,
    *,
    distances: Mapping[tuple[int, int], float] | None = None,
    threshold: float = NARROW_RATIO,
    seed: int = 0,
    **ridge: Any,
) -> list[NullSpread]:
    """The narrow-null diagnostic of each group of ``units`` (in order of first appearance).

    ``similarities``: ``{(i, j): similarity}`` of pairs of units (indices into ``units``,
    either order), or ``distances``: ``{(i, j): 1 - similarity}``; pairs of a group
    missing from both are scored with :func:`~interpeq.equivalence.similarity.pair_scores`
    (``seed`` and ``ridge`` options, the worse direction). Each unit's draws are its
    ``self_d`` (computed with :func:`~interpeq.equivalence.pairwise.self_distances` if
    unset; a unit without co-implementations contributes none).

    Per group: ``median_self`` (all members' draws pooled), ``median_between`` (all
    member pairs), ``ratio = median_self / median_between``, ``above_all`` (the share of
    ordered member pairs whose distance exceeds every draw of the first member: at
    ``alpha = 0.05`` and ``m = 40`` exactly the pairs the pairwise test rejects in that
    direction; ``1 / (m + 1)`` under exchangeability) and ``narrow = ratio < threshold``.
    Under H0 the draws and the between-member distances have the same distribution, so
    ``ratio`` is about 1; why ``1/2`` is the default threshold: ``docs/calibration.md``.
    """
    if not 0 < threshold:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    units = list(units)
    by_group: dict[str, list[int]] = {}
    for k, u in enumerate(units):
        by_group.setdefault(u.group, []).append(k)
    pairs = [p for ks in by_group.values() for p in itertools.combinations(ks, 2)]
    dist = _pair_lookup(units, pairs, similarities, distances, seed, ridge)
    out = []
    for group, ks in by_group.items():
        draws = {}
        for k in ks:
            u = units[k]
            if u.self_d is None and u.impls is not None and u.impls.shape[0] > 0:
                self_distances(u, seed=seed, **ridge)
            if u.self_d is not None and len(u.self_d):
                draws[k] = torch.as_tensor(u.self_d, dtype=torch.float64)
        between = [dist[p] for p in itertools.combinations(ks, 2)]
        med_self = float(torch.cat(list(draws.values())).median()) if draws else math.nan
        med_between = float(np.median(between)) if between else math.nan
        ratio = med_self / med_between if med_between > 0 else math.nan
        above, m = [], 0
        for i, j in itertools.permutations(ks, 2):
            if i in draws:
                d = dist[min(i, j), max(i, j)]
                above.append(d > float(draws[i].max()))
                m = len(draws[i])
        out.append(
            NullSpread(
                group=group,
                n_members=len(ks),
                n_draws=sum(len(d) for d in draws.values()),
                median_self=med_self,
                median_between=med_between,
                ratio=ratio,
                above_all=float(np.mean(above)) if above else math.nan,
                expected_above_all=1 / (m + 1) if m else math.nan,
                narrow=bool(ratio < threshold),  # NaN compares False: no verdict
                threshold=float(threshold),
            )
        )
    return out


def _binom_sf(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)`` (log-space terms, exact for moderate n)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    logs = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq
        for i in range(k, n + 1)
    ]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def _solve(f, target: float) -> float:
    """The ``p`` in [0, 1] with increasing ``f(p) = target`` (bisection)."""
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def clopper_pearson(k: int, n: int, ci: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) ``ci`` interval for a binomial rate ``k / n``
    (``(nan, nan)`` when ``n = 0``)."""
    if n == 0:
        return math.nan, math.nan
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    tail = (1 - ci) / 2
    lo = 0.0 if k == 0 else _solve(lambda p: _binom_sf(k, n, p), tail)
    hi = 1.0 if k == n else _solve(lambda p: _binom_sf(k + 1, n, p), 1 - tail)
    return lo, hi


def order_statistic_band(n: int, ci: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise ``ci`` band of the sorted sample of ``n`` Uniform(0, 1) values: the
    ``i``-th smallest is ``Beta(i, n + 1 - i)``, ``P(U_(i) <= x) = P(Binom(n, x) >= i)``."""
    tail = (1 - ci) / 2
    lo = [_solve(lambda x, i=i: _binom_sf(i, n, x), tail) for i in range(1, n + 1)]
    hi = [_solve(lambda x, i=i: _binom_sf(i, n, x), 1 - tail) for i in range(1, n + 1)]
    return np.array(lo), np.array(hi)


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """``P(X_pos > X_neg) + P(tie) / 2`` (the Mann-Whitney AUROC; NaN if a side is empty).

    For p-values pass ``positive = [-p for different-group pairs]`` and ``negative =
    [-p for same-group pairs]``: 1 = every different pair has a smaller p-value."""
    pos, neg = np.asarray(positive, dtype=float), np.asarray(negative, dtype=float)
    if not len(pos) or not len(neg):
        return math.nan
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + ties / 2)


def decision_rates(
    rows: Sequence[Mapping[str, Any]], same: Sequence[bool], ci: float = 0.95
) -> dict[str, Any]:
    """False-rejection rate (``same`` pairs), power (the others), their Clopper-Pearson
    intervals and the AUROC of the p-value (different pairs should have smaller ones).

    ``rows``: pairs with ``reject`` and ``p_value`` (e.g. from
    :func:`~interpeq.equivalence.pairwise.pairwise_congruity`); ``same[k]``: whether
    pair ``k`` is truly equivalent (same group). Undecidable pairs (``decision``; their
    nulls could not reach alpha) are counted apart: the false-rejection rate is over
    the decidable same pairs (an undecidable pair could not have been falsely rejected),
    the power over every different pair (an undecidable one is a detection missed)."""
    s = [r for r, k in zip(rows, same, strict=True) if k]
    d = [r for r, k in zip(rows, same, strict=True) if not k]
    s_dec = [r for r in s if r.get("decision") != "undecidable"]
    fr, pw = sum(r["reject"] for r in s_dec), sum(r["reject"] for r in d)
    fr_lo, fr_hi = clopper_pearson(fr, len(s_dec), ci)
    pw_lo, pw_hi = clopper_pearson(pw, len(d), ci)
    return {
        "n_same": len(s),
        "n_same_undecidable": len(s) - len(s_dec),
        "false_rejections": fr,
        "false_rejection_rate": fr / len(s_dec) if s_dec else float("nan"),
        "fr_ci_low": fr_lo,
        "fr_ci_high": fr_hi,
        "n_different": len(d),
        "n_different_undecidable": sum(r.get("decision") == "undecidable" for r in d),
        "rejections": pw,
        "power": pw / len(d) if d else float("nan"),
        "power_ci_low": pw_lo,
        "power_ci_high": pw_hi,
        "auroc": auroc([-r["p_value"] for r in d], [-r["p_value"] for r in s]),
    }
