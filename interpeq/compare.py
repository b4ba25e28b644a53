"""``interpeq compare <zoo> [--against <zoo>]``: pairwise congruity over zoo members,
grouped by interpretation.

Writes into ``checkpoints/<zoo>/equivalence/`` (``.../equivalence/against-<other>/``
with ``--against``):

* ``matrix.csv``: congruity of every pair (rows/columns = unit ids, sorted by group;
  a ``group`` column; the diagonal is empty: a model is not compared with itself);
* ``results.json``: the settings, every pair (congruity, p, p-value, decision,
  similarity) and every group pair (mean congruity with bootstrap CI, rejection rate);
* ``matrix.png``: the heatmap with group labels, and the group-pair table.

**Units.** A unit is one member, or (``units="chains"``; ``"auto"`` picks it when every
member is a stage of a composed algorithm) a composed-algorithm chain: the stage
members of one algorithm with the same setting and seed, in stage order. A chain's
representation concatenates its stages' (stage k+1 runs on stage k's predicted
tokens, :func:`interpeq.equivalence.representations`); its co-implementations
concatenate each stage's co-implementations computed on the base chain's stage inputs
(by strictness a co-implementation's outputs equal the base stage's, so these are the
inputs it would see). A unit's group is its task (members) or algorithm (chains).

**Probes.** Every unit sees the same probe tokens. ``probes="mixture"`` (default):
equal shares of each group's own input distribution (its task's sampler, or the
algorithm's stage-0 sampler for chains), concatenated and shuffled with ``seed``; with
one group that is simply the task's sampler. ``"uniform"``: uniform content tokens
behind BOS. Or a task name: that task's sampler. All tasks share one vocabulary; units
whose models have another vocabulary or context length are a clear error.

**Pairwise work** goes through :func:`pairwise_congruity`, which takes a list of
:class:`Unit` s (id, group, representation, co-implementations) and a list of index
pairs, so a distributed version can split the pairs into blocks: self-distances are
per unit, cross-similarities come from one batched :class:`RidgeEngine` over the
units' base representations (each source factorised once); every score uses one
seeded train/test split.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from interpeq.equivalence import DEFAULT_M, RidgeEngine, co_implementations, group_summary
from interpeq.equivalence import representations as _representations
from interpeq.equivalence.congruity import _decide

DEFAULT_ROOT = Path("checkpoints")
PROBE_KINDS = ("mixture", "uniform")
UNIT_KINDS = ("auto", "members", "chains")
IMPL_SOURCES = ("intervention", "training")
_STAGE = re.compile(r"^(\w+)/stage(\d+)$")


# ----------------------------------------------------------------------------- units


@dataclass
class Unit:
    """What the pairwise test needs of one model (or chain)."""

    id: str
    group: str
    reprs: Tensor  # [n, D]
    impls: Tensor  # [m, n, D]
    meta: dict[str, Any] = field(default_factory=dict)
    self_d: Tensor | None = None  # [m] distances to its co-implementations (filled lazily)


@dataclass
class ModelUnit:
    """A unit before its representations are computed: one or more stage models."""

    id: str
    group: str
    models: list  # HookedTransformer, one per stage
    correspondences: list
    tasks: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def input_task(self) -> str:
        t = self.tasks[0]
        match = _STAGE.match(t)
        return match.group(1) if match and len(self.tasks) > 1 else t


def member_units(members: Sequence, kind: str = "auto") -> list[ModelUnit]:
    """Zoo members -> units (members, or composed-algorithm chains); see the module doc."""
    if kind not in UNIT_KINDS:
        raise ValueError(f"unknown units {kind!r}; choose one of {list(UNIT_KINDS)}")
    members = list(members)
    if not members:
        raise ValueError("no members to compare")
    staged = [_STAGE.match(m.task_name) for m in members]
    if kind == "auto":
        kind = "chains" if all(staged) else "members"
    if kind == "members":
        return [
            ModelUnit(
                m.id,
                m.task_name,
                [m.model],
                [m.correspondence],
                [m.task_name],
                {"setting": m.setting, "seed": m.seed},
            )
            for m in members
        ]
    if not all(staged):
        bad = [m.id for m, s in zip(members, staged, strict=True) if not s][:5]
        raise ValueError(
            f"units='chains' needs composed-algorithm stage members; not stages: {bad}"
        )
    from interpeq.tasks import get_algorithm

    chains: dict[tuple, dict[int, Any]] = {}
    for m, s in zip(members, staged, strict=True):
        chains.setdefault((s.group(1), m.setting, m.seed), {})[int(s.group(2))] = m
    out = []
    for (algo, setting, seed), stages in sorted(chains.items()):
        n_stages = len(get_algorithm(algo).stages)
        if sorted(stages) != list(range(n_stages)):
            raise ValueError(
                f"chain {algo} setting {setting} seed {seed} is incomplete: has stages "
                f"{sorted(stages)} of 0..{n_stages - 1}; train the missing members or use units='members'"
            )
        ms = [stages[k] for k in range(n_stages)]
        out.append(
            ModelUnit(
                f"{algo}-{setting}-s{seed}",
                algo,
                [m.model for m in ms],
                [m.correspondence for m in ms],
                [m.task_name for m in ms],
                {"setting": setting, "seed": seed, "members": [m.id for m in ms]},
            )
        )
    return out


def check_vocab(units: Sequence[ModelUnit], tokens: Tensor | None = None) -> None:
    """Every model must read the same vocabulary and context length (and ``tokens``)."""
    ref = None
    for u in units:
        for model in u.models:
            cfg = model.cfg
            key = (cfg.d_vocab, cfg.n_ctx)
            if ref is None:
                ref = (key, u.id)
            elif key != ref[0]:
                raise ValueError(
                    f"{u.id} reads vocabulary {cfg.d_vocab} / context {cfg.n_ctx} but {ref[1]} reads "
                    f"{ref[0][0]} / {ref[0][1]}: congruity needs every model on the same probe inputs"
                )
            if tokens is not None and (
                int(tokens.max()) >= cfg.d_vocab or tokens.shape[1] > cfg.n_ctx
            ):
                raise ValueError(
                    f"{u.id}: probe tokens (max {int(tokens.max())}, length {tokens.shape[1]}) do not fit "
                    f"its vocabulary {cfg.d_vocab} / context {cfg.n_ctx}"
                )


def probe_tokens(tasks: Sequence[str], n: int, seed: int = 0, kind: str = "mixture") -> Tensor:
    """``[n, seq_len]`` probe tokens shared by every model; see the module doc."""
    from interpeq.training import resolve_task
    from interpeq.training.config import generator

    if not isinstance(n, int) or isinstance(n, bool) or n < 5:
        raise ValueError(f"n_probes must be an int >= 5, got {n!r}")
    tasks = list(dict.fromkeys(tasks))
    if kind == "uniform":
        t = resolve_task(tasks[0]).task
        gen = generator(seed, "probes", "uniform")
        content = torch.randint(0, t.d_vocab - 1, (n, t.seq_len - 1), generator=gen)
        return t.add_bos(content)
    if kind != "mixture":
        tasks, kind = [kind], "mixture"  # a task name: its own sampler
    shares = [n // len(tasks) + (i < n % len(tasks)) for i in range(len(tasks))]
    parts = [
        resolve_task(t).sample(k, generator(seed, "probes", t))
        for t, k in zip(tasks, shares, strict=True)
        if k
    ]
    tokens = torch.cat(parts)
    if len(parts) > 1:
        tokens = tokens[torch.randperm(n, generator=generator(seed, "probes", "shuffle"))]
    return tokens


def stage_inputs(models: Sequence, tokens: Tensor) -> list[Tensor]:
    """Inputs each stage of a chain sees: stage k+1 reads stage k's predicted tokens."""
    inputs = [tokens]
    with torch.no_grad():
        for model in models[:-1]:
            was = model.training
            model.eval()
            logits = model(inputs[-1])
            model.train(was)
            inputs.append(torch.cat([tokens[:, :1], logits[:, 1:].argmax(-1)], dim=1))
    return inputs


