"""Zoo members as comparable units, and the probe tokens every unit sees.

A unit is one member, or (``units="chains"``; ``"auto"`` picks it when every member
is a stage of a composed algorithm) a composed-algorithm chain: the stage members of
one algorithm with the same setting and seed, in stage order. A unit's group is its
task (members) or algorithm (chains).

**Probes.** ``probes="mixture"`` (default): equal shares of each group's own input
distribution (its task's sampler, or the algorithm's stage-0 sampler for chains),
concatenated and shuffled with ``seed``; with one group that is simply the task's
sampler. ``"uniform"``: uniform content tokens behind BOS. Or a task name: that
task's sampler.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from interpeq.equivalence.units import ModelUnit
from interpeq.seeds import generator
from interpeq.tasks import get_algorithm
from interpeq.tasks.names import chain_id, parse_stage
from interpeq.training import resolve_task

PROBE_KINDS = ("mixture", "uniform")
UNIT_KINDS = ("auto", "members", "chains")


def member_units(members: Sequence, kind: str = "auto") -> list[ModelUnit]:
    """Zoo members -> units (members, or composed-algorithm chains); see the module doc."""
    if kind not in UNIT_KINDS:
        raise ValueError(f"unknown units {kind!r}; choose one of {list(UNIT_KINDS)}")
    members = list(members)
    if not members:
        raise ValueError("no members to compare")
    staged = [parse_stage(m.task_name) for m in members]
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
    return _chains(members, staged)


def _chains(members: list, staged: list[tuple[str, int]]) -> list[ModelUnit]:
    chains: dict[tuple, dict[int, Any]] = {}
    for m, (algo, k) in zip(members, staged, strict=True):
        chains.setdefault((algo, m.setting, m.seed), {})[k] = m
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
                chain_id(algo, setting, seed),
                algo,
                [m.model for m in ms],
                [m.correspondence for m in ms],
                [m.task_name for m in ms],
                {"setting": setting, "seed": seed, "members": [m.id for m in ms]},
            )
        )
    return out


def sort_units(units: list[ModelUnit]) -> list[ModelUnit]:
    """Units ordered by group, then id: the row order of every matrix."""
    return sorted(units, key=lambda u: (u.group, u.id))


def probe_tokens(tasks: Sequence[str], n: int, seed: int = 0, kind: str = "mixture") -> Tensor:
    """``[n, seq_len]`` probe tokens shared by every model; see the module doc."""
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
