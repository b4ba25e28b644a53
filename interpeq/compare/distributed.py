"""Pairwise congruity split into blocks across Ray workers, with the same numbers as
the single-process :func:`interpeq.equivalence.pairwise_congruity`.

The pairwise work is

* **self-distances** (``impls="auto"`` or ``"intervention"``): per unit, one
  :class:`~interpeq.equivalence.RidgeEngine` over its representation and its ``m``
  co-implementations (:func:`~interpeq.equivalence.self_distances`). Independent per
  unit: a block is a share of the units, and the numbers are those of one process.
* **cross-similarities**: one engine over every used unit's base representation,
  scoring each pair in both directions (:func:`~interpeq.equivalence.cross_similarities`).
  The engine factorises each representation once, scores a source's consecutive
  targets in batches of ``target_chunk`` (64) padded to the batch's widest target, and
  computes the product ``U_i^T U_j`` of a pair once for both directions. So a block is
  a **contiguous range of rows** of the pair list (a row: the pairs ``(i, j > i)`` of
  one first unit ``i``), cut only at rows ``i`` that are multiples of
  ``target_chunk``: the block rebuilds the engine over the same representations (same
  held-out split, centring, factorisations) and scores its pairs with the sources in
  the single-process order, so every source sees the same batches of targets and
  every pair the same shared product, from factorisations reused within the block. Pair
  lists other than :func:`~interpeq.compare.run.compare_zoo`'s two layouts (all ``i < j``;
  a full rectangle) stay one block. A zoo of at most ``target_chunk`` units is
  therefore one cross block (its cost is then small beside the self-distances).

The driver puts the similarities back in place; decisions, rows, group summaries and
the files of :func:`~interpeq.compare.run.compare_zoo` are the single-process code.

**Same numbers**, bit for bit (tested), with the same intra-op thread count per
process (1: each task gets one CPU, as the CLI's default) and the same device. Two
cases agree only to the mixed-precision rounding (~1e-8 on a similarity; congruity and
decisions change only on an exact tie): a single-process run so large that the
engine's cache of shared products (``RidgeEngine.cache_bytes``) overflows, and GPU
workers (``gpus_per_worker > 0`` where CUDA is present) against a CPU run. This rests
on how the engine batches its work; ``tests/compare/test_distributed.py`` checks it
with small batches so that a change there shows.

Blocks balance the number of pairs (cross) or units (self-distances) per worker. The
base representations travel once to the Ray object store; co-implementations only to
the block that needs them.

Before the pairs, :func:`compute_units_blocks` computes the units themselves
(:func:`~interpeq.equivalence.compute_unit`: representations and co-implementations, the
larger part of a comparison of a few dozen models), one Ray task per model or chain,
optionally with its self-distances in the same task. ``interpeq compare --launcher ray``
runs both (:func:`interpeq.compare.run.compare_zoo`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from interpeq._ray import LAUNCHERS, bounded_map, check_resources, connect_ray, in_task_setup
from interpeq.console import bars_disabled
from interpeq.equivalence.defaults import DEFAULT_ALPHA, DEFAULT_M
from interpeq.equivalence.pairwise import (
    OWN_DRAWS,
    checked_pairs,
    pairwise_congruity,
    self_distances,
)
from interpeq.equivalence.ridge import RidgeEngine
from interpeq.equivalence.units import ModelUnit, Unit, compute_unit

DEFAULT_CHUNK = inspect.signature(RidgeEngine).parameters["target_chunk"].default


# ----------------------------------------------------------------------------- planning


def _balance(jobs: Sequence[tuple[int, Any]], n_blocks: int) -> list[list[Any]]:
    """Greedy largest-first assignment of ``(cost, key)`` jobs to ``n_blocks`` blocks
    (empty blocks dropped; keys keep their input order within a block)."""
    order = {key: k for k, (_, key) in enumerate(jobs)}
    blocks: list[list[Any]] = [[] for _ in range(max(1, n_blocks))]
    load = [0] * len(blocks)
    for cost, key in sorted(jobs, key=lambda j: -j[0]):
        b = load.index(min(load))
        blocks[b].append(key)
        load[b] += cost
    return [sorted(b, key=order.__getitem__) for b in blocks if b]


def plan_cross(
    pairs: Sequence[tuple[int, int]], n_blocks: int, chunk: int = DEFAULT_CHUNK
) -> list[tuple[int, int]]:
    """Split the pair list of one cross engine (engine indices) into at most
    ``n_blocks`` contiguous ``[start, stop)`` slices that score exactly as one process.

    Cuts fall only before a row whose first unit is a multiple of ``chunk`` (the
    engine's ``target_chunk``), balanced by pair count, and only for the layouts of
    :func:`~interpeq.compare.run.compare_zoo` (all pairs ``i < j`` of a set, or a full
    rectangle ``rows x columns``; in lexicographic order): there every source's
    "earlier" targets are ``0, 1, ...``, which the engine batches in chunks from 0, so a
    block of aligned rows sees the same batches. Any other pair list is one block.
    """
    whole = [(0, len(pairs))] if pairs else []
    if n_blocks <= 1 or not pairs:
        return whole
    if any(i >= j for i, j in pairs) or any(a >= b for a, b in zip(pairs, pairs[1:], strict=False)):
        return whole
    earlier: dict[int, list[int]] = {}
    for i, j in pairs:
        earlier.setdefault(j, []).append(i)
    if any(e != list(range(len(e))) for e in earlier.values()):
        return whole
    cuts = [k for k in range(1, len(pairs)) if pairs[k][0] != pairs[k - 1][0]]
    cuts = [k for k in cuts if pairs[k][0] // chunk != pairs[k - 1][0] // chunk]
    chosen = [0]
    for b in range(1, n_blocks):
        goal = len(pairs) * b / n_blocks  # the aligned row nearest to an equal share
        later = [k for k in cuts if k > chosen[-1]]
        if later:
            chosen.append(min(later, key=lambda k: abs(k - goal)))
    chosen.append(len(pairs))
    return [(lo, hi) for lo, hi in zip(chosen, chosen[1:], strict=False) if hi > lo]


# ----------------------------------------------------------------------------- block bodies


def cross_block(
    reprs: Sequence[Tensor],
    names: Sequence[str],
    directed: Sequence[tuple[int, int]],
    seed: int = 0,
    ridge: dict[str, Any] | None = None,
) -> Tensor:
    """Scores ``i -> j`` of the ``directed`` pairs (indices into ``reprs``) from the
    engine :func:`interpeq.equivalence.cross_similarities` builds over ``reprs``."""
    engine = RidgeEngine(reprs, seed=seed, names=list(names), **dict(ridge or {}))
    return engine.scores(directed).cpu()


def self_block(
    units: Sequence[tuple[str, Tensor, Tensor]], seed: int = 0, ridge: dict[str, Any] | None = None
) -> list[Tensor]:
    """:func:`interpeq.equivalence.self_distances` of each ``(id, reprs, impls)``."""
    return [
        self_distances(Unit(uid, "", r, imp), seed=seed, **dict(ridge or {})).cpu()
        for uid, r, imp in units
    ]


def _in_ray_task(fn: Callable, *args: Any) -> Any:
    """A block inside a Ray task: the task's CPUs as torch threads, its GPU if CUDA has it."""
    _, _, on_gpu = in_task_setup()
    *args, ridge = args
    ridge = dict(ridge or {})
    if on_gpu and "device" not in ridge:
        ridge["device"] = "cuda"
    return fn(*args, ridge)


# ----------------------------------------------------------------------------- execution


class _Blocks:
    """Runs block functions here one after another (``ray=None``) or as Ray tasks, at
    most ``workers`` in flight; results come back in job order."""

    def __init__(self, ray: Any, workers: int, gpus: float, progress: bool) -> None:
        self.ray, self.workers, self.gpus, self.progress = ray, workers, gpus, progress

    def map(self, fn: Callable, jobs: Sequence[tuple], desc: str) -> list[Any]:
        out: list[Any] = [None] * len(jobs)
        bar = tqdm(total=len(jobs), desc=desc, disable=bars_disabled(self.progress), leave=False)
        if self.ray is None:
            for k, job in enumerate(jobs):
                out[k] = fn(*job)
                bar.update()
            bar.close()
            return out
        task = self.ray.remote(_in_ray_task).options(
            num_cpus=1, num_gpus=self.gpus, name=f"interpeq-{fn.__name__.replace('_', '-')}"
        )
        try:
            return bounded_map(
                self.ray,
                task,
                [(fn, *job) for job in jobs],
                self.workers,
                lambda k, r: bar.update(),
            )
        finally:
            bar.close()

    def put(self, value: Any) -> Any:
        return value if self.ray is None else self.ray.put(value)


def check_workers(workers: Any, launcher: str, gpus_per_worker: Any = None) -> None:
    """Clear errors for a bad distribution request."""
    if launcher not in LAUNCHERS:
        raise ValueError(f"unknown launcher {launcher!r}; choose one of {list(LAUNCHERS)}")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    if gpus_per_worker is not None and (
        isinstance(gpus_per_worker, bool)
        or not isinstance(gpus_per_worker, (int, float))
        or gpus_per_worker < 0
    ):
        raise ValueError(f"gpus_per_worker must be a number >= 0, got {gpus_per_worker!r}")


def pairwise_congruity_blocks(
    units: Sequence[Unit],
    pairs: Sequence[tuple[int, int]] | None = None,
    *,
    workers: int = 2,
    launcher: str = "ray",
    blocks: int | None = None,
    address: str | None = None,
    gpus_per_worker: float | None = None,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    one_sided: bool = False,
    impls: str = "auto",
    progress: bool = False,
    **ridge: Any,
) -> list[dict[str, Any]]:
    """:func:`interpeq.equivalence.pairwise_congruity` with its work split into blocks (see
    the module doc): the same rows, the same numbers.

    ``launcher="ray"``: one Ray task per block, at most ``workers`` at a time, each with
    one CPU and ``gpus_per_worker`` GPUs (default: the cluster's GPUs shared between
    the workers, at most one each), on a running Ray session as is, the cluster
    at ``address``, or a local Ray with ``workers`` CPUs. ``launcher="local"`` runs the
    same blocks one after another in this process (a reference; no Ray needed).
    ``blocks`` (default ``workers``) blocks per phase; more balance uneven workers.
    """
    check_workers(workers, launcher, gpus_per_worker)
    if blocks is not None:
        check_workers(blocks, launcher)
    units, pairs, used = checked_pairs(units, pairs, alpha=alpha, impls=impls)
    if not pairs:
        return []
    n_blocks = blocks or workers
    runner = _runner(launcher, workers, address, gpus_per_worker, progress)
    _self_distances_in_blocks(runner, units, used, impls, n_blocks, seed, ridge)

    def cross(units_, pairs_, *, seed: int = 0, **ridge_: Any) -> Tensor:
        return _cross_in_blocks(runner, units_, pairs_, n_blocks, seed, ridge_)

    return pairwise_congruity(
        units, pairs, alpha=alpha, seed=seed, one_sided=one_sided, impls=impls,
        progress=progress, cross=cross, **ridge,
    )  # fmt: skip


def _self_distances_in_blocks(runner: _Blocks, units, used, impls, n_blocks, seed, ridge) -> None:
    """Each needed unit's co-implementation distances (``self_d``), computed in blocks;
    the calibrated null (auto) reads the draws of every member of a used unit's group."""
    groups = {units[i].group for i in used} if impls == "auto" else set()
    need = sorted(set(used) | {k for k, u in enumerate(units) if u.group in groups})
    todo = [i for i in need if impls in OWN_DRAWS and units[i].self_d is None]
    if not todo:
        return
    plan = _balance([(units[i].impls.shape[0], i) for i in todo], n_blocks)
    jobs = [([(units[i].id, units[i].reprs, units[i].impls) for i in b], seed, ridge) for b in plan]
    for b, dists in zip(plan, runner.map(self_block, jobs, "self-distances"), strict=True):
        for i, d in zip(b, dists, strict=True):
            units[i].self_d = d


def _cross_in_blocks(runner: _Blocks, units, pairs, n_blocks: int, seed: int, ridge) -> Tensor:
    """The engine of :func:`cross_similarities` in blocks: every used unit, in index
    order; the engine scores sources in order of first appearance, so each block keeps
    the single-process order of its sources."""
    used = sorted({i for p in pairs for i in p})
    pos = {u: k for k, u in enumerate(used)}
    reprs = runner.put([units[i].reprs for i in used])
    names = [units[i].id for i in used]
    local = [(pos[i], pos[j]) for i, j in pairs]
    rank: dict[int, int] = {}
    for i, j in local:
        rank.setdefault(i, len(rank))
        rank.setdefault(j, len(rank))
    chunk = ridge.get("target_chunk", DEFAULT_CHUNK)
    jobs, orders = [], []
    for lo, hi in plan_cross(local, n_blocks, chunk):
        directed = [q for i, j in local[lo:hi] for q in ((i, j), (j, i))]
        order = sorted(range(len(directed)), key=lambda p: rank[directed[p][0]])
        jobs.append((reprs, names, [directed[p] for p in order], seed, ridge))
        orders.append(order)
    sims = []
    for order, sc in zip(orders, runner.map(cross_block, jobs, "similarities"), strict=True):
        back = torch.empty_like(sc)
        back[order] = sc
        sims.append(back.reshape(-1, 2).amin(1))
    return torch.cat(sims)


def _runner(
    launcher: str, workers: int, address: str | None, gpus: float | None, progress: bool
) -> _Blocks:
    """Blocks run here (``local``) or on Ray. A local Ray started here stays up until
    the process exits (Ray shuts it down then), so that the representations and the
    pairwise blocks of one ``interpeq compare`` share it."""
    if launcher == "local":
        return _Blocks(None, workers, gpus or 0.0, progress)
    ray, _ = connect_ray(num_cpus=workers, address=address)
    if gpus is None:  # not given: share the cluster's GPUs between the workers
        have = float(ray.cluster_resources().get("GPU", 0.0))
        gpus = min(1.0, have / workers) if have else 0.0
        if gpus:
            print(f"compare: {gpus:g} GPU per Ray block ({have:g} GPUs, {workers} workers)")
    check_resources(ray, "block", GPU=gpus)
    return _Blocks(ray, workers, gpus, progress)


def _compute_block(
    units: Sequence,
    tokens: Tensor,
    m: int,
    seed: int,
    with_self: bool,
    representation: str = "residual",
    ridge=None,  # last: the Ray task wrapper fills in the device here
) -> list[Unit]:
    out = [compute_unit(u, tokens, m, seed, representation) for u in units]
    if with_self:
        for unit in out:
            self_distances(unit, seed=seed)
    return out


def compute_units_blocks(
    units: Sequence[ModelUnit],
    tokens: Tensor,
    m: int = DEFAULT_M,
    seed: int = 0,
    *,
    workers: int = 2,
    launcher: str = "ray",
    address: str | None = None,
    progress: bool = False,
    self_distances_too: bool = False,
    representation: str = "residual",
) -> list[Unit]:
    """:func:`interpeq.equivalence.compute_unit` of every unit (representations and ``m``
    co-implementations on ``tokens``), one Ray task per unit, at most ``workers`` at a
    time; the same tensors as one process (the same seeded draws, on CPU).

    ``self_distances_too``: the task also computes the unit's
    :func:`~interpeq.equivalence.self_distances` (``seed``, default ridge settings), cached
    on the returned unit, so that the co-implementations need not travel back to a
    worker for them."""
    check_workers(workers, launcher)
    runner = _runner(launcher, workers, address, None, progress)
    shared = runner.put(tokens)
    jobs = [
        ([u], shared, m, seed, self_distances_too and m > 0, representation, None) for u in units
    ]
    return [c for block in runner.map(_compute_block, jobs, "representations") for c in block]
