"""The pairwise core: congruity of many pairs of units, with the work shared.

:func:`pairwise_congruity` takes a list of :class:`~interpeq.equivalence.units.Unit` s
(id, group, representation, co-implementations) and a list of index pairs, so a
distributed version can split the pairs into blocks: self-distances are per unit,
cross-similarities come from one batched ridge engine over the units' base
representations (each source factorised once); every score uses one seeded
train/test split. The zoo comparison, the equivalence tracker and the
language-model study all decide through it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from interpeq.console import bars_disabled
from interpeq.equivalence.congruity import _decide, group_summary
from interpeq.equivalence.defaults import DEFAULT_ALPHA, DEFAULT_N_BOOT, check_level
from interpeq.equivalence.nulls import MIN_MEMBERS, calibrated_draws, members_needed
from interpeq.equivalence.similarity import pair_scores
from interpeq.equivalence.units import Unit

IMPL_SOURCES = ("intervention", "training", "auto")
NARROW_RATIO = 0.9  # raw draws nearer than this: the uncalibrated test rejects >= 2 alpha
OWN_DRAWS = ("intervention", "auto")  # the sources that need each unit's own draws


class TooFewUnitsError(ValueError):
    """``impls="training"`` on a group with fewer than 3 units: its null is empty. A
    caller that compares with several nulls (``reproduce``) reports this one as not
    computed and goes on with the others."""


def self_distances(unit: Unit, *, seed: int = 0, **ridge: Any) -> Tensor:
    """``[m]`` distances ``1 - similarity(unit, unit*_j)`` (cached on the unit)."""
    if unit.self_d is None:
        m = unit.impls.shape[0]
        mats = [unit.reprs, *unit.impls.unbind(0)]
        unit.self_d = 1 - pair_scores(
            mats, [(0, j) for j in range(1, m + 1)], seed=seed, **ridge
        ).amin(1)
    return unit.self_d


def cross_similarities(
    units: Sequence[Unit], pairs: Sequence[tuple[int, int]], *, seed: int = 0, **ridge: Any
) -> Tensor:
    """``[len(pairs)]`` ridge similarity of each pair of units' base representations."""
    used = sorted({i for p in pairs for i in p})
    pos = {u: k for k, u in enumerate(used)}
    local = [(pos[i], pos[j]) for i, j in pairs]
    reprs, names = [units[i].reprs for i in used], [units[i].id for i in used]
    return pair_scores(reprs, local, names=names, seed=seed, **ridge).amin(1)


