"""The task catalogue (docs/method.md section 10) and the task registry.

Each task is defined once, by a builder ``(L, V) -> [Variable, ...]`` whose
causal model *is* the definition; its docstring states the definition in words
(first line = one-line summary). ``L`` is the number of content positions,
``V`` the number of token values; positions ``i`` are 0-based content
positions (the BOS is not counted).

Variable kinds follow what a transformer component could plausibly compute:
attention heads move or count information across positions (``attn``), MLPs
apply a per-position map (``mlp``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import torch
from torch import Tensor

from interpeq.tasks import samplers
from interpeq.tasks.base import N_VALUES, SEQ_LEN, CausalModel, Sampler, Task, Variable

Builder = Callable[[int, int], list[Variable]]


@dataclass(frozen=True)
class TaskSpec:
    """A registered task: its builder, sampler and kind (``task`` or ``matched``)."""

    name: str
    build: Builder
    sampler: Sampler
    kind: str = "task"
    source: str = ""  # the task file that registered it ("" = shipped with interpeq)

    @property
    def doc(self) -> str:
        """The builder's docstring plus the sampler's (the full task definition)."""
        sampler_doc = inspect.cleandoc(self.sampler.__doc__ or "")
        sampler_doc = sampler_doc.replace("\n\n", "\n")
        return (
            inspect.cleandoc(self.build.__doc__ or "")
            + f"\n\nSampler ``{self.sampler.__name__}``: {sampler_doc}"
        )


REGISTRY: dict[str, TaskSpec] = {}
# The task file being executed by :func:`interpeq.tasks.user.load_task_file` (a stack,
# so a task file may load another): what ``register`` records as a task's source and
# names in its errors. Empty while interpeq's own modules register the shipped tasks.
LOADING: list[str] = []
_TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def register(name: str, sampler: Sampler = samplers.uniform, kind: str = "task"):
    """Decorator adding a builder to :data:`REGISTRY` under ``name``.

    In a task file a name must be an identifier (it becomes part of member ids and
    folder names) and may not reuse a shipped task's or another file's name: zoos
    record tasks by name, so one name must mean one interpretation.
    """
    source = LOADING[-1] if LOADING else ""

    def deco(build: Builder) -> Builder:
        if source:
            _check_user_name(name, source)
        if name in REGISTRY:
            old = REGISTRY[name]
            if source and not old.source:
                raise ValueError(
                    f"task file {source}: task {name!r} clashes with the shipped task of that "
                    "name; rename it (interpeq tasks lists the shipped names)"
                )
            if source and old.source != source:
                raise ValueError(
                    f"task file {source}: task {name!r} is also defined in task file "
                    f"{old.source}; rename one of them"
                )
            raise ValueError(
                f"task {name!r} registered twice" + (f" in {source}" if source else "")
            )
        REGISTRY[name] = TaskSpec(name, build, sampler, kind, source)
        return build

    return deco


def _check_user_name(name: object, source: str) -> None:
    if not isinstance(name, str) or not _TASK_NAME.match(name):
        raise ValueError(
            f"task file {source}: task name {name!r} must be an identifier (letters, digits, "
            "underscores), e.g. 'my_task'"
        )


def list_tasks(kind: str | None = None) -> list[str]:
    """Registered task names (optionally only ``kind`` ``"task"`` or ``"matched"``)."""
    return [n for n, s in REGISTRY.items() if kind is None or s.kind == kind]


@cache
def get_task(name: str, seq_len: int = SEQ_LEN, n_values: int = N_VALUES) -> Task:
    """The task ``name`` at the given sequence length (BOS included) and value count."""
    if name not in REGISTRY:
        raise ValueError(
            f"unknown task {name!r}; valid tasks: {', '.join(REGISTRY)} (a task defined in "
            "a task file needs it loaded: --tasks <file>, or interpeq.tasks.load_task_file)"
        )
    spec = REGISTRY[name]
    if seq_len < 2 or n_values < 2:
        raise ValueError(f"seq_len and n_values must be >= 2, got {seq_len}, {n_values}")
    model = CausalModel(spec.build(seq_len - 1, n_values))
    return Task(name, model, spec.sampler, seq_len=seq_len, n_values=n_values, doc=spec.doc)


# ---------------------------------------------------------------- primitives
# All take and return [batch, L] long tensors unless stated.


def positions(x: Tensor) -> Tensor:
    """0-based content position of every entry."""
    return torch.arange(x.shape[1]).expand_as(x)


def count_where(x: Tensor, cmp: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """``out[b, i] = #{j : cmp(x[b, j], x[b, i])}`` (attention-style counting)."""
    return cmp(x[:, None, :], x[:, :, None]).sum(-1)


