"""Bootstrap confidence intervals of a mean over pairs of members.

A group pair's congruities are not independent draws: the pairs ``a~b`` and ``a~c``
share the member ``a``, and whatever is peculiar to ``a`` (its seed, how well it
learned) moves both. The sampling unit is the member, so :func:`member_bootstrap`
resamples members, not pairs: each replicate draws every group's members with
replacement (independently per group, the same draw for every block the group is in)
and weights each pair by the product of its two members' draw counts. That is exactly
"the pairs among the drawn members" of a within-group block (a member drawn twice
contributes its pairs twice; a draw paired with itself is no pair) and "all cross pairs
of the two draws" of a between-group block. Resampling pairs as if independent
(:func:`pair_bootstrap`) ignores the shared members and gives intervals that are too
narrow (on member-driven congruities, coverage well below the nominal level: see
``tests/equivalence/test_bootstrap.py``); it is kept for results that carry no member
ids.

Both return a percentile interval of the (weighted) mean. A replicate with no pair
(all of a small group's draws the same member) has no mean and is left out.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import torch
from torch import Tensor

MEMBER_KEYS = ("a", "b", "group_a", "group_b")
_CHUNK = 2**22  # bootstrap weights held at once (replicates x pairs), float64: 32 MiB


def member_keys(rows: Sequence[Any]) -> tuple[list, list] | None:
    """``(keys_a, keys_b)``, a member key being ``(group, id)``, or ``None`` when some
    row is not a dict with ``a``, ``b``, ``group_a``, ``group_b`` (then the members of
    a pair cannot be told and only the pair bootstrap applies)."""
    if not all(isinstance(r, dict) and all(k in r for k in MEMBER_KEYS) for r in rows):
        return None
    keys_a = [(str(r["group_a"]), r["a"]) for r in rows]
    keys_b = [(str(r["group_b"]), r["b"]) for r in rows]
    return keys_a, keys_b


def _interval(boot: Tensor, ci: float) -> tuple[float, float]:
    boot = boot[~boot.isnan()]
    if not len(boot):
        return float("nan"), float("nan")
    q = torch.tensor([(1 - ci) / 2, (1 + ci) / 2], dtype=torch.float64)
    lo, hi = torch.quantile(boot, q).tolist()
    return lo, hi


def pair_bootstrap(values: Tensor, *, n_boot: int, ci: float, seed: int) -> tuple[float, float]:
    """Percentile CI of the mean of ``values`` resampling them as independent."""
    c = torch.as_tensor(values, dtype=torch.float64)
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randint(0, len(c), (n_boot, len(c)), generator=gen)
    return _interval(c[idx].mean(1), ci)


def _draw_counts(groups: dict[str, list[int]], n: int, n_boot: int, gen) -> Tensor:
    """``[n_boot, n]`` draw counts: each group's members resampled with replacement."""
    counts = torch.zeros(n_boot, n, dtype=torch.float64)
    for g in sorted(groups):
        idx = torch.tensor(groups[g])
        draws = torch.randint(0, len(idx), (n_boot, len(idx)), generator=gen)
        local = torch.zeros(n_boot, len(idx), dtype=torch.float64)
        local.scatter_add_(1, draws, torch.ones_like(draws, dtype=torch.float64))
        counts[:, idx] = local
    return counts


def member_bootstrap(
    values: Tensor,
    keys_a: Sequence[Hashable],
    keys_b: Sequence[Hashable],
    *,
    n_boot: int,
    ci: float,
    seed: int,
) -> tuple[float, float]:
    """Percentile CI of the mean of pair ``values`` resampling the members.

    ``keys_a[k]`` / ``keys_b[k]`` are the members of pair ``k`` as ``(group, id)``
    (:func:`member_keys`); each group's members are those that appear in some pair.
    Pair ``k`` weighs ``count(a_k) * count(b_k)`` in a replicate (see the module doc).
    """
    c = torch.as_tensor(values, dtype=torch.float64)
    if not len(c) == len(keys_a) == len(keys_b):
        raise ValueError(
            f"{len(c)} values but {len(keys_a)} / {len(keys_b)} member keys: one pair each"
        )
    pos: dict[Hashable, int] = {}
    for key in (*keys_a, *keys_b):
        pos.setdefault(key, len(pos))
    groups: dict[str, list[int]] = {}
    for (g, _), i in pos.items():
        groups.setdefault(str(g), []).append(i)
    ia = torch.tensor([pos[k] for k in keys_a])
    ib = torch.tensor([pos[k] for k in keys_b])
    gen = torch.Generator().manual_seed(int(seed))
    counts = _draw_counts(groups, len(pos), n_boot, gen)
    boot = torch.empty(n_boot, dtype=torch.float64)
    step = max(1, _CHUNK // max(1, len(c)))
    for lo in range(0, n_boot, step):
        cnt = counts[lo : lo + step]
        w = cnt[:, ia] * cnt[:, ib]  # [chunk, pairs]
        total = w.sum(1)
        mean = (w @ c) / total.clamp_min(1)
        boot[lo : lo + step] = torch.where(total > 0, mean, torch.nan)
    return _interval(boot, ci)