def compute_unit(u: ModelUnit, tokens: Tensor, m: int = DEFAULT_M, seed: int = 0) -> Unit:
    """Representations and ``m`` co-implementations of a model (or chain) on ``tokens``."""
    models = u.models if len(u.models) > 1 else u.models[0]
    reprs = _representations(models, tokens)
    if m == 0:  # co-implementations by training only: none drawn by intervention
        return Unit(
            u.id, u.group, reprs.cpu(), reprs.new_zeros(0, *reprs.shape).cpu(), dict(u.meta)
        )
    inputs = stage_inputs(u.models, tokens)
    impls = torch.cat(
        [
            co_implementations(model, corr, x, m, seed + k)
            for k, (model, corr, x) in enumerate(
                zip(u.models, u.correspondences, inputs, strict=True)
            )
        ],
        dim=-1,
    )
    return Unit(u.id, u.group, reprs.cpu(), impls.cpu(), dict(u.meta))


# ----------------------------------------------------------------------------- pairwise core


def self_distances(unit: Unit, *, seed: int = 0, **ridge: Any) -> Tensor:
    """``[m]`` distances ``1 - similarity(unit, unit*_j)`` (cached on the unit)."""
    if unit.self_d is None:
        m = unit.impls.shape[0]
        engine = RidgeEngine([unit.reprs, *unit.impls.unbind(0)], seed=seed, **ridge)
        ordered = [p for j in range(1, m + 1) for p in ((0, j), (j, 0))]
        unit.self_d = 1 - engine.scores(ordered).reshape(-1, 2).amin(1)
    return unit.self_d


