"""Plain-Python (lists and loops, no torch) references for every task.

``STAGED[name](L, V)`` lists ``(variable, fn)`` in order, mirroring the
docstring's variables, so interventions can be recomputed by hand;
``DIRECT[name](x, V)`` is the one-line definition without intermediates.
"""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _place(x, slot):
    out = []
    for j in range(len(x)):
        cands = [x[i] for i in range(len(x)) if slot[i] == j]
        out.append(max(cands) if cands else 0)
    return out


def _stable_rank(x, descending=False):
    L = len(x)
    before = [
        sum(1 for j in range(L) if (x[j] > x[i] if descending else x[j] < x[i])) for i in range(L)
    ]
    return [before[i] + sum(1 for j in range(i) if x[j] == x[i]) for i in range(L)]


def _sort(descending):
    def staged(L, V):
        return [
            ("rank", lambda d: _stable_rank(d["x"], descending)),
            ("output", lambda d: _place(d["x"], d["rank"])),
        ]

    return staged


def _broadcast(v, L):
    return [v] * L


STAGED = {
    "sort_ascending": _sort(False),
    "sort_descending": _sort(True),
    "add_index": lambda L, V: [
        ("shifted", lambda d: [d["x"][i] + i for i in range(L)]),
        ("output", lambda d: [s % V for s in d["shifted"]]),
    ],
    "rank": lambda L, V: [
        ("n_leq", lambda d: [sum(1 for b in d["x"] if b <= a) for a in d["x"]]),
        ("n_eq", lambda d: [sum(1 for b in d["x"] if b == a) for a in d["x"]]),
        ("output", lambda d: [max(d["n_leq"][i] - d["n_eq"][i], 0) for i in range(L)]),
    ],
    "interleave_reverse": lambda L, V: [
        ("forward", lambda d: [d["x"][i // 2] for i in range(L)]),
        ("backward", lambda d: [d["x"][L - 1 - i // 2] for i in range(L)]),
        (
            "output",
            lambda d: [d["forward"][i] if i % 2 == 0 else d["backward"][i] for i in range(L)],
        ),
    ],
    "add_next": lambda L, V: [
        ("next", lambda d: [d["x"][i + 1] if i < L - 1 else 0 for i in range(L)]),
        ("output", lambda d: [(d["x"][i] + d["next"][i]) % V for i in range(L)]),
    ],
    "any_duplicate": lambda L, V: [
        ("dup", lambda d: [int(d["x"].count(a) > 1) for a in d["x"]]),
        ("output", lambda d: _broadcast(max(d["dup"]), L)),
    ],
    "next_minus_current": lambda L, V: [
        ("next", lambda d: [d["x"][i + 1] if i < L - 1 else 0 for i in range(L)]),
        (
            "output",
            lambda d: [(d["next"][i] - d["x"][i]) % V if i < L - 1 else 0 for i in range(L)],
        ),
    ],
    "all_equal": lambda L, V: [
        ("n_diff", lambda d: [sum(b != a for b in d["x"]) for a in d["x"]]),
        ("output", lambda d: [int(n == 0) for n in d["n_diff"]]),
    ],
    "alternating_parity": lambda L, V: [
        ("parity", lambda d: [a % 2 for a in d["x"]]),
        ("prev_parity", lambda d: [0] + d["parity"][:-1]),
        ("output", lambda d: [(d["parity"][i] + d["prev_parity"][i]) % 2 for i in range(L)]),
    ],
    "divide_by_max": lambda L, V: [
        ("max", lambda d: _broadcast(max(d["x"]), L)),
        (
            "output",
            lambda d: [
                min((V - 1) * d["x"][i] // d["max"][i], V - 1) if d["max"][i] > 0 else 0
                for i in range(L)
            ],
        ),
    ],
    "all_equal_minmax": lambda L, V: [
        ("max", lambda d: _broadcast(max(d["x"]), L)),
        ("min", lambda d: _broadcast(min(d["x"]), L)),
        ("output", lambda d: [int(d["max"][i] == d["min"][i]) for i in range(L)]),
    ],
    "any_duplicate_sorted": lambda L, V: [
        ("rank", lambda d: _stable_rank(d["x"])),
        ("sorted", lambda d: _place(d["x"], d["rank"])),
        (
            "eq_prev",
            lambda d: [0] + [int(d["sorted"][i] == d["sorted"][i - 1]) for i in range(1, L)],
        ),
        ("output", lambda d: _broadcast(max(d["eq_prev"]), L)),
    ],
    "alternating_parity_sum": lambda L, V: [
        ("prev", lambda d: [0] + d["x"][:-1]),
        ("pair_sum", lambda d: [d["x"][i] + d["prev"][i] for i in range(L)]),
        ("output", lambda d: [s % 2 for s in d["pair_sum"]]),
    ],
}


def _interleave(x):
    L, out = len(x), []
    for k in range(L):
        out += [x[k], x[L - 1 - k]]
    return out[:L]


def _alt_parity(x):
    return [x[0] % 2] + [int(x[i] % 2 != x[i - 1] % 2) for i in range(1, len(x))]


DIRECT = {
    "sort_ascending": lambda x, V: sorted(x),
    "sort_descending": lambda x, V: sorted(x, reverse=True),
    "add_index": lambda x, V: [(a + i) % V for i, a in enumerate(x)],
    "rank": lambda x, V: [sum(1 for b in x if b < a) for a in x],
    "interleave_reverse": lambda x, V: _interleave(x),
    "add_next": lambda x, V: [(x[i] + x[i + 1]) % V for i in range(len(x) - 1)] + [x[-1]],
    "any_duplicate": lambda x, V: [int(len(set(x)) < len(x))] * len(x),
    "next_minus_current": lambda x, V: [(x[i + 1] - x[i]) % V for i in range(len(x) - 1)] + [0],
    "all_equal": lambda x, V: [int(len(set(x)) == 1)] * len(x),
    "alternating_parity": lambda x, V: _alt_parity(x),
    "divide_by_max": lambda x, V: [(V - 1) * a // max(x) if max(x) else 0 for a in x],
}
DIRECT["all_equal_minmax"] = DIRECT["all_equal"]
DIRECT["any_duplicate_sorted"] = DIRECT["any_duplicate"]
DIRECT["alternating_parity_sum"] = DIRECT["alternating_parity"]


def ref_run(name, x, V, patch=None):
    """All reference variables of task ``name`` on one content row ``x``."""
    patch = patch or {}
    d = {"x": list(x)}
    for var, fn in STAGED[name](len(x), V):
        d[var] = list(patch[var]) if var in patch else fn(d)
    return d


def ref_run_chain(stages, x, V, patch=None):
    """Reference values of a chain of tasks, names prefixed ``s{k}.`` as in compose."""
    patch = patch or {}
    out, cur = {"x": list(x)}, list(x)
    for k, name in enumerate(stages):
        last = k == len(stages) - 1
        local = {
            v: p
            for key, p in patch.items()
            for v in [key.removeprefix(f"s{k}.")]
            if key.startswith(f"s{k}.") or (last and key == "output")
        }
        vals = ref_run(name, cur, V, local)
        for v, val in vals.items():
            if v != "x":
                out["output" if (last and v == "output") else f"s{k}.{v}"] = val
        cur = vals["output"]
    return out


def with_bos(rows, bos=11):
    return torch.tensor([[bos, *r] for r in rows], dtype=torch.long)


def rows_strategy(task, max_rows=5):
    """Batches of content rows: arbitrary tokens, or drawn from the task's own sampler."""
    L, V = task.length, task.n_values
    arbitrary = st.lists(
        st.lists(st.integers(0, V - 1), min_size=L, max_size=L), min_size=1, max_size=max_rows
    )
    sampled = st.integers(0, 2**32).map(lambda s: task.sample_content(max_rows, s).tolist())
    return st.one_of(arbitrary, sampled)
