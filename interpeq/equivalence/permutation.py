"""The group permutation test: H0 "groups ``a`` and ``b`` share an interpretation",
decided from the distances between the two groups' members alone (docs/method.md
section 9; the maths: ``docs/calibration.md``).

:func:`group_permutation_test` relabels the pooled members (exact: every relabelling
when feasible; else seeded Monte Carlo with the ``+1`` correction). It is valid whatever
the co-implementation draws look like; its resolution is set by the group sizes (4 + 4
members: smallest p-value ``1/35``; 3 + 3: ``1/10``). :func:`group_tests` runs it for
every group pair of a comparison's rows, with a three-way decision.

Plain torch / numpy / math: no zoo, no Lightning.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from interpeq.equivalence.defaults import DEFAULT_ALPHA, check_level

# exact enumeration up to this many relabellings (C(20, 10) / 2 = 92378 fits)
MAX_EXACT = 200_000
DEFAULT_N_PERM = 9999


@dataclass(frozen=True)
class GroupTestResult:
    """One group pair's permutation test (see :func:`group_permutation_test`)."""

    group_a: str
    group_b: str
    n_a: int
    n_b: int
    statistic: float  # mean between-group distance - mean within-group distance
    p_value: float
    min_p_value: float  # the smallest p-value this test can return
    n_relabelings: int  # distinct relabellings enumerated (exact) or drawn (Monte Carlo)
    exact: bool
    alpha: float
    reject: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _statistics(d: np.ndarray, z: np.ndarray, n_a: int, n_b: int) -> np.ndarray:
    """``[K]`` statistic of each labelling ``z [K, n]`` (1 = group a) of the members."""
    za, zb = z, 1.0 - z
    between = np.einsum("ki,ij,kj->k", za, d, zb)
    within = (np.einsum("ki,ij,kj->k", za, d, za) + np.einsum("ki,ij,kj->k", zb, d, zb)) / 2
    n_within = n_a * (n_a - 1) // 2 + n_b * (n_b - 1) // 2
    return between / (n_a * n_b) - within / n_within


def group_permutation_test(
    dist: Any,
    labels: Sequence[str],
    a: str,
    b: str,
    n_perm: int | None = None,
    seed: int = 0,
    *,
    alpha: float = DEFAULT_ALPHA,
) -> GroupTestResult:
    """Permutation test of H0 "groups ``a`` and ``b`` share an interpretation".

    ``dist [N, N]``: symmetric distances between units (``1 - similarity``; the
    diagonal is ignored), ``labels``: each unit's group. Only the members of ``a`` and
    ``b`` take part. Statistic: mean distance over the ``n_a n_b`` between-group pairs
    minus the mean over the within-group pairs of both groups pooled (large when the
    groups are apart). H0 makes the pooled members exchangeable (one population of
    models: same interpretation, trained the same way; the distance of a pair depends
    on that pair alone), so every relabelling of the pooled members into groups of
    sizes ``n_a`` and ``n_b`` is equally likely and the p-value, the fraction of
    relabellings with a statistic ``>=`` the observed one, is exact.

    ``n_perm=None``: every relabelling when there are at most ``MAX_EXACT`` of them
    (with ``n_a == n_b`` a relabelling and its swap give the same statistic, so each
    partition is counted once: ``C(n, n_a) / 2``), else ``DEFAULT_N_PERM`` seeded random
    ones. An int ``n_perm``: that many random relabellings (exact enumeration if that is
    as many as there are), p-value ``(1 + #{T_perm >= T}) / (n_perm + 1)``. The smallest
    p-value: ``1 / n_relabelings`` (exact; 4 + 4: ``1/35``, 3 + 3: ``1/10``, 4 + 3: ``1/35``)
    or ``1 / (n_perm + 1)``.
    """
    check_level(alpha)
    if n_perm is not None and (
        not isinstance(n_perm, int) or isinstance(n_perm, bool) or n_perm < 1
    ):
        raise ValueError(f"n_perm must be a positive int or None, got {n_perm!r}")
    sub, n_a, n_b = _two_groups(dist, labels, a, b)
    n = n_a + n_b
    obs = float(_statistics(sub, _labelling(n, ia=range(n_a))[None], n_a, n_b)[0])
    symmetric = n_a == n_b
    total = math.comb(n, n_a) // (2 if symmetric else 1)
    exact = total <= MAX_EXACT if n_perm is None else n_perm >= total
    tol = 1e-12 * max(1.0, float(np.abs(sub).max()))
    if exact:
        stats = _every_relabelling(sub, n_a, n_b)
        n_rel = len(stats)
        p_value, min_p = int((stats >= obs - tol).sum()) / n_rel, 1 / n_rel
    else:
        n_rel = DEFAULT_N_PERM if n_perm is None else n_perm
        stats = _random_relabellings(sub, n_a, n_b, n_rel, seed)
        p_value = (1 + int((stats >= obs - tol).sum())) / (n_rel + 1)
        min_p = 1 / (n_rel + 1)
    return GroupTestResult(
        group_a=a,
        group_b=b,
        n_a=n_a,
        n_b=n_b,
        statistic=obs,
        p_value=float(p_value),
        min_p_value=float(min_p),
        n_relabelings=int(n_rel),
        exact=bool(exact),
        alpha=float(alpha),
        reject=bool(p_value <= alpha),
    )