def cross_similarities(
    units: Sequence[Unit], pairs: Sequence[tuple[int, int]], *, seed: int = 0, **ridge: Any
) -> Tensor:
    """``[len(pairs)]`` ridge similarity of each pair of units' base representations."""
    used = sorted({i for p in pairs for i in p})
    pos = {u: k for k, u in enumerate(used)}
    engine = RidgeEngine(
        [units[i].reprs for i in used], seed=seed, names=[units[i].id for i in used], **ridge
    )
    ordered = [q for i, j in pairs for q in ((pos[i], pos[j]), (pos[j], pos[i]))]
    return engine.scores(ordered).reshape(-1, 2).amin(1)


def pairwise_congruity(
    units: Sequence[Unit],
    pairs: Sequence[tuple[int, int]] | None = None,
    *,
    alpha: float = 0.05,
    seed: int = 0,
    one_sided: bool = False,
    impls: str = "intervention",
    progress: bool = False,
    cross: Callable[..., Tensor] | None = None,
    **ridge: Any,
) -> list[dict[str, Any]]:
    """Congruity of each pair ``(i, j)`` of ``units`` (default: all ``i < j``).

    ``cross`` replaces :func:`cross_similarities` (same signature), e.g. by the
    block-distributed version of :mod:`interpeq.compare_distributed`.

    ``impls`` says where the co-implementations of each side come from (SPEC section 4):

    * ``"intervention"`` (default): the unit's own resample-patched copies
      (``Unit.impls``, ``m`` per unit);
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
    if impls == "intervention":
        for i in tqdm(used, desc="co-implementation distances", disable=not progress, leave=False):
            self_distances(units[i], seed=seed, **ridge)
    peers = _group_peers(units, used) if impls != "intervention" else {}
    if impls == "training":
        small = sorted({units[i].group for i in used if len(peers[i]) < 2})
        if small:
            raise ValueError(
                f"impls='training' needs at least 3 units per group (the pair plus one "
                f"co-implementation); too few in {small}: train more seeds or use "
                f"impls='intervention'"
            )
    peer_pairs = sorted({(min(i, k), max(i, k)) for i in used for k in peers.get(i, ())})
    every = list(dict.fromkeys([*pairs, *peer_pairs]))
    sims = (cross or cross_similarities)(units, every, seed=seed, **ridge)
    sim = {}
    for (i, j), s in zip(every, sims.tolist(), strict=True):
        sim[i, j] = sim[j, i] = s
    out = []
    for i, j in pairs:
        a, b, s = units[i], units[j], sim[i, j]
        d_ab = torch.tensor(1 - s, dtype=torch.float64)
        d_a, d_b = (
            _null_distances(u, k, other, peers, sim, impls)
            for u, k, other in ((a, i, j), (b, j, i))
        )
        res = _decide(d_ab, d_a, d_b, alpha=alpha, one_sided=one_sided)
        row = {"a": a.id, "b": b.id, "group_a": a.group, "group_b": b.group, "similarity": s}
        row.update(res.to_dict())
        out.append(row)
    return out


def checked_pairs(
    units: Sequence[Unit],
    pairs: Sequence[tuple[int, int]] | None,
    *,
    alpha: float,
    impls: str,
) -> tuple[list[Unit], list[tuple[int, int]], list[int]]:
    """Validate the arguments of a pairwise run: ``(units, pairs, used unit indices)``,
    ``pairs`` defaulting to every ``i < j``."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if impls not in IMPL_SOURCES:
        raise ValueError(f"unknown impls {impls!r}; choose one of {list(IMPL_SOURCES)}")
    units = list(units)
    if pairs is None:
        pairs = [(i, j) for i in range(len(units)) for j in range(i + 1, len(units))]
    pairs = [(int(i), int(j)) for i, j in pairs]
    used = sorted({i for p in pairs for i in p})
    if impls == "intervention":
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


