"""The paper code's composition of an algorithm from per-task zoos.

interpeq's own toy trains one model per algorithm *stage* on the previous stage's
outputs and compares chains of them. The paper code (alansun17904/interp-equiv,
``left/``) instead trains one zoo per *task* on that task's own inputs and composes an
algorithm only at evaluation time:

1. for each stage of the algorithm, sample ``k`` models of that stage's task (seeded,
   without replacement, from the converged members of the task zoo);
2. run every sampled stage-1 model on the probes; run every sampled stage-2 model on
   *each* stage-1 model's predicted tokens (BOS kept), and so on: a tree with ``k``
   branches per node, ``k ** depth`` root-to-leaf paths;
3. concatenate the stage representations along each root-to-leaf path.

**What we chose.** One :class:`~interpeq.equivalence.units.Unit` per root-to-leaf path
(``k ** depth`` units per algorithm; ``max_paths`` keeps a seeded subset when that is too
many), grouped by algorithm, so the units go through the existing pairwise test
(:func:`interpeq.equivalence.pairwise_congruity`) unchanged. A path's co-implementations
are each stage's own draws on that stage's input branch, concatenated, exactly as
:func:`~interpeq.equivalence.units.compute_unit` builds a chain's. Paths share their
prefixes, so each tree node (a stage model on one input branch) is computed once.
Paths that share a stage-1 model are not independent samples: the group's spread
(and so the calibrated null) is that of the paper's construction, not of independent
chains; the report states this beside the matrix.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interpeq.equivalence.defaults import DEFAULT_M
from interpeq.equivalence.impls import co_implementations
from interpeq.equivalence.representations import representation_options, representations
from interpeq.equivalence.units import Unit
from interpeq.seeds import generator


@dataclass(frozen=True)
class PaperComposition:
    """The sampled models of one algorithm: ``stages[k]`` holds ``k``-th stage members."""

    algorithm: str
    tasks: tuple[str, ...]
    stages: tuple[tuple[Any, ...], ...]

    @property
    def n_paths(self) -> int:
        n = 1
        for pool in self.stages:
            n *= len(pool)
        return n


def task_pools(members: Sequence[Any], include_unconverged: bool = False) -> dict[str, list]:
    """Members of a per-task zoo by task name (catalogue names; a faithful stage member,
    :func:`faithful_task`, counts as its task), sorted by id; those flagged unconverged
    are left out unless asked: they implement no interpretation."""
    pools: dict[str, list] = {}
    for m in sorted(members, key=lambda m: m.id):
        if include_unconverged or getattr(m, "converged", True):
            pools.setdefault(faithful_task(m.task_name) or m.task_name, []).append(m)
    return pools


def faithful_task(entry: str) -> str | None:
    """The catalogue task an algorithm-stage entry *is*, when training it is training
    that task: stage 0 of an algorithm that samples with the stage task's own sampler
    (``algorithm_1/stage0`` is ``sort_descending`` on its own inputs; ``algorithm_2/
    stage0`` is not, its inputs mix in descending runs). ``None`` otherwise, and for a
    plain task name."""
    from interpeq.tasks import get_algorithm
    from interpeq.tasks.names import parse_stage

    stage = parse_stage(entry)
    if not stage or stage[1] != 0:
        return None
    algo = get_algorithm(stage[0])
    first = algo.stages[0]
    return first.name if algo.sampler is first.sampler else None


def shared_members(members: Sequence[Any], tasks: Sequence[str]) -> dict[str, list]:
    """The algorithm zoo's members that a per-task zoo of ``tasks`` can take as they are
    (:func:`faithful_task`), by catalogue task: those tasks need no training of their own."""
    out: dict[str, list] = {}
    for m in members:
        task = faithful_task(m.task_name)
        if task in tasks:
            out.setdefault(task, []).append(m)
    return out


def sample_composition(
    algorithm: str, pools: dict[str, list], k: int, seed: int = 0
) -> PaperComposition:
    """``k`` members per stage of ``algorithm``, drawn without replacement from each
    stage task's pool with a generator seeded by ``(seed, algorithm, stage)``: the same
    seed gives the same sample in any process. Two stages of one task (none in the six
    presets) draw independently."""
    from interpeq.tasks import get_algorithm

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"paper composition: k must be a positive int, got {k!r}")
    tasks = tuple(s.name for s in get_algorithm(algorithm).stages)
    stages = []
    for i, task in enumerate(tasks):
        pool = pools.get(task, [])
        if len(pool) < k:
            raise ValueError(
                f"paper composition of {algorithm}: stage {i} ({task}) needs {k} converged "
                f"members of task {task!r}, the task zoo has {len(pool)}; train more seeds or "
                f"lower compare.paper_k"
            )
        order = torch.randperm(len(pool), generator=generator(seed, "paper-compose", algorithm, i))
        stages.append(tuple(pool[j] for j in order[:k].tolist()))
    return PaperComposition(algorithm, tasks, tuple(stages))


def _next_tokens(model, tokens: Tensor) -> Tensor:
    """The next stage's input: ``model``'s argmax predictions behind the original BOS."""
    was = model.training
    model.eval()
    with torch.no_grad():
        logits = model(tokens)
    model.train(was)
    return torch.cat([tokens[:, :1], logits[:, 1:].argmax(-1)], dim=1)


def _paths(comp: PaperComposition, max_paths: int | None, seed: int) -> list[tuple[int, ...]]:
    every = list(itertools.product(*(range(len(p)) for p in comp.stages)))
    if max_paths is None or len(every) <= max_paths:
        return every
    gen = generator(seed, "paper-paths", comp.algorithm)
    keep = sorted(torch.randperm(len(every), generator=gen)[:max_paths].tolist())
    return [every[i] for i in keep]


def composition_units(
    comp: PaperComposition,
    tokens: Tensor,
    *,
    m: int = DEFAULT_M,
    seed: int = 0,
    representation: str = "residual",
    max_paths: int | None = None,
) -> list[Unit]:
    """One unit per root-to-leaf path of ``comp`` on the probe ``tokens`` (see the
    module doc): ``reprs`` ``[n, sum of the stages' D]``, ``impls`` ``[m, n, same]``
    (``m = 0``: none, for the training null). Deterministic given ``seed``."""
    opts = representation_options(representation)
    nodes: dict[tuple[int, ...], tuple[Tensor, Tensor, Tensor]] = {}

    def node(prefix: tuple[int, ...]) -> tuple[Tensor, Tensor, Tensor]:
        """(reprs, impls, output tokens) of the last model of ``prefix`` on its branch."""
        if prefix not in nodes:
            depth = len(prefix) - 1
            x = tokens if depth == 0 else node(prefix[:-1])[2]
            member = comp.stages[depth][prefix[-1]]
            r = representations(member.model, x, **opts)
            draws = (
                co_implementations(member.model, member.correspondence, x, m, seed + depth, **opts)
                if m
                else r.new_zeros(0, *r.shape)
            )
            nodes[prefix] = (r, draws, _next_tokens(member.model, x))
        return nodes[prefix]

    units = []
    for path in _paths(comp, max_paths, seed):
        parts = [node(path[: d + 1]) for d in range(len(path))]
        ids = [comp.stages[d][i].id for d, i in enumerate(path)]
        units.append(
            Unit(
                f"{comp.algorithm}/paper/" + "-".join(map(str, path)),
                comp.algorithm,
                torch.cat([p[0] for p in parts], dim=-1).cpu(),
                torch.cat([p[1] for p in parts], dim=-1).cpu(),
                {"path": list(path), "members": ids, "stage_dims": [p[0].shape[-1] for p in parts]},
            )
        )
    return units


def paper_units(
    members: Sequence[Any],
    algorithms: Sequence[str],
    tokens: Tensor,
    *,
    k: int = 5,
    m: int = DEFAULT_M,
    seed: int = 0,
    representation: str = "residual",
    max_paths: int | None = None,
    include_unconverged: bool = False,
) -> list[Unit]:
    """Every algorithm's path units from the per-task zoo ``members`` (anything with
    ``id``, ``task_name``, ``model``, ``correspondence`` and ``converged``), ready for
    :func:`interpeq.equivalence.pairwise_congruity`; ordered by algorithm, then path."""
    pools = task_pools(members, include_unconverged)
    out: list[Unit] = []
    for algo in algorithms:
        comp = sample_composition(algo, pools, k, seed)
        out += composition_units(
            comp, tokens, m=m, seed=seed, representation=representation, max_paths=max_paths
        )
    return out


def algorithm_tasks(algorithms: Sequence[str]) -> list[str]:
    """The distinct tasks a per-task zoo must hold for ``algorithms`` (stage order)."""
    from interpeq.tasks import get_algorithm

    return list(dict.fromkeys(s.name for a in algorithms for s in get_algorithm(a).stages))


def task_zoo_config(
    zoo: dict[str, Any], algorithms: Sequence[str], shared: Sequence[str] = ()
) -> dict[str, Any]:
    """The per-task zoo of an algorithm zoo's YAML ``zoo:`` section: the same model,
    training, seeds, settings and retry, one task per distinct stage task not in
    ``shared`` (tasks whose models the algorithm zoo already holds, :func:`shared_members`),
    named ``<zoo>_tasks``; per-task recipes keyed by catalogue task name carry over, those
    keyed by a stage entry (``algorithm_5/stage0``) have no counterpart and are dropped."""
    out = {k: v for k, v in zoo.items() if k not in ("algorithms", "tasks")}
    out["tasks"] = [t for t in algorithm_tasks(algorithms) if t not in shared]
    out["name"] = f"{zoo.get('name', 'zoo')}_tasks"
    for key in ("task_train", "task_model"):
        if zoo.get(key):
            out[key] = {t: v for t, v in zoo[key].items() if t in out["tasks"]}
    return out


def compare_paper(
    cfg: Any, root: Any, algorithms: Sequence[str], zoo: Any = None, **train: Any
) -> list[dict]:
    """Train (or reuse) the per-task zoo of ``cfg`` (an experiment config of the toy),
    compose every algorithm the paper code's way and run the pairwise test on the path
    units with the headline null ``cfg.compare.impls[0]``; returns the pair rows
    (ready for :func:`interpeq.equivalence.group_pairs`). ``zoo``: the trained algorithm
    zoo, whose faithful stage members (:func:`shared_members`) stand in for their task
    (with at least ``paper_k`` converged of them; else the task is trained). ``train``:
    ``logger``, ``progress`` of :func:`interpeq.reproduce.common.train_zoo`."""
    from types import SimpleNamespace

    from interpeq.compare import probe_tokens
    from interpeq.equivalence import pairwise_congruity
    from interpeq.experiment import ExperimentSpec
    from interpeq.reproduce.common import train_zoo

    c = cfg.compare
    tasks = algorithm_tasks(algorithms)
    shared = {
        t: ms
        for t, ms in shared_members(list(zoo or []), tasks).items()
        if sum(m.converged for m in ms) >= c.paper_k
    }
    members = [m for ms in shared.values() for m in ms]
    if len(shared) < len(tasks):
        exp = ExperimentSpec.from_dict(task_zoo_config(cfg.raw["zoo"], algorithms, list(shared)))
        task_zoo, _ = train_zoo(SimpleNamespace(pipeline=exp), root, **train)
        members += list(task_zoo)
    tokens = probe_tokens(list(algorithms), c.n_probes, c.seed, c.probes)
    impls = c.impls[0]
    units = paper_units(
        members, algorithms, tokens, k=c.paper_k, m=0 if impls == "training" else c.m,
        seed=c.seed, max_paths=c.paper_max_paths,
    )  # fmt: skip
    return pairwise_congruity(units, alpha=c.alpha, seed=c.seed, impls=impls)
