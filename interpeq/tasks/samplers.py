"""Input samplers: ``sampler(n, length, n_values, generator) -> LongTensor [n, length]``.

Uniform sampling is degenerate for some tasks (nine uniform tokens out of
eleven are almost never all equal and almost always contain a duplicate), so
those tasks mix constructed positives and near-miss negatives into uniform
draws. Everything is vectorised and draws only from the given generator.
"""

from __future__ import annotations

import torch
from torch import Tensor


def uniform(n: int, length: int, n_values: int, gen: torch.Generator) -> Tensor:
    """Every token i.i.d. uniform on ``0..n_values-1``."""
    return torch.randint(0, n_values, (n, length), generator=gen)


def constant(n: int, length: int, n_values: int, gen: torch.Generator) -> Tensor:
    """One uniform value repeated over the row."""
    return torch.randint(0, n_values, (n, 1), generator=gen).expand(n, length).clone()


def distinct(n: int, length: int, n_values: int, gen: torch.Generator) -> Tensor:
    """``length`` distinct values in random order (needs ``length <= n_values``)."""
    return torch.rand(n, n_values, generator=gen).argsort(dim=1)[:, :length]


def shuffle(x: Tensor, gen: torch.Generator) -> Tensor:
    """Each row randomly permuted."""
    perm = torch.rand(x.shape, generator=gen).argsort(dim=1)
    return x.gather(1, perm)


def perturb_one(x: Tensor, n_values: int, gen: torch.Generator) -> Tensor:
    """Change one random position of each row to a different value."""
    n, length = x.shape
    pos = torch.randint(0, length, (n, 1), generator=gen)
    step = torch.randint(1, n_values, (n, 1), generator=gen)
    new = (x.gather(1, pos) + step) % n_values
    return x.scatter(1, pos, new)


def copy_one(x: Tensor, gen: torch.Generator) -> Tensor:
    """Copy the value at one random position onto another position of the row."""
    n, length = x.shape
    if length < 2:
        return x.clone()
    src = torch.randint(0, length, (n, 1), generator=gen)
    dst = (src + torch.randint(1, length, (n, 1), generator=gen)) % length
    return x.scatter(1, dst, x.gather(1, src))


def mix(gen: torch.Generator, weights: list[float], candidates: list[Tensor]) -> Tensor:
    """Row-wise mixture: row r comes from ``candidates[k]`` with probability ``weights[k]``."""
    n = candidates[0].shape[0]
    choice = torch.multinomial(
        torch.tensor(weights, dtype=torch.float64), n, replacement=True, generator=gen
    )
    stacked = torch.stack(candidates)  # [k, n, length]
    return stacked[choice, torch.arange(n)]


def all_equal_balanced(n: int, length: int, n_values: int, gen: torch.Generator) -> Tensor:
    """50% constant rows, 25% constant rows with one position changed, 25% uniform.

    About half the rows are all-equal; the near misses make the other half hard.
    """
    const = constant(n, length, n_values, gen)
    near = perturb_one(constant(n, length, n_values, gen), n_values, gen)
    return mix(gen, [0.5, 0.25, 0.25], [const, near, uniform(n, length, n_values, gen)])


def duplicate_balanced(n: int, length: int, n_values: int, gen: torch.Generator) -> Tensor:
    """50% rows of distinct values, 25% distinct rows with exactly one value copied, 25% uniform.

    About half the rows contain a duplicate (uniform rows of 9 tokens from 11
    values almost always do). When ``length > n_values`` every row must contain
    a duplicate and the sampler is uniform.
    """
    if length > n_values:
        return uniform(n, length, n_values, gen)
    dist = distinct(n, length, n_values, gen)
    one_dup = copy_one(distinct(n, length, n_values, gen), gen)
    return mix(gen, [0.5, 0.25, 0.25], [dist, one_dup, uniform(n, length, n_values, gen)])


def random_max(n: int, length: int, n_values: int, gen: torch.Generator) -> Tensor:
    """Per row a maximum ``m`` uniform on ``0..n_values-1``, then tokens uniform on ``0..m``.

    Uniform rows almost always have maximum 9 or 10; this spreads the maximum.
    """
    m = torch.randint(0, n_values, (n, 1), generator=gen)
    return (torch.rand(n, length, generator=gen) * (m + 1)).long().clamp(max=m)
