"""Behaviour-matched pairs: same input-output map, different intermediate variables.

Each alternative below computes exactly the output of a catalogue task by a
different mechanism, and shares that task's sampler (same input distribution).
Models trained to the two members of a pair behave identically yet implement
different interpretations, which is what an interpretive-equivalence
estimator must tell apart from behaviour alone.
"""

from __future__ import annotations

import torch

from interpeq.tasks import samplers
from interpeq.tasks.base import Variable
from interpeq.tasks.catalog import (
    broadcast,
    place,
    register,
    shift_right,
    stable_rank,
    zeros_col,
)

MATCHED_PAIRS: list[tuple[str, str]] = [
    ("all_equal", "all_equal_minmax"),
    ("any_duplicate", "any_duplicate_sorted"),
    ("alternating_parity", "alternating_parity_sum"),
]


def list_matched_pairs() -> list[tuple[str, str]]:
    """Pairs of task names with identical behaviour and different interpretations."""
    return list(MATCHED_PAIRS)


@register("all_equal_minmax", sampler=samplers.all_equal_balanced, kind="matched")
def all_equal_minmax(L: int, V: int) -> list[Variable]:
    """y_i = 1 at every position if all of x is equal, else 0 (via max = min).

    max_i = max_j x_j; min_i = min_j x_j; y_i = [max_i = min_i].
    Behaviour-matched with ``all_equal`` (which counts the tokens differing from x_i).
    """
    return [
        Variable("max", ("x",), lambda x: broadcast(x.amax(1), x), "attn", "max_j x_j"),
        Variable("min", ("x",), lambda x: broadcast(x.amin(1), x), "attn", "min_j x_j"),
        Variable("output", ("max", "min"), lambda a, b: (a == b).long(), "mlp", "[max = min]"),
    ]


@register("any_duplicate_sorted", sampler=samplers.duplicate_balanced, kind="matched")
def any_duplicate_sorted(L: int, V: int) -> list[Variable]:
    """y_i = 1 at every position if some value occurs twice in x, else 0 (sort, compare neighbours).

    rank_i = #{j: x_j < x_i} + #{j < i: x_j = x_i}; sorted = x placed by rank
    (as in ``sort_ascending``); eq_prev_i = [sorted_i = sorted_{i-1}], 0 at
    i = 0; y_i = max_j eq_prev_j. Behaviour-matched with ``any_duplicate``
    (which matches each token against the others).
    """

    def eq_prev(s: torch.Tensor) -> torch.Tensor:
        e = (s[:, 1:] == s[:, :-1]).long()
        return torch.cat([zeros_col(s), e], dim=1)

    return [
        Variable("rank", ("x",), stable_rank, "attn", "stable ascending sort slot"),
        Variable("sorted", ("x", "rank"), place, "attn", "x sorted ascending"),
        Variable("eq_prev", ("sorted",), eq_prev, "any", "[sorted_i = sorted_{i-1}]"),
        Variable(
            "output", ("eq_prev",), lambda e: broadcast(e.amax(1), e), "attn", "max_j eq_prev_j"
        ),
    ]


@register("alternating_parity_sum", kind="matched")
def alternating_parity_sum(L: int, V: int) -> list[Variable]:
    """y_0 = x_0 mod 2; y_i = 1 if x_i and x_{i-1} differ in parity, else 0 (via their sum).

    prev_i = x_{i-1}, 0 at i = 0 (the whole token, not its parity);
    pair_sum_i = x_i + prev_i; y_i = pair_sum_i mod 2. Behaviour-matched with
    ``alternating_parity`` (which moves only the parity bit).
    """
    return [
        Variable("prev", ("x",), lambda x: shift_right(x, zeros_col(x)), "attn", "x_{i-1}"),
        Variable("pair_sum", ("x", "prev"), lambda x, p: x + p, "mlp", "x_i + x_{i-1}"),
        Variable("output", ("pair_sum",), lambda s: s % 2, "mlp", "pair_sum_i mod 2"),
    ]
