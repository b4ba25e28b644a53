"""Train every member of a zoo, resumably.

Rerunning after a kill skips finished members, resumes an interrupted member from its
last Lightning checkpoint, and never retrains a finished one: the zoo folder (see
:mod:`interpeq.zoo.store`) is the single source of truth, so any launcher that runs
members against the same folder resumes the same way (:mod:`interpeq.zoo.train` is
what each runs). Loggers and callbacks compose with stacking: a stacked group logs
each member to its own run. ``interpeq zoo`` is :mod:`interpeq.zoo.cli`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from interpeq.console import bars_disabled
from interpeq.zoo import ddp
from interpeq.zoo.launchers import check_launcher, run_groups_ray
from interpeq.zoo.retry import RetrySpec
from interpeq.zoo.spec import MemberSpec, ZooSpec
from interpeq.zoo.stale import check_finished_match
from interpeq.zoo.store import DEFAULT_ROOT, Zoo, ZooStore
from interpeq.zoo.train import GroupRun, stack_groups, train_group


def run_zoo(
    spec: ZooSpec,
    root: str | Path = DEFAULT_ROOT,
    *,
    progress: bool = True,
    logger_factory: Callable[[MemberSpec], Any] | None = None,
    callbacks_factory: Callable[[list[MemberSpec]], Sequence] | None = None,
    trainer_kwargs: dict[str, Any] | None = None,
    retry: RetrySpec | None = None,
    only: Collection[str] | None = None,
    launcher: str = "local",
    workers: int | None = None,
    gpus_per_member: float | None = None,
    address: str | None = None,
) -> Zoo:
    """Train the members of ``spec`` that are not finished yet, then load the zoo.

    ``logger_factory(member)`` gives each member its logger (stacked or not);
    ``callbacks_factory(members)`` the callbacks of one Lightning run (a member alone,
    or a stacked group); ``trainer_kwargs`` override the Trainer (``accelerator`` is
    ``auto``); ``retry`` flags (and retries) members that miss their thresholds;
    ``only`` restricts training to these member ids. ``launcher="ray"`` trains members
    (or stacked groups) as Ray tasks, at most ``workers`` at a time, each with
    ``gpus_per_member`` GPUs (default: one where CUDA is available, none on a CPU
    machine), on a local Ray or the cluster at ``address``
    (:mod:`interpeq.zoo.launchers`). ``trainer_kwargs`` with ``devices > 1`` and
    ``strategy="ddp"`` train each group data-parallel, rank 0 alone writing the zoo
    (:mod:`interpeq.zoo.ddp`).
    """
    check_launcher(launcher, workers, gpus_per_member, address)
    ddp.check_ddp(trainer_kwargs, launcher)
    store = ZooStore(root, spec.name)
    members = spec.members()
    check_finished_match(members, store)
    todo = [m for m in members if not store.is_finished(m.id) and (only is None or m.id in only)]
    groups = stack_groups(todo, store, spec.max_stack) if spec.stacked else [[m] for m in todo]
    run = GroupRun(
        logger_factory=logger_factory,
        callbacks_factory=callbacks_factory,
        trainer_kwargs=trainer_kwargs,
        retry=retry or RetrySpec(),
        progress=progress,
        compile_mode=spec.compile,
    )
    parallel = ddp.processes(trainer_kwargs) > 1
    if parallel:  # every rank trains the groups rank 0 planned; rank 0 alone writes
        store, groups = ddp.share_plan(store, groups, members)
        progress = progress and ddp.rank() == 0
        run = dataclasses.replace(run, progress=progress)
    _say_what_compiles(spec, groups)
    total = len(members) if only is None else len([m for m in members if m.id in only])
    bar = tqdm(
        total=total,
        initial=total - len(todo),
        desc=f"zoo {spec.name}",
        unit="member",
        disable=bars_disabled(progress),
    )
    if launcher == "ray":
        run_groups_ray(
            groups,
            store,
            members,
            run=dataclasses.replace(run, progress=False),
            workers=workers,
            gpus_per_member=gpus_per_member,
            address=address,
            on_done=lambda group: bar.update(len(group)),
        )
        groups = []
    for k, group in enumerate(groups):
        bar.set_postfix_str(group[0].id if len(group) == 1 else f"{len(group)} stacked")
        if parallel:
            ddp.mark_group(k)
        train_group(group, store, run)
        bar.update(len(group))
    bar.close()
    if parallel:
        ddp.end_run(store)
    return Zoo.load(store.dir)


def _say_what_compiles(spec: ZooSpec, groups: list[list[MemberSpec]]) -> None:
    """``compile`` applies to the fused step of stacked groups; members that train alone
    (``stacked: false``, an architecture no other member shares, a resumed member, a
    retry) run the hooked model eagerly. Said once, with the count."""
    alone = sum(len(g) for g in groups if len(g) == 1)
    if spec.compile and alone:
        warnings.warn(
            f"compile: {spec.compile} compiles the fused step of stacked groups; {alone} "
            f"member(s) of {spec.name} train alone (stacked: false, or no other member "
            "shares their architecture) and run eagerly, as do retries",
            RuntimeWarning,
            stacklevel=3,
        )