def stable_rank(x: Tensor, descending: bool = False) -> Tensor:
    """Target slot of each element in a stable sort: #{strictly before it} + #{equal, to its left}."""
    before = count_where(x, torch.gt if descending else torch.lt)
    i = torch.arange(x.shape[1])
    equal_left = ((x[:, None, :] == x[:, :, None]) & (i[None, :] < i[:, None])).sum(-1)
    return before + equal_left


def place(x: Tensor, slot: Tensor) -> Tensor:
    """``out[b, j] = x[b, i]`` for the ``i`` with ``slot[b, i] == j``.

    A slot nobody targets holds 0; when several target one slot the largest
    value wins (deterministic even for patched, non-permutation slots).
    """
    return torch.zeros_like(x).scatter_reduce(1, slot, x, reduce="amax", include_self=False)


def shift_left(x: Tensor, fill: Tensor) -> Tensor:
    """``out[i] = x[i + 1]``, ``fill`` (``[batch, 1]``) at the last position."""
    return torch.cat([x[:, 1:], fill], dim=1)


def shift_right(x: Tensor, fill: Tensor) -> Tensor:
    """``out[i] = x[i - 1]``, ``fill`` (``[batch, 1]``) at position 0."""
    return torch.cat([fill, x[:, :-1]], dim=1)


def broadcast(v: Tensor, like: Tensor) -> Tensor:
    """A per-row scalar ``[batch]`` repeated at every position."""
    return v[:, None].expand_as(like).clone()


def zeros_col(x: Tensor) -> Tensor:
    return torch.zeros_like(x[:, :1])


# ---------------------------------------------------------------- the tasks


def _sort(descending: bool) -> Builder:
    def build(L: int, V: int) -> list[Variable]:
        return [
            Variable(
                "rank",
                ("x",),
                lambda x: stable_rank(x, descending),
                "attn",
                "target slot of x_i: #{j: x_j "
                + (">" if descending else "<")
                + " x_i} + #{j < i: x_j = x_i}",
                # one head cannot carry a stable rank that a later head can route on
                # (runs: benchmarks/results/task_design_history.md)
                heads=4,
            ),
            Variable("output", ("x", "rank"), place, "attn", "y_rank[i] = x_i", heads=2),
        ]

    return build


@register("sort_ascending")
def sort_ascending(L: int, V: int) -> list[Variable]:
    """y = x sorted ascending.

    rank_i = #{j: x_j < x_i} + #{j < i: x_j = x_i} (stable sort slot, a
    permutation of 0..L-1); y_j = x_i for the i with rank_i = j (a slot no
    element targets holds 0; if several do, the largest value).
    """
    return _sort(False)(L, V)


@register("sort_descending")
def sort_descending(L: int, V: int) -> list[Variable]:
    """y = x sorted descending.

    rank_i = #{j: x_j > x_i} + #{j < i: x_j = x_i}; y_j = x_i for the i with
    rank_i = j (a slot no element targets holds 0; if several do, the largest).
    """
    return _sort(True)(L, V)


@register("add_index")
def add_index(L: int, V: int) -> list[Variable]:
    """y_i = (x_i + i) mod V.

    shifted_i = x_i + i (unreduced, per position); y_i = shifted_i mod V.
    """
    return [
        Variable("shifted", ("x",), lambda x: x + positions(x), "mlp", "x_i + i"),
        Variable("output", ("shifted",), lambda s: s % V, "mlp", "shifted_i mod V"),
    ]