def _two_groups(dist: Any, labels: Sequence[str], a: str, b: str) -> tuple[np.ndarray, int, int]:
    """The symmetrised ``[n_a + n_b]`` square of distances between the members of
    ``a`` then ``b`` (zero diagonal), checked; with the two group sizes."""
    if a == b:
        raise ValueError(f"groups a and b are both {a!r}: the test compares two groups")
    d = np.asarray(torch.as_tensor(dist, dtype=torch.float64).cpu(), dtype=np.float64)
    labels = [str(x) for x in labels]
    if d.ndim != 2 or d.shape[0] != d.shape[1] or d.shape[0] != len(labels):
        raise ValueError(f"dist must be [N, N] with N = len(labels) = {len(labels)}, got {d.shape}")
    ia = [k for k, g in enumerate(labels) if g == a]
    ib = [k for k, g in enumerate(labels) if g == b]
    for name, idx in ((a, ia), (b, ib)):
        if not idx:
            raise ValueError(f"group {name!r} has no members in labels")
    if len(ia) < 2 and len(ib) < 2:
        raise ValueError(
            f"groups {a!r} and {b!r} have one member each: there is no within-group pair"
        )
    idx = ia + ib
    sub = d[np.ix_(idx, idx)]
    sub = (sub + sub.T) / 2
    np.fill_diagonal(sub, 0.0)
    if not np.isfinite(sub).all():
        raise ValueError("dist holds NaN or infinite distances between the two groups' members")
    return sub, len(ia), len(ib)


def _every_relabelling(sub: np.ndarray, n_a: int, n_b: int) -> np.ndarray:
    """The statistic of every subset for group a (with equal sizes: those holding member
    0, one per partition)."""
    n = n_a + n_b
    symmetric = n_a == n_b
    combos = (c for c in itertools.combinations(range(n), n_a) if not symmetric or c[0] == 0)
    return np.concatenate(
        [
            _statistics(sub, np.stack([_labelling(n, ia=c) for c in chunk]), n_a, n_b)
            for chunk in _chunks(combos, 4096)
        ]
    )


def _random_relabellings(sub: np.ndarray, n_a: int, n_b: int, k: int, seed: int) -> np.ndarray:
    """The statistic of ``k`` seeded random relabellings."""
    n = n_a + n_b
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((k, n)), axis=1)[:, :n_a]
    z = np.zeros((k, n))
    np.put_along_axis(z, perms, 1.0, axis=1)
    return np.concatenate([_statistics(sub, z[s : s + 4096], n_a, n_b) for s in range(0, k, 4096)])


def _labelling(n: int, *, ia: Any) -> np.ndarray:
    z = np.zeros(n)
    z[list(ia)] = 1.0
    return z


def _chunks(it: Any, size: int):
    while chunk := list(itertools.islice(it, size)):
        yield chunk


# ---------------------------------------------------------------- small statistics


def distance_matrix(rows: Sequence[dict[str, Any]], ids: Sequence[str]) -> np.ndarray:
    """``[N, N]`` distances ``1 - similarity`` between the units ``ids`` from pairwise
    rows (``a``, ``b``, ``similarity``); the diagonal is 0."""
    pos = {u: k for k, u in enumerate(ids)}
    d = np.zeros((len(ids), len(ids)))
    for r in rows:
        i, j = pos[r["a"]], pos[r["b"]]
        d[i, j] = d[j, i] = 1 - r["similarity"]
    return d


def group_tests(
    rows: Sequence[dict[str, Any]],
    *,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    order: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """:func:`group_permutation_test` for every pair of groups of the pairwise ``rows``
    (every unit pair present, as a comparison of a zoo gives them), with at least 3
    units between them; each dict also carries ``decision``: ``rejected``,
    ``not rejected`` or ``undecidable`` (its smallest p-value is above ``alpha``: no
    relabelling could have rejected). ``order``: the groups' order (default sorted)."""
    group_of: dict[str, str] = {}
    for r in rows:
        group_of[r["a"]], group_of[r["b"]] = r["group_a"], r["group_b"]
    ids = list(group_of)
    labels = [group_of[i] for i in ids]
    names = [g for g in (order or sorted(set(labels))) if g in set(labels)]
    dist = distance_matrix(rows, ids)
    out = []
    for a, b in itertools.combinations(names, 2):
        if labels.count(a) + labels.count(b) < 3:
            continue
        t = group_permutation_test(dist, labels, a, b, seed=seed, alpha=alpha).to_dict()
        t["decision"] = (
            "rejected"
            if t["reject"]
            else ("undecidable" if t["min_p_value"] > alpha else "not rejected")
        )
        out.append(t)
    return out
