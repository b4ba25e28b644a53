"""Train every member of a zoo, resumably.

Rerunning after a kill skips finished members, resumes an interrupted member from its
last Lightning checkpoint, and never retrains a finished one: the zoo folder (see
:mod:`interpeq.zoo.store`) is the single source of truth, so any launcher that runs
members against the same folder resumes the same way (:mod:`interpeq.zoo.train` is
what each runs). ``interpeq zoo`` is :mod:`interpeq.zoo.cli`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from interpeq.zoo.launchers import check_launcher, run_groups_ray
from interpeq.zoo.spec import MemberSpec, ZooSpec
from interpeq.zoo.store import DEFAULT_ROOT, Zoo, ZooStore
from interpeq.zoo.train import (  # noqa: F401  (stack_groups re-exported)
    check_finished_match,
    stack_groups,
    train_member,
    train_stacked,
)


def run_zoo(
    spec: ZooSpec,
    root: str | Path = DEFAULT_ROOT,
    *,
    progress: bool = True,
    logger_factory: Callable[[MemberSpec], Any] | None = None,
    callbacks_factory: Callable[[MemberSpec], Sequence] | None = None,
    launcher: str = "local",
    workers: int | None = None,
    gpus_per_member: float = 0.0,
    address: str | None = None,
) -> Zoo:
    """Train the members of ``spec`` that are not finished yet, then load the zoo.

    ``launcher="ray"`` trains members (or stacked groups) as Ray tasks, at most
    ``workers`` at a time, each with ``gpus_per_member`` GPUs, on a local Ray or the
    cluster at ``address`` (:mod:`interpeq.zoo.launchers`).
    """
    check_launcher(launcher, workers, gpus_per_member, address)
    store = ZooStore(root, spec.name)
    members = spec.members()
    check_finished_match(members, store)
    todo = [m for m in members if not store.is_finished(m.id)]
    stacked = spec.stacked and logger_factory is None and callbacks_factory is None
    groups = stack_groups(todo, store) if stacked else [[m] for m in todo]
    bar = tqdm(
        total=len(members),
        initial=len(members) - len(todo),
        desc=f"zoo {spec.name}",
        unit="member",
        disable=not progress,
    )
    if launcher == "ray":
        run_groups_ray(
            groups,
            store,
            members,
            workers=workers,
            gpus_per_member=gpus_per_member,
            address=address,
            logger_factory=logger_factory,
            callbacks_factory=callbacks_factory,
            on_done=lambda group: bar.update(len(group)),
        )
        groups = []
    for group in groups:
        bar.set_postfix_str(group[0].id if len(group) == 1 else f"{len(group)} stacked")
        if len(group) > 1:
            train_stacked(group, store)
        else:
            member = group[0]
            train_member(
                member,
                store,
                logger=logger_factory(member) if logger_factory else False,
                callbacks=callbacks_factory(member) if callbacks_factory else (),
            )
        bar.update(len(group))
    bar.close()
    return Zoo.load(store.dir)
