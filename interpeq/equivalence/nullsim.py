"""Simulated zoos for checking a null's validity and power (docs/calibration.md, section 3).

A group of ``k`` members of one interpretation: the distance of two members is

    d(a, b) = mu * (1 + v * (sqrt(rho / 2) * (u_a + u_b) + sqrt(1 - rho) * e_ab))

(``u`` a member effect, ``e`` pair noise, standard normal: coefficient of variation
``v``, a share ``rho`` of it from the members), and member ``a``'s ``m``
co-implementation draws are ``c`` times such distances to fresh members ``a*_j``
(``c``: the draw-to-member ratio; ``c = 1`` is the exchangeable case). A pair of two
groups apart is ``delta`` times farther on average (the separation). Each of ``R``
replications is an independent zoo; the pair tested is members 0 and 1 of a group
(false rejections) or member 0 of group A and of group B (power).

Nulls compared: ``"auto"`` (the calibrated null, :mod:`interpeq.equivalence.nulls`,
the same code as ``interpeq compare``), ``"intervention"`` (the draws as they are) and
``"switch"`` (the rule before calibration: the group's other members as the null when
the draws' median is below half the between-member median, else the draws).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from interpeq.equivalence.defaults import DEFAULT_ALPHA, DEFAULT_M
from interpeq.equivalence.nulls import calibrated_draws

RULES = ("auto", "intervention", "switch")


def simulate_group(
    reps: int, k: int, m: int, c: float, v: float, rho: float, gen: torch.Generator
) -> tuple[Tensor, Tensor]:
    """``(d [R, k, k], draws [R, k, m])`` of ``R`` simulated groups (module doc)."""
    u = torch.randn(reps, k, generator=gen, dtype=torch.float64)
    e = torch.randn(reps, k, k, generator=gen, dtype=torch.float64)
    e = (e + e.transpose(1, 2)) / math.sqrt(2)
    member, noise = math.sqrt(rho / 2), math.sqrt(1 - rho)
    d = 1 + v * (member * (u[:, :, None] + u[:, None, :]) + noise * e)
    fresh = torch.randn(reps, k, m, generator=gen, dtype=torch.float64)
    ed = torch.randn(reps, k, m, generator=gen, dtype=torch.float64)
    draws = c * (1 + v * (member * (u[:, :, None] + fresh) + noise * ed))
    return d.clamp_min(1e-9), draws.clamp_min(1e-9)


def _between(d: Tensor, leave_out: tuple[int, int] | None) -> Tensor:
    """``[R, n]`` distances of every member pair of each group, ``leave_out`` excluded."""
    k = d.shape[1]
    mask = torch.ones(k, k, dtype=torch.bool).triu(1)
    if leave_out is not None:
        mask[leave_out] = False
    return d[:, mask]


def _direction_p(d_ab: Tensor, d: Tensor, draws: Tensor, i: int, other: int | None, rule: str):
    """``[R]`` one-sided rank p-value of the direction from member ``i`` of groups ``d``."""
    own = draws[:, i]
    if rule == "auto":
        null = calibrated_draws(own, draws.flatten(1), _between(d, _pair(i, other)))
    elif rule == "intervention":
        null = own
    else:  # "switch": the rule before calibration
        narrow = draws.flatten(1).median(1).values < 0.5 * _between(d, None).median(1).values
        peers = [q for q in range(d.shape[1]) if q not in (i, other)]
        members = d[:, i, peers]
        p_members = (1 + (members >= d_ab[:, None]).sum(1)) / (len(peers) + 1)
        p_draws = (1 + (own >= d_ab[:, None]).sum(1)) / (own.shape[1] + 1)
        return torch.where(narrow, p_members, p_draws)
    return (1 + (null >= d_ab[:, None]).sum(1)) / (null.shape[1] + 1)


def _pair(i: int, other: int | None) -> tuple[int, int] | None:
    return None if other is None else (min(i, other), max(i, other))


def rejection_rate(
    rule: str, *, reps: int, k: int, m: int = DEFAULT_M, c: float, v: float, rho: float = 0.0,
    delta: float | None = None, alpha: float = DEFAULT_ALPHA, seed: int = 0,
) -> float:  # fmt: skip
    """Share of ``reps`` simulated pairs the test rejects: two members of one group
    (``delta=None``: the false-rejection rate) or of two groups ``delta`` apart (power;
    both groups with the same ``k``, ``c``, ``v``, ``rho``)."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose one of {list(RULES)}")
    gen = torch.Generator().manual_seed(seed)
    d_a, draws_a = simulate_group(reps, k, m, c, v, rho, gen)
    if delta is None:
        d_ab = d_a[:, 0, 1]
        p_a = _direction_p(d_ab, d_a, draws_a, 0, 1, rule)
        p_b = _direction_p(d_ab, d_a, draws_a, 1, 0, rule)
    else:
        d_b, draws_b = simulate_group(reps, k, m, c, v, rho, gen)
        d_ab = delta * (1 + v * torch.randn(reps, generator=gen, dtype=torch.float64))
        p_a = _direction_p(d_ab, d_a, draws_a, 0, None, rule)
        p_b = _direction_p(d_ab, d_b, draws_b, 0, None, rule)
    p = (2 * torch.minimum(p_a, p_b)).clamp(max=1.0)
    return float((p <= alpha).double().mean())


def calibration_table(
    cs: Sequence[float], vs: Sequence[float], *, reps: int, k: int = 4, rho: float = 0.0,
    deltas: Sequence[float] = (2.0, 3.0, 5.0), rules: Sequence[str] = RULES,
    alpha: float = DEFAULT_ALPHA, seed: int = 0,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per rule, ``v`` and ``c``: false-rejection rate with its standard error,
    and power at each separation in ``deltas``."""
    rows = []
    for rule in rules:
        for v in vs:
            for c in cs:
                common = dict(reps=reps, k=k, c=c, v=v, rho=rho, alpha=alpha, seed=seed)
                frr = rejection_rate(rule, **common)
                power = {f"power@{dl:g}": rejection_rate(rule, delta=dl, **common) for dl in deltas}
                se = math.sqrt(max(frr * (1 - frr), alpha * (1 - alpha)) / reps)
                rows.append(dict(rule=rule, k=k, rho=rho, v=v, c=c, frr=frr, se=se, **power))
    return rows
