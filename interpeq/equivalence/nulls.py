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


def relative_spread(x: Tensor) -> Tensor:
    """``[R]`` robust coefficient of variation ``1.4826 * MAD / median`` of each row of
    ``x [R, n]`` (0 where a row has fewer than 2 values or a median <= 0)."""
    if x.shape[-1] < 2:
        return torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    med = x.median(-1, keepdim=True).values
    rel = (x / med.clamp_min(torch.finfo(x.dtype).tiny) - 1).abs().median(-1).values
    return torch.where(med.squeeze(-1) > 0, MAD_TO_SD * rel, torch.zeros_like(rel))


def calibration(pooled: Tensor, between: Tensor, *, z: float = CALIBRATION_Z) -> dict[str, Tensor]:
    """The numbers of the calibrated null of ``R`` groups at once (see the module doc).

    ``pooled [R, K]``: each group's draws ``d(a, a*_j)`` pooled over its members;
    ``between [R, n]``: distances between its members (the tested pair left out).
    Returns ``[R]`` tensors: ``scale`` (``S``), ``kappa``, ``median_draws``,
    ``median_between`` (``M``), the relative spreads, and ``factor = S / median_draws``
    (how much the draws are stretched: > 1 widens)."""
    pooled, between = pooled.double(), between.double().to(pooled.device)
    med_d, med_b = pooled.median(-1).values, between.median(-1).values
    v_d, v_b = relative_spread(pooled), relative_spread(between)
    se = MEDIAN_SE * torch.maximum(v_d, v_b) / math.sqrt(between.shape[-1])
    scale = med_b * torch.exp(z * se)
    kappa = torch.where(v_d > 0, (v_b / v_d.clamp_min(1e-300)).clamp_min(1.0), torch.ones_like(v_d))
    return {
        "scale": scale,
        "kappa": kappa,
        "median_draws": med_d,
        "median_between": med_b,
        "spread_draws": v_d,
        "spread_between": v_b,
        "factor": scale / med_d,
    }


def calibrated_draws(
    own: Tensor, pooled: Tensor, between: Tensor, *, z: float = CALIBRATION_Z
) -> Tensor:
    """``own [m]`` (or ``[R, m]``) draws of a unit rescaled to its group's between-member
    spread.

    ``pooled [K]`` (``[R, K]``): the group's draws (``own`` among them); ``between [n]``
    (``[R, n]``): distances between the group's members without the tested pair (at
    least ``MIN_MEMBERS`` members give at least five). float64, on ``own``'s device."""
    if between.shape[-1] < 2:
        raise ValueError(
            f"a calibrated null needs distances between at least {MIN_MEMBERS} members of "
            f"the group (got {between.shape[-1]} member pair(s))"
        )
    single = own.ndim == 1
    own, pooled, between = (x.double().reshape(-1, x.shape[-1]) for x in (own, pooled, between))
    c = calibration(pooled.to(own.device), between.to(own.device), z=z)
    rel = own / c["median_draws"].clamp_min(1e-300)[:, None]
    out = (c["scale"][:, None] * (1 + c["kappa"][:, None] * (rel - 1))).clamp_min(0.0)
    return out[0] if single else out


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