def pairwise_congruity(
    units: Sequence[Unit],
    pairs: Sequence[tuple[int, int]] | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    one_sided: bool = False,
    impls: str = "auto",
    progress: bool = False,
    cross: Callable[..., Tensor] | None = None,
    **ridge: Any,
) -> list[dict[str, Any]]:
    """Congruity of each pair ``(i, j)`` of ``units`` (default: all ``i < j``).

    ``cross`` replaces :func:`cross_similarities` (same signature), e.g. by the
    block-distributed version of :mod:`interpeq.compare.distributed`.

    ``impls`` says where the co-implementations of each side come from (docs/method.md section 6):

    * ``"intervention"``: the unit's own
      resample-patched copies (``Unit.impls``, ``m`` per unit), as they are: valid only
      where they move a model at least as far as retraining does;
    * ``"auto"`` (the default, everywhere a decision is made): the calibrated null of
      :mod:`interpeq.equivalence.nulls`, each unit's draws rescaled to the spread
      between its group's members (the pair left out). Valid whatever the draws'
      width relative to retraining, under the assumptions stated there; a group with
      fewer than ``MIN_MEMBERS`` units has no calibrated null, so its directions cannot
      reject (``null_a`` / ``null_b``: ``"none"``) and a pair with neither side
      calibrated is ``"undecidable"``;
    * ``"training"``: the other units of the same group (same interpretation), leaving
      out the two units of the pair. When the group's members are trained the same way
      (one zoo setting, other seeds) ``d(a, b)`` is exchangeable with these distances
      under H0, so this is the exact rank test; it needs groups of at least 3 units
      and its p-value resolution is ``1 / (group size - 1)`` per direction. Use it where
      intervention draws barely move a model (non-circuit components it learned to
      silence), which makes the intervention null too narrow. (Pooling the two kinds
      does not work: the narrow draws dominate the rank.)

    Returns one dict per pair: ``a``, ``b``, ``group_a``, ``group_b``, ``similarity`` and
    the :class:`interpeq.equivalence.CongruityResult` fields (``congruity``, ``p``,
    ``p_value``, ``reject``, ...). With ``impls="intervention"``, the same numbers as
    :func:`interpeq.equivalence.congruity` on each pair, with the work shared across pairs.
    """
    units, pairs, used = checked_pairs(units, pairs, alpha=alpha, impls=impls)
    if not pairs:
        return []
    peers = _prepare_nulls(units, used, impls, seed, progress, ridge)
    every = list(dict.fromkeys([*pairs, *_peer_pairs(used, peers, impls)]))
    sims = (cross or cross_similarities)(units, every, seed=seed, **ridge)
    sim = {}
    for (i, j), s in zip(every, sims.tolist(), strict=True):
        sim[i, j] = sim[j, i] = s
    null_of = _null_sources(units, used, peers, impls)
    out = []
    for i, j in pairs:
        a, b, s = units[i], units[j], sim[i, j]
        d_ab = torch.tensor(1 - s, dtype=torch.float64)
        d_a, d_b = (
            _null_distances(units, k, other, peers, sim, null_of[k])
            for k, other in ((i, j), (j, i))
        )
        row = {"a": a.id, "b": b.id, "group_a": a.group, "group_b": b.group, "similarity": s}
        row.update(null_a=null_of[i], null_b=null_of[j])
        if identical(a, b):
            row.update(_identical_row(alpha, d_a, one_sided))
        else:
            row.update(_decide(d_ab, d_a, d_b, alpha=alpha, one_sided=one_sided).to_dict())
            row["identical"] = False
        if row["decision"] == "undecidable":
            row["members_needed"] = members_needed(impls, alpha, len(units[i].impls))
        out.append(row)
    return out


def _prepare_nulls(units, used, impls: str, seed: int, progress: bool, ridge) -> dict:
    """Each used unit's co-implementation distances where its null needs them, and its
    group peers (``{}`` for the intervention null); refuses a training null whose group
    is too small."""
    if impls in OWN_DRAWS:
        for i in tqdm(
            used, desc="co-implementation distances", disable=bars_disabled(progress), leave=False
        ):
            self_distances(units[i], seed=seed, **ridge)
    peers = _group_peers(units, used) if impls != "intervention" else {}
    if impls == "auto":  # the calibration needs every member of a unit's group
        groups = {units[i].group for i in used}
        for u in units:
            if u.group in groups and u.self_d is None:
                self_distances(u, seed=seed, **ridge)
    if impls == "training":
        small = sorted({units[i].group for i in used if len(peers[i]) < 2})
        if small:
            raise TooFewUnitsError(
                f"impls='training' needs at least 3 units per group (the pair plus one "
                f"co-implementation); too few in {small}: train more seeds or use "
                f"impls='intervention'"
            )
    return peers


def _peer_pairs(used, peers: dict, impls: str) -> list[tuple[int, int]]:
    """The member pairs a null needs besides the tested ones: each used unit with its
    peers (training), or every pair within a used unit's group (auto)."""
    if impls == "auto":
        return sorted(
            {
                (min(k, q), max(k, q))
                for i in used
                for k in [i, *peers[i]]
                for q in peers[i]
                if k != q
            }
        )
    return sorted({(min(i, k), max(i, k)) for i in used for k in peers.get(i, ())})


def identical(a: Unit, b: Unit) -> bool:
    """The same model twice (same representation on the probes, e.g. ``--against`` the
    same zoo): nothing to test, and congruity would score it 0 (its distance, 0, ties
    every draw)."""
    return a.reprs.shape == b.reprs.shape and bool(torch.equal(a.reprs, b.reprs))


def _identical_row(alpha: float, d_a: Tensor, one_sided: bool) -> dict[str, Any]:
    nan = float("nan")
    return {
        "congruity": nan, "p": nan, "p_value": 1.0, "reject": False, "alpha": alpha,
        "m": len(d_a), "d_ab": 0.0, "d_a_impls": (), "d_b_impls": (), "one_sided": one_sided,
        "identical": True, "min_p_value": 1.0, "decision": "identical",
    }  # fmt: skip