@register("rank")
def rank(L: int, V: int) -> list[Variable]:
    """y_i = #{j: x_j < x_i} (number of strictly smaller elements, 0..L-1).

    n_leq_i = #{j: x_j <= x_i}; n_eq_i = #{j: x_j = x_i} (includes i itself);
    y_i = max(n_leq_i - n_eq_i, 0) (the clamp only matters under interventions).
    Needs L <= V so that outputs stay tokens.
    """
    if L > V:
        raise ValueError(f"rank needs seq_len - 1 <= n_values (outputs 0..L-1), got L={L}, V={V}")
    return [
        Variable("n_leq", ("x",), lambda x: count_where(x, torch.le), "attn", "#{j: x_j <= x_i}"),
        Variable("n_eq", ("x",), lambda x: count_where(x, torch.eq), "attn", "#{j: x_j = x_i}"),
        Variable(
            "output",
            ("n_leq", "n_eq"),
            lambda le, eq: (le - eq).clamp(min=0),
            "mlp",
            "max(n_leq - n_eq, 0)",
        ),
    ]


@register("interleave_reverse")
def interleave_reverse(L: int, V: int) -> list[Variable]:
    """y = x_0, x_{L-1}, x_1, x_{L-2}, ... (x interleaved with its reverse, first L).

    forward_i = x_{i // 2}; backward_i = x_{L-1-i//2};
    y_i = forward_i for even i, backward_i for odd i.
    """
    idx = torch.arange(L) // 2

    def gather(x: Tensor, index: Tensor) -> Tensor:
        return x.gather(1, index.expand_as(x))

    return [
        Variable("forward", ("x",), lambda x: gather(x, idx), "attn", "x_{i//2}"),
        Variable("backward", ("x",), lambda x: gather(x, L - 1 - idx), "attn", "x_{L-1-i//2}"),
        Variable(
            "output",
            ("forward", "backward"),
            lambda f, b: torch.where(positions(f) % 2 == 0, f, b),
            "mlp",
            "forward_i if i even else backward_i",
        ),
    ]


@register("add_next")
def add_next(L: int, V: int) -> list[Variable]:
    """y_i = (x_i + x_{i+1}) mod V for i < L-1; y_{L-1} = x_{L-1}.

    next_i = x_{i+1}, 0 at the last position; y_i = (x_i + next_i) mod V.
    """
    return [
        Variable("next", ("x",), lambda x: shift_left(x, zeros_col(x)), "attn", "x_{i+1}, last 0"),
        Variable("output", ("x", "next"), lambda x, n: (x + n) % V, "mlp", "(x_i + next_i) mod V"),
    ]


@register("any_duplicate", sampler=samplers.duplicate_balanced)
def any_duplicate(L: int, V: int) -> list[Variable]:
    """y_i = 1 at every position if some value occurs twice in x, else 0.

    dup_i = [x_j = x_i for some j != i] (attention from x_i to the *other* tokens
    equal to it, against a BOS sink); y_i = max_j dup_j (attention to the
    positions holding a duplicate, against a BOS sink).
    """
    # Not count_i -> is_dup_i = [count_i > 1] (mlp) -> y = max_j is_dup_j
    # (attn -> mlp -> attn): SIIT routed around ``count``. Here the layer-1 head reads
    # the layer-0 heads directly (no MLP hop). Train it at lr 1e-3
    # (configs/task/any_duplicate.yaml): at the default 3e-3 it stalls on rows with a
    # single repeated value. Runs: benchmarks/results/task_design_history.md.

    def dup(x: Tensor) -> Tensor:
        others = ~torch.eye(x.shape[1], dtype=torch.bool)
        return ((x[:, None, :] == x[:, :, None]) & others).any(-1).long()

    return [
        Variable("dup", ("x",), dup, "attn", "[x_j = x_i for some j != i]", heads=4),
        Variable("output", ("dup",), lambda d: broadcast(d.amax(1), d), "attn", "max_j dup_j"),
    ]