def _null_distances(unit: Unit, i: int, other: int, peers: dict, sim: dict, impls: str) -> Tensor:
    """Distances from ``unit`` to its co-implementations for the pair with ``other``."""
    if impls == "intervention":
        return unit.self_d
    return torch.tensor([1 - sim[i, k] for k in peers[i] if k != other], dtype=torch.float64)


def group_pairs(
    rows: Sequence[dict[str, Any]], *, ordered: bool = False, n_boot: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """Per group pair: mean congruity with bootstrap CI, rejection rate, mean similarity."""
    buckets: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        key = (r["group_a"], r["group_b"])
        if not ordered:
            key = tuple(sorted(key))
        buckets.setdefault(key, []).append(r)
    out = []
    for (ga, gb), rs in sorted(buckets.items()):
        s = group_summary(rs, n_boot=n_boot, seed=seed).to_dict()
        s.update(
            group_a=ga,
            group_b=gb,
            within=ga == gb,
            n_equivalent=sum(not r["reject"] for r in rs),
            mean_similarity=sum(r["similarity"] for r in rs) / len(rs),
        )
        out.append(s)
    return out


# ----------------------------------------------------------------------------- zoo comparison


@dataclass
class CompareResult:
    out_dir: Path
    files: dict[str, Path]
    pairs: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    summary: dict[str, Any]
    row_ids: list[str]
    col_ids: list[str]
    matrix: Any  # numpy [rows, cols]

    def summary_text(self) -> str:
        s = self.summary
        lines = [
            f"{s['n_units']} units in {s['n_groups']} groups, {s['n_pairs']} pairs "
            + (
                f"(co-implementations by training, alpha={s['alpha']}, {s['n_probes']} probes)"
                if s.get("impls") == "training"
                else f"(m={s['m']}, alpha={s['alpha']}, {s['n_probes']} probes)"
            ),
        ]
        if s.get("min_p_value", 0) > s["alpha"]:
            lines.append(
                f"  note: the smallest attainable p-value is {s['min_p_value']:.3f} > alpha: "
                "no pair can be rejected (too few co-implementations; more members or m)"
            )
        if s.get("within_mean") is not None:
            lines.append(f"  within-group mean congruity  {s['within_mean']:.3f}")
        if s.get("across_mean") is not None:
            lines.append(f"  across-group mean congruity  {s['across_mean']:.3f}")
        lines.append("  group pair                       mean [95% CI]         equivalent / pairs")
        for g in self.groups:
            name = f"{g['group_a']} ~ {g['group_b']}"
            lines.append(
                f"  {name:32s} {g['mean_congruity']:.3f} [{g['ci_low']:.3f}, {g['ci_high']:.3f}]"
                f"   {g['n_equivalent']:3d} / {g['n_pairs']}"
            )
        lines.append(f"  files: {', '.join(str(p) for p in self.files.values())}")
        return "\n".join(lines)


def load_zoo(zoo: Any, root: str | Path = DEFAULT_ROOT):
    """A :class:`interpeq.zoo.Zoo`, a zoo folder, or a zoo name under ``root``."""
    from interpeq.zoo import Zoo

    if isinstance(zoo, Zoo):
        return zoo
    path = Path(zoo)
    if not path.is_dir() and (Path(root) / str(zoo)).is_dir():
        path = Path(root) / str(zoo)
    if not path.is_dir():
        raise ValueError(
            f"zoo {str(zoo)!r} not found (neither a folder nor a zoo under {str(root)!r}); "
            "train it with 'interpeq zoo --config ...'"
        )
    return Zoo.load(path)


def _sort_units(units: list[ModelUnit]) -> list[ModelUnit]:
    return sorted(units, key=lambda u: (u.group, u.id))


def compare_zoo(
    zoo: Any,
    against: Any = None,
    *,
    n_probes: int = 256,
    m: int = DEFAULT_M,
    alpha: float = 0.05,
    seed: int = 0,
    probes: str = "mixture",
    units: str = "auto",
    one_sided: bool = False,
    impls: str = "intervention",
    out_dir: str | Path | None = None,
    root: str | Path = DEFAULT_ROOT,
    logger: Any = None,
    progress: bool = True,
    workers: int = 1,
    launcher: str = "local",
    address: str | None = None,
) -> CompareResult:
    """Pairwise congruity within ``zoo`` (or between ``zoo`` and ``against``); writes the
    three files (see the module doc) and logs them to ``logger`` if given.

    ``launcher="ray"`` computes the units' representations and the pairwise work in
    blocks over ``workers`` Ray workers (a local Ray, or the cluster at ``address``);
    the files are the same (:mod:`interpeq.compare_distributed`)."""
    import numpy as np

    from interpeq.compare_distributed import check_workers

    check_workers(workers, launcher)
    if launcher == "local" and (workers > 1 or address):
        raise ValueError("--workers > 1 and --address need --launcher ray")

    from interpeq.report import congruity_heatmap

    if not isinstance(m, int) or isinstance(m, bool) or m < 1:
        raise ValueError(f"m must be a positive int, got {m!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if impls not in IMPL_SOURCES:
        raise ValueError(f"unknown impls {impls!r}; choose one of {list(IMPL_SOURCES)}")
    za = load_zoo(zoo, root)
    zb = load_zoo(against, root) if against is not None else None
    rows_u = _sort_units(member_units(list(za), units))
    cols_u = _sort_units(member_units(list(zb), units)) if zb is not None else rows_u
    if zb is not None:
        for u in cols_u:
            u.id = f"{zb.name}/{u.id}"
    every = rows_u + (cols_u if zb is not None else [])
    tasks = [u.input_task for u in every]
    tokens = probe_tokens(tasks, n_probes, seed, probes)
    check_vocab(every, tokens)
    if launcher == "ray":
        from interpeq.compare_distributed import compute_units_blocks

        computed = compute_units_blocks(
            every,
            tokens,
            0 if impls == "training" else m,
            seed,
            workers=workers,
            address=address,
            progress=progress,
            self_distances_too=impls == "intervention",
        )
    else:
        computed = [
            compute_unit(u, tokens, 0 if impls == "training" else m, seed)
            for u in tqdm(every, desc="representations", disable=not progress, unit="model")
        ]
    nr = len(rows_u)
    if zb is None:
        pairs = [(i, j) for i in range(nr) for j in range(i + 1, nr)]
        col_index = list(range(nr))
    else:
        pairs = [(i, nr + j) for i in range(nr) for j in range(len(cols_u))]
        col_index = list(range(nr, len(every)))
    if not pairs:
        raise ValueError(f"zoo {za.name!r} has a single unit: nothing to compare")
    distributed: dict[str, Any] = {}
    if launcher == "ray":
        from interpeq.compare_distributed import pairwise_congruity_blocks as pairwise

        distributed = {"workers": workers, "launcher": launcher, "address": address}
    else:
        pairwise = pairwise_congruity
    results = pairwise(
        computed,
        pairs,
        alpha=alpha,
        seed=seed,
        one_sided=one_sided,
        impls=impls,
        progress=progress,
        **distributed,
    )
    groups = group_pairs(results, ordered=zb is not None, seed=seed)

    row_ids = [computed[i].id for i in range(nr)]
    col_ids = [computed[i].id for i in col_index]
    matrix = np.full((nr, len(col_ids)), np.nan)
    cpos = {k: c for c, k in enumerate(col_index)}
    for (i, j), r in zip(pairs, results, strict=True):
        matrix[i, cpos[j]] = r["congruity"]
        if zb is None:
            matrix[j, cpos[i]] = r["congruity"]
    within = [r["congruity"] for r in results if r["group_a"] == r["group_b"]]
    across = [r["congruity"] for r in results if r["group_a"] != r["group_b"]]
    summary = {
        "zoo": za.name,
        "against": zb.name if zb is not None else None,
        "n_units": len(every),
        "n_groups": len({u.group for u in every}),
        "n_pairs": len(results),
        "n_probes": n_probes,
        "m": m,
        "alpha": alpha,
        "seed": seed,
        "probes": probes,
        "units": "chains" if any(len(u.models) > 1 for u in every) else "members",
        "one_sided": one_sided,
        "impls": impls,
        "within_mean": sum(within) / len(within) if within else None,
        "across_mean": sum(across) / len(across) if across else None,
        "n_rejected": sum(r["reject"] for r in results),
        # both directions at their most extreme, Bonferroni-combined (see congruity)
        "min_p_value": min(
            min(1.0, 2 / (1 + max(len(r["d_a_impls"]), len(r["d_b_impls"])))) for r in results
        ),
    }

    out = Path(out_dir) if out_dir else za.path / "equivalence"
    if out_dir is None and zb is not None:
        out = out / f"against-{zb.name}"
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "matrix.csv": out / "matrix.csv",
        "results.json": out / "results.json",
        "matrix.png": out / "matrix.png",
    }
    with open(files["matrix.csv"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "group", *col_ids])
        for i, rid in enumerate(row_ids):
            w.writerow(
                [rid, computed[i].group]
                + ["" if not math.isfinite(v) else f"{v:.6g}" for v in matrix[i]]
            )
    units_json = [{"id": u.id, "group": u.group, **u.meta} for u in computed]
    pairs_json = [
        {k: v for k, v in r.items() if k not in ("d_a_impls", "d_b_impls")} for r in results
    ]
    payload = {"summary": summary, "units": units_json, "pairs": pairs_json, "group_pairs": groups}
    files["results.json"].write_text(json.dumps(payload, indent=1))
    stats = {(g["group_a"], g["group_b"]): g for g in groups}
    congruity_heatmap(
        matrix,
        [computed[i].group for i in range(nr)],
        [computed[i].group for i in col_index],
        files["matrix.png"],
        group_stats=stats,
        title=f"congruity in zoo {za.name}" + (f" vs {zb.name}" if zb is not None else ""),
        row_label=za.name,
        col_label=zb.name if zb is not None else za.name,
    )
    result = CompareResult(out, files, results, groups, summary, row_ids, col_ids, matrix)
    if logger:
        log_compare(logger, result)
    return result


def log_compare(logger: Any, result: CompareResult) -> None:
    """The heatmap as an image, pairs / group pairs / matrix as ``wandb.Table`` s, and the summary."""
    from interpeq.report import log_image, log_summary, log_table

    log_image(logger, "equivalence/matrix", result.files["matrix.png"])
    keys = ["a", "b", "group_a", "group_b", "congruity", "p", "p_value", "reject", "similarity"]
    log_table(logger, "equivalence/pairs", keys, [[r[k] for k in keys] for r in result.pairs])
    gkeys = [
        "group_a",
        "group_b",
        "mean_congruity",
        "ci_low",
        "ci_high",
        "rejection_rate",
        "n_pairs",
        "n_equivalent",
    ]
    log_table(
        logger, "equivalence/group_pairs", gkeys, [[g[k] for k in gkeys] for g in result.groups]
    )
    log_table(
        logger,
        "equivalence/matrix_table",
        ["id", *result.col_ids],
        [
            [rid, *[None if not math.isfinite(v) else float(v) for v in row]]
            for rid, row in zip(result.row_ids, result.matrix, strict=True)
        ],
    )
    flat = {
        f"equivalence/{k}": v
        for k, v in result.summary.items()
        if isinstance(v, (int, float)) and v is not None
    }
    for g in result.groups:
        name = f"{g['group_a']}~{g['group_b']}"
        for k in ("mean_congruity", "ci_low", "ci_high", "rejection_rate"):
            flat[f"equivalence/{name}/{k}"] = g[k]
    log_summary(logger, flat)


# ----------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    from interpeq.report import LOGGER_KINDS, make_logger

    parser = argparse.ArgumentParser(
        prog="interpeq compare",
        description="Pairwise congruity over a zoo's members (or composed-algorithm chains), grouped by "
        "interpretation; writes matrix.csv, results.json and matrix.png into <root>/<zoo>/equivalence/.",
    )
    parser.add_argument("zoo", help="zoo folder or name under --root (e.g. smoke)")
    parser.add_argument("--against", help="compare every unit of <zoo> with every unit of this zoo")
    parser.add_argument(
        "--root", default=str(DEFAULT_ROOT), help="zoo root folder (default: checkpoints)"
    )
    parser.add_argument("--n-probes", type=int, default=256, help="probe inputs (default 256)")
    parser.add_argument(
        "--m",
        type=int,
        default=DEFAULT_M,
        help=f"co-implementations per model (default {DEFAULT_M})",
    )
    parser.add_argument("--alpha", type=float, default=0.05, help="test level (default 0.05)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--probes", default="mixture", help="mixture (default), uniform, or a task name"
    )
    parser.add_argument(
        "--units", default="auto", choices=UNIT_KINDS, help="members or composed-algorithm chains"
    )
    parser.add_argument(
        "--one-sided", action="store_true", help="one-sided congruity min(1, 2(1-p))"
    )
    parser.add_argument(
        "--impls",
        default="intervention",
        choices=IMPL_SOURCES,
        help="co-implementations: resample-patched copies (intervention, default) or the "
        "other units of the same group (training; needs >= 3 units per group)",
    )
    parser.add_argument("--out", help="output folder (default <root>/<zoo>/equivalence)")
    parser.add_argument(
        "--logger",
        default="wandb",
        choices=LOGGER_KINDS,
        help="wandb (offline without an account), csv or none",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument(
        "--launcher",
        choices=["local", "ray"],
        default="local",
        help="ray: split the pairs into blocks over Ray workers (same files; "
        "pip install 'interpeq[ray]'; docs/scaling.md)",
    )
    parser.add_argument("--workers", type=int, default=1, help="ray: workers (default 1)")
    parser.add_argument(
        "--address", help="ray: a Ray cluster ('auto', HOST:6379 or ray://HOST:10001)"
    )
    args = parser.parse_args(argv)
    try:
        za = load_zoo(args.zoo, args.root)
        logger = make_logger(
            args.logger,
            run_name=f"{za.name}-compare"
            + (f"-vs-{Path(args.against).name}" if args.against else ""),
            group=za.name,
            job_type="compare",
            config={k: v for k, v in vars(args).items() if k not in ("no_progress",)},
            tags=[f"zoo:{za.name}", "compare"],
            save_dir=za.path,
        )
        result = compare_zoo(
            za,
            args.against,
            n_probes=args.n_probes,
            m=args.m,
            alpha=args.alpha,
            seed=args.seed,
            probes=args.probes,
            units=args.units,
            one_sided=args.one_sided,
            impls=args.impls,
            out_dir=args.out,
            root=args.root,
            logger=logger,
            progress=not args.no_progress,
            workers=args.workers,
            launcher=args.launcher,
            address=args.address,
        )
    except ValueError as err:
        print(f"interpeq compare: error: {err}", file=sys.stderr)
        return 2
    print(result.summary_text())
    _finish_logger(logger)
    return 0


def _finish_logger(logger: Any) -> None:
    from interpeq.report.wandb import SafeWandbLogger

    if isinstance(logger, SafeWandbLogger):
        run_dir = logger.run_dir
        logger.finish()
        if run_dir is not None and "offline-run" in run_dir.name:
            print(f"W&B offline run: {run_dir}\n  upload it with: wandb sync {run_dir}")
    elif logger:
        logger.finish()