def check_test_options(alpha: float, impls: str, m: int | None = None) -> None:
    """Clear errors for the options of a pairwise test (``m``: draws per unit, if given)."""
    if m is not None and (not isinstance(m, int) or isinstance(m, bool) or m < 1):
        raise ValueError(f"m must be a positive int, got {m!r}")
    check_level(alpha)
    if impls not in IMPL_SOURCES:
        raise ValueError(f"unknown impls {impls!r}; choose one of {list(IMPL_SOURCES)}")


def checked_pairs(
    units: Sequence[Unit],
    pairs: Sequence[tuple[int, int]] | None,
    *,
    alpha: float,
    impls: str,
) -> tuple[list[Unit], list[tuple[int, int]], list[int]]:
    """Validate the arguments of a pairwise run: ``(units, pairs, used unit indices)``,
    ``pairs`` defaulting to every ``i < j``."""
    check_test_options(alpha, impls)
    units = list(units)
    if pairs is None:
        pairs = [(i, j) for i in range(len(units)) for j in range(i + 1, len(units))]
    pairs = [(int(i), int(j)) for i, j in pairs]
    used = sorted({i for p in pairs for i in p})
    if impls in OWN_DRAWS:
        ms = {units[i].impls.shape[0] for i in used}
        if len(ms) > 1:
            raise ValueError(
                f"every unit needs the same number of co-implementations, got {sorted(ms)}"
            )
    return units, pairs, used


def _group_peers(units: Sequence[Unit], used: Sequence[int]) -> dict[int, list[int]]:
    """For each used unit, the indices of the other units of its group."""
    by_group: dict[str, list[int]] = {}
    for k, u in enumerate(units):
        by_group.setdefault(u.group, []).append(k)
    return {i: [k for k in by_group[units[i].group] if k != i] for i in used}


def _null_sources(units, used, peers: dict, impls: str) -> dict[int, str]:
    """Which null each unit's direction uses: ``impls`` itself, or with ``"auto"`` the
    calibrated null where the unit's group has ``MIN_MEMBERS`` members, else none."""
    if impls != "auto":
        return {i: impls for i in used}
    return {i: "calibrated" if len(peers[i]) + 1 >= MIN_MEMBERS else "none" for i in used}


def _null_distances(
    units: Sequence[Unit], i: int, other: int, peers: dict, sim: dict, impls: str
) -> Tensor:
    """Distances from unit ``i`` to its null for the pair with ``other`` (empty: none)."""
    unit = units[i]
    if impls == "intervention":
        return unit.self_d
    if impls == "none":
        return torch.empty(0, dtype=torch.float64)
    if impls == "training":
        return torch.tensor([1 - sim[i, k] for k in peers[i] if k != other], dtype=torch.float64)
    group = [i, *peers[i]]
    between = [1 - sim[p, q] for p in group for q in group if p < q and {p, q} != {i, other}]
    pooled = torch.cat([units[k].self_d.double().cpu() for k in group])
    between_t = torch.tensor(between, dtype=torch.float64)
    return calibrated_draws(unit.self_d.double().cpu(), pooled, between_t)


def group_pairs(
    rows: Sequence[dict[str, Any]],
    *,
    ordered: bool = False,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Per group pair: rejection rate, mean p-value, mean congruity with bootstrap CI,
    mean similarity; pairs of identical models are counted (``n_identical``), not scored."""
    buckets: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        key = (r["group_a"], r["group_b"])
        if not ordered:
            key = tuple(sorted(key))
        buckets.setdefault(key, []).append(r)
    out = []
    for (ga, gb), every in sorted(buckets.items()):
        rs = [r for r in every if not r.get("identical")]  # the same model twice: not scored
        if not rs:
            continue
        s = group_summary(rs, n_boot=n_boot, seed=seed).to_dict()
        s.update(
            group_a=ga,
            group_b=gb,
            within=ga == gb,
            n_identical=len(every) - len(rs),
            mean_p_value=sum(r["p_value"] for r in rs) / len(rs),
            **(
                {"mean_reference_fraction": sum(r["reference_fraction"] for r in rs) / len(rs)}
                if all("reference_fraction" in r for r in rs)
                else {}
            ),
            mean_similarity=sum(r["similarity"] for r in rs) / len(rs),
        )
        out.append(s)
    return out