@register("next_minus_current")
def next_minus_current(L: int, V: int) -> list[Variable]:
    """y_i = (x_{i+1} - x_i) mod V for i < L-1; y_{L-1} = 0.

    next_i = x_{i+1}, 0 at the last position (as in ``add_next``);
    y_i = (next_i - x_i) mod V for i < L-1, and y_{L-1} = 0 whatever next is.
    """
    # Not next_{L-1} = x_{L-1} (which also gives y_{L-1} = 0): under an interchange
    # on ``next`` that convention asks the aligned head to copy its *own* token at the
    # last position (x_i again, beside x_{i+1} elsewhere) and the output MLP to give
    # x^src_{L-1} - x^base_{L-1} there; SIIT then collapsed to a constant output.
    # Hence next_{L-1} = 0 and a fixed 0 output at the last position
    # (runs: benchmarks/results/task_design_history.md).
    last = torch.arange(L) == L - 1

    def diff(x: Tensor, n: Tensor) -> Tensor:
        return torch.where(last, 0, (n - x) % V)

    return [
        Variable("next", ("x",), lambda x: shift_left(x, zeros_col(x)), "attn", "x_{i+1}, last 0"),
        Variable("output", ("x", "next"), diff, "mlp", "(next_i - x_i) mod V, last 0"),
    ]


@register("all_equal", sampler=samplers.all_equal_balanced)
def all_equal(L: int, V: int) -> list[Variable]:
    """y_i = 1 at every position if all of x is equal, else 0 (via mismatches with x_i).

    n_diff_i = #{j: x_j != x_i} (attention from x_i to the tokens that differ from
    it, e.g. against a BOS sink); y_i = [n_diff_i = 0]. Every n_diff_i is 0 exactly
    when x is constant, so each position decides alone (a per-position MLP).
    """
    # Not first_i = x_0 -> eq_first_i = [x_i = first_i] -> y = min_j eq_first_j
    # (attn -> mlp -> attn): a single layer-1 head can already compare every token
    # with x_i, so SIIT routed around ``first`` and ``eq_first``
    # (runs: benchmarks/results/task_design_history.md).
    return [
        Variable("n_diff", ("x",), lambda x: count_where(x, torch.ne), "attn", "#{j: x_j != x_i}"),
        Variable("output", ("n_diff",), lambda d: (d == 0).long(), "mlp", "[n_diff_i = 0]"),
    ]


@register("alternating_parity")
def alternating_parity(L: int, V: int) -> list[Variable]:
    """y_0 = x_0 mod 2; y_i = 1 if x_i and x_{i-1} differ in parity, else 0.

    parity_i = x_i mod 2; prev_parity_i = parity_{i-1}, 0 at i = 0;
    y_i = (parity_i + prev_parity_i) mod 2. Uniform inputs give ~50% ones.
    """
    return [
        Variable("parity", ("x",), lambda x: x % 2, "mlp", "x_i mod 2"),
        Variable(
            "prev_parity",
            ("parity",),
            lambda p: shift_right(p, zeros_col(p)),
            "attn",
            "parity_{i-1}, 0 at i=0",
        ),
        Variable(
            "output",
            ("parity", "prev_parity"),
            lambda p, q: (p + q) % 2,
            "mlp",
            "parity_i xor prev_parity_i",
        ),
    ]


@register("divide_by_max", sampler=samplers.random_max)
def divide_by_max(L: int, V: int) -> list[Variable]:
    """y_i = floor((V-1) * x_i / max(x)) (= floor(10 x_i / max x) for V = 11), 0 if max(x) = 0.

    max_i = max_j x_j; y_i = min(floor((V-1) x_i / max_i), V-1), 0 where max_i = 0
    (the min only matters under interventions).
    """

    def divide(x: Tensor, m: Tensor) -> Tensor:
        y = ((V - 1) * x) // m.clamp(min=1)
        return torch.where(m > 0, y.clamp(max=V - 1), 0)

    return [
        Variable("max", ("x",), lambda x: broadcast(x.amax(1), x), "attn", "max_j x_j"),
        Variable("output", ("x", "max"), divide, "mlp", "floor((V-1) x_i / max_i)"),
    ]
