"""Train one member, or one stacked group of members, into the zoo folder.

What every launcher runs (the local runner in this process, the Ray launcher in its
tasks): each function checkpoints into ``.partial/`` and moves finished members into
place through :class:`~interpeq.zoo.store.ZooStore`, so a rerun resumes the same way
whichever launcher ran a member. A finished member whose stored config differs from
what the YAML now asks for is an error, not silently kept.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from typing import Any

from interpeq.zoo.spec import MemberSpec
from interpeq.zoo.store import ZooStore, read_json


def train_member(
    member: MemberSpec,
    store: ZooStore,
    *,
    logger: Any = False,
    callbacks: Sequence = (),
    trainer_kwargs: dict[str, Any] | None = None,
) -> dict:
    """Train (or resume) one member and move it into the zoo; returns its metrics."""
    from interpeq.training import fit_member

    work = store.work_dir(member.id)
    resumed = (work / "last.ckpt").exists()
    store.log_event("resumed" if resumed else "started", member.id)
    result = fit_member(
        task=member.task,
        model=member.model,
        correspondence=member.correspondence,
        train=member.train,
        ckpt_dir=work,
        logger=logger,
        callbacks=callbacks,
        trainer_kwargs=trainer_kwargs,
    )
    store.finish(member.to_dict(), result.metrics, result.model)
    store.log_event("finished", member.id, metrics=result.metrics)
    return result.metrics


def stack_groups(members: Sequence[MemberSpec], store: ZooStore) -> list[list[MemberSpec]]:
    """Group members that can train as one stacked model: same architecture and
    training hyper-parameters (seeds, tasks and correspondences may differ).

    A member with a checkpoint of its own (interrupted alone, or finished by a stacked
    run whose other members were not yet moved into place) stays alone: it resumes.
    """
    groups: dict[str, list[MemberSpec]] = {}
    alone = []
    for m in members:
        if (store.work_dir(m.id) / "last.ckpt").exists():
            alone.append([m])
            continue
        key = json.dumps(
            [m.model.replace(seed=0).to_dict(), m.train.replace(seed=0).to_dict()], sort_keys=True
        )
        groups.setdefault(key, []).append(m)
    return alone + list(groups.values())


def train_stacked(
    group: Sequence[MemberSpec], store: ZooStore, *, trainer_kwargs: dict[str, Any] | None = None
) -> None:
    """Train a group as one stacked model, then move each member into the zoo."""
    from interpeq.training.stacked import fit_stacked

    ids = [m.id for m in group]
    work = store.partial_dir / ("stack-" + hashlib.sha256("|".join(ids).encode()).hexdigest()[:12])
    resumed = (work / "stacked" / "last.ckpt").exists()
    for m in group:
        store.log_event("resumed" if resumed else "started", m.id, stacked=len(group))
    results = fit_stacked(
        [(m.task, m.correspondence, m.train, m.model) for m in group],
        group[0].model,
        ckpt_dir=work,
        member_dirs=[store.work_dir(i) for i in ids],
        trainer_kwargs=trainer_kwargs,
    )
    for m, result in zip(group, results, strict=True):
        store.finish(m.to_dict(), result.metrics, result.model)
        store.log_event("finished", m.id, metrics=result.metrics, stacked=len(group))
    shutil.rmtree(work, ignore_errors=True)


def check_finished_match(members: Sequence[MemberSpec], store: ZooStore) -> None:
    """Refuse to mix configs in one zoo: a finished member whose stored spec differs from
    what the YAML now asks for (another learning rate, architecture, correspondence...)
    would be skipped and silently kept. Fields absent on either side are not compared
    (a field added to the config after the member was trained keeps its default)."""
    stale = []
    for m in members:
        if not store.is_finished(m.id):
            continue
        stored = read_json(store.member_dir(m.id) / "member.json")
        wanted = json.loads(json.dumps(m.to_dict()))
        diffs = _diff(stored, wanted)
        if diffs:
            stale.append(f"{m.id} ({'; '.join(diffs[:3])})")
    if stale:
        raise ValueError(
            f"{len(stale)} finished member(s) of zoo {store.name!r} were trained with another "
            "config than the zoo YAML now gives: "
            + ", ".join(stale[:5])
            + (" ..." if len(stale) > 5 else "")
            + f". Restore the config, or delete those folders under {store.dir} (and nothing "
            "else) to retrain them; the other members are kept."
        )


def _diff(stored: Any, wanted: Any, path: str = "") -> list[str]:
    if isinstance(stored, dict) and isinstance(wanted, dict):
        out = []
        for key in sorted(set(stored) & set(wanted)):
            out += _diff(stored[key], wanted[key], f"{path}.{key}" if path else str(key))
        return out
    return [] if stored == wanted else [f"{path}: trained {stored!r}, now {wanted!r}"]
