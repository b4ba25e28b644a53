"""The calibrated null: co-implementation draws rescaled to the spread of real implementations.

The pairwise test ranks ``d(a, b)`` among ``a``'s co-implementation distances
``d(a, a*_j)``. It is valid when the draws spread about as widely as real
implementations of ``a``'s interpretation do, i.e. as the distances between the members
of ``a``'s group (same interpretation, other seeds). Resample-patching often moves a
model less than retraining does (a draw-to-member ratio ``c < 1``: the test rejects
equivalent pairs) or more (``c > 1``: the test loses power). The calibrated null keeps
the *shape* of the draws and takes their *scale* from the group (docs/calibration.md,
section 2):

    d~(a, a*_j) = S * (1 + kappa * (d(a, a*_j) / med_draws - 1))

* ``med_draws``: the median of the group's pooled draws (every member's ``m`` draws);
* ``S = M * exp(z * se)``: ``M`` the median distance between the group's members,
  leaving out the tested pair; ``se = 1.2533 * max(v_draws, v_between) / sqrt(n)`` the
  standard error of ``log M`` for ``n`` member pairs (normal approximation of the
  median), ``z = CALIBRATION_Z`` a margin for that error;
* ``kappa = max(1, v_between / v_draws)``: relative spreads (``1.4826 * MAD / median``);
  the draws are widened, never narrowed, when the members spread relatively more.

Assumption: the draws' distances are the members' distances up to a scale factor (a
scale family), the group's members are exchangeable implementations of one
interpretation, and the group has at least ``MIN_MEMBERS`` members (at least five
member pairs besides the tested one). The rule is scale-invariant: the false-rejection
rate does not depend on ``c``; ``interpeq.equivalence.nullsim`` checks it by simulation
(the table in docs/calibration.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

MIN_MEMBERS = 4  # a group calibrates its null from >= 4 members (>= 5 member pairs)
CALIBRATION_Z = 0.5  # margin on log M, in standard errors (docs/calibration.md, table)
MAD_TO_SD = 1.4826  # MAD of a normal distribution -> its standard deviation
MEDIAN_SE = 1.2533  # sd of a sample median = 1.2533 * sd / sqrt(n) (normal data)


def relative_spread(x: Tensor) -> float:
    """``1.4826 * MAD(x) / median(x)``: a robust coefficient of variation (0 for < 2 values)."""
    if x.numel() < 2:
        return 0.0
    med = x.median()
    if float(med) <= 0:
        return 0.0
    return float(MAD_TO_SD * (x / med - 1).abs().median())


def calibration(pooled: Tensor, between: Tensor, *, z: float = CALIBRATION_Z) -> dict[str, float]:
    """The numbers of the calibrated null for one group (see the module doc).

    ``pooled``: the group's draws ``d(a, a*_j)`` pooled over its members; ``between``:
    distances between its members (the tested pair left out). Returns ``scale`` (``S``),
    ``kappa``, ``median_draws``, ``median_between`` (``M``), the relative spreads and
    ``factor = S / median_draws`` (how much the draws are stretched: > 1 widens)."""
    pooled = pooled.double().flatten()
    between = between.double().flatten().to(pooled.device)
    med_d, med_b = float(pooled.median()), float(between.median())
    v_d, v_b = relative_spread(pooled), relative_spread(between)
    se = MEDIAN_SE * max(v_d, v_b) / math.sqrt(len(between))
    scale = med_b * math.exp(z * se)
    kappa = max(1.0, v_b / v_d) if v_d > 0 else 1.0
    return {
        "scale": scale,
        "kappa": kappa,
        "median_draws": med_d,
        "median_between": med_b,
        "spread_draws": v_d,
        "spread_between": v_b,
        "factor": scale / med_d if med_d > 0 else math.inf,
    }


def calibrated_draws(
    own: Tensor, pooled: Tensor, between: Tensor, *, z: float = CALIBRATION_Z
) -> Tensor:
    """``own [m]`` draws of one unit rescaled to its group's between-member spread.

    ``pooled``: the group's draws (``own`` among them), ``between``: distances between
    the group's members without the tested pair (at least ``MIN_MEMBERS`` members give
    at least five). Same device and dtype as ``own`` (float64)."""
    if between.numel() < 2:
        raise ValueError(
            f"a calibrated null needs distances between at least {MIN_MEMBERS} members of "
            f"the group (got {between.numel()} member pair(s))"
        )
    c = calibration(pooled, between, z=z)
    own = own.double()
    rel = own / c["median_draws"] if c["median_draws"] > 0 else torch.ones_like(own)
    return (c["scale"] * (1 + c["kappa"] * (rel - 1))).clamp_min(0.0)


def min_p_value(counts: Sequence[int]) -> float:
    """The smallest p-value the Bonferroni pair test can return, given the number of
    null values of each direction (0: a direction without a usable null, p = 1)."""
    best = min((1 / (n + 1) for n in counts if n > 0), default=1.0)
    return min(1.0, 2 * best)


def decision(p_value: float, min_p: float, alpha: float) -> str:
    """``"rejected"``, ``"equivalent"`` (not rejected by a test that could have) or
    ``"undecidable"`` (the smallest attainable p-value is above ``alpha``)."""
    if min_p > alpha:
        return "undecidable"
    return "rejected" if p_value <= alpha else "equivalent"


def members_needed(impls: str, alpha: float, m: int) -> int:
    """Members per group that make a within-group pair decidable with this null."""
    if impls == "training":  # each direction ranks among the n - 2 other members
        return math.ceil(2 / alpha) + 1
    if impls in ("auto", "calibrated"):
        return MIN_MEMBERS
    return 1  # the intervention null needs no members, only m >= 2 / alpha - 1 draws
