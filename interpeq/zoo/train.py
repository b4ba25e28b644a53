"""Train one member, or one stacked group of members, into the zoo folder.

What every launcher runs (the local runner in this process, the Ray launcher in its
tasks): :func:`train_group` checkpoints into ``.partial/``, gives each member its own
logger (a stacked group routes its one Lightning run to them through
:class:`~interpeq.report.members.MemberLoggers`), flags each member ``converged`` or
not and retries the ones that missed their thresholds (:mod:`interpeq.zoo.retry`),
then moves finished members into place through :class:`~interpeq.zoo.store.ZooStore`,
so a rerun resumes the same way whichever launcher ran a member. Under DDP every rank
runs this; a rank > 0 gets a store that does not write (:mod:`interpeq.zoo.ddp`), and
the folders cleared here are cleared by the store's writer alone.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interpeq.zoo.ddp import barrier
from interpeq.zoo.retry import HEADLINE, RetrySpec
from interpeq.zoo.spec import MemberSpec
from interpeq.zoo.store import ZooStore


@dataclass
class GroupRun:
    """How a group trains, besides its members: per-member loggers, the callbacks of a
    group (e.g. capture + equivalence tracker), Trainer arguments, the retry policy,
    a step-level progress bar, and the ``torch.compile`` mode of a stacked group's
    fused step (``None``: eager; a member alone trains the hooked model eagerly)."""

    logger_factory: Callable[[MemberSpec], Any] | None = None
    callbacks_factory: Callable[[list[MemberSpec]], Sequence] | None = None
    trainer_kwargs: dict[str, Any] | None = None
    retry: RetrySpec = field(default_factory=RetrySpec)
    progress: bool = False
    compile_mode: str | None = None


def default_max_stack() -> int:
    """Members per stacked model when the zoo does not say (``max_stack``): enough to
    fill a GPU with default-size members (their step is launch-bound, so wider stacks
    are nearly free there); on a CPU the gain flattens early and memory is shared."""
    import torch

    return 256 if torch.cuda.is_available() else 64


def stack_groups(
    members: Sequence[MemberSpec], store: ZooStore, max_stack: int | None = None
) -> list[list[MemberSpec]]:
    """Group members that can train as one stacked model: same architecture and
    training hyper-parameters (seeds, tasks and correspondences may differ), at most
    ``max_stack`` per group.

    A member with a checkpoint of its own (interrupted alone, or finished by a stacked
    run whose other members were not yet moved into place) stays alone: it resumes.
    """
    cap = max_stack or default_max_stack()
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
    chunks = [g[i : i + cap] for g in groups.values() for i in range(0, len(g), cap)]
    return alone + chunks


def train_group(
    group: Sequence[MemberSpec], store: ZooStore, run: GroupRun | None = None
) -> list[dict]:
    """Train (or resume) ``group`` — one member alone, several stacked — retry the
    members that missed their thresholds, and move each into the zoo; returns each
    member's stored metrics (with ``converged``)."""
    from interpeq.training.progress import StepProgress

    run = run or GroupRun()
    group = list(group)
    loggers = [run.logger_factory(m) if run.logger_factory else False for m in group]
    callbacks = list(run.callbacks_factory(group)) if run.callbacks_factory else []
    if run.progress:
        label = group[0].id if len(group) == 1 else f"{len(group)} stacked"
        callbacks.append(StepProgress(label, group[0].train.max_steps, len(group)))
    try:
        results = _fit(group, store, loggers, callbacks, run)
    finally:
        for lg in loggers:
            if lg and hasattr(lg, "finish"):
                lg.finish()
    out = []
    for member, result in zip(group, results, strict=True):
        result, info = _retried(member, store, result, run)
        out.append(_store(member, store, result, info, run.retry, len(group)))
    if len(group) > 1 and store.writes:
        shutil.rmtree(_stack_dir(group, store), ignore_errors=True)
    return out


def train_member(
    member: MemberSpec,
    store: ZooStore,
    *,
    logger: Any = False,
    callbacks: Sequence = (),
    trainer_kwargs: dict[str, Any] | None = None,
) -> dict:
    """Train (or resume) one member and move it into the zoo; returns its metrics."""
    run = GroupRun(
        logger_factory=(lambda m: logger) if logger else None,
        callbacks_factory=(lambda ms: list(callbacks)) if callbacks else None,
        trainer_kwargs=trainer_kwargs,
    )
    return train_group([member], store, run)[0]


def train_stacked(
    group: Sequence[MemberSpec], store: ZooStore, *, trainer_kwargs: dict[str, Any] | None = None
) -> None:
    """Train a group as one stacked model, then move each member into the zoo."""
    train_group(group, store, GroupRun(trainer_kwargs=trainer_kwargs))


# ----------------------------------------------------------------------------- fitting


def _stack_dir(group: Sequence[MemberSpec], store: ZooStore) -> Path:
    ids = "|".join(m.id for m in group)
    return store.partial_dir / ("stack-" + hashlib.sha256(ids.encode()).hexdigest()[:12])


def _fit(group, store: ZooStore, loggers: list, callbacks: list, run: GroupRun) -> list:
    from interpeq.report.members import MemberLoggers
    from interpeq.training import fit_member
    from interpeq.training.stacked import fit_stacked

    if len(group) == 1:
        (m,) = group
        work = store.work_dir(m.id)
        store.log_event("resumed" if (work / "last.ckpt").exists() else "started", m.id)
        return [
            fit_member(
                task=m.task,
                model=m.model,
                correspondence=m.correspondence,
                train=m.train,
                ckpt_dir=work,
                logger=loggers[0],
                callbacks=callbacks,
                trainer_kwargs=run.trainer_kwargs,
            )
        ]
    work = _stack_dir(group, store)
    resumed = (work / "stacked" / "last.ckpt").exists()
    for m in group:
        store.log_event("resumed" if resumed else "started", m.id, stacked=len(group))
    logger = MemberLoggers(loggers, [m.id for m in group]) if any(loggers) else False
    return fit_stacked(
        [(m.task, m.correspondence, m.train, m.model) for m in group],
        group[0].model,
        ckpt_dir=work,
        member_dirs=[store.work_dir(m.id) for m in group],
        logger=logger,
        callbacks=callbacks,
        trainer_kwargs=run.trainer_kwargs,
        compile_mode=run.compile_mode,
    )


def _retried(member: MemberSpec, store: ZooStore, result: Any, run: GroupRun):
    """``(kept result, retry record or None)`` after the retries ``run.retry`` asks for."""
    from interpeq.training import evaluate

    retry = run.retry
    if retry.mode == "none" or retry.converged(result.metrics):
        return result, None
    best, kept, history = result, 0, [_headline(result.metrics, 0)]
    for attempt in range(1, retry.max_tries + 1):
        store.log_event(
            "retry", member.id, mode=retry.mode, attempt=attempt, before=_headline(best.metrics)
        )
        res = _attempt(member, store, best, attempt, run)
        res.metrics.update(evaluate(res.model, member.task, member.correspondence, member.train))
        history.append(_headline(res.metrics, attempt))
        if retry.margin(res.metrics) > retry.margin(best.metrics):
            best, kept = res, attempt
        if retry.converged(best.metrics):
            break
    info = {"mode": retry.mode, "attempts": len(history) - 1, "kept": kept, "history": history}
    return best, info


def _attempt(member: MemberSpec, store: ZooStore, best: Any, attempt: int, run: GroupRun):
    """One retry: from scratch with a derived seed, or ``steps`` more from ``best``."""
    from interpeq.training import fit_member

    retry, t = run.retry, member.train
    seed = retry.attempt_seed(member, attempt)
    work = store.partial_dir / f"{member.id}.retry{attempt}"
    if store.writes:
        shutil.rmtree(work, ignore_errors=True)
    barrier()  # DDP: no rank looks for a checkpoint in ``work`` before it is cleared
    common = dict(
        task=member.task,
        correspondence=member.correspondence,
        ckpt_dir=work,
        trainer_kwargs=run.trainer_kwargs,
    )
    if retry.mode == "reseed":
        res = fit_member(
            model=member.model.replace(seed=seed), train=t.replace(seed=seed), **common
        )
        res.metrics["seed"] = float(seed)
    else:  # continue at the schedule's final learning rate, on fresh batches
        cont = t.replace(
            seed=seed, max_steps=retry.steps, warmup_steps=0, schedule="constant",
            lr=t.lr * t.min_lr_ratio, min_steps=0,
        )  # fmt: skip
        res = fit_member(
            model=member.model, train=cont, init_state=best.model.state_dict(), **common
        )
        res.metrics["steps"] += best.metrics.get("steps", 0.0)
        res.metrics["seconds"] += best.metrics.get("seconds", 0.0)
    if store.writes:
        shutil.rmtree(work, ignore_errors=True)
    return res


def _headline(metrics: dict, attempt: int | None = None) -> dict:
    out = {k: round(float(metrics.get(k, 0.0)), 4) for k in (*HEADLINE, "steps")}
    return out if attempt is None else {"attempt": attempt, **out}


def _store(member, store: ZooStore, result, info, retry: RetrySpec, n_stacked: int) -> dict:
    metrics = {**result.metrics, "converged": retry.converged(result.metrics)}
    spec = member.to_dict()
    if info is not None:
        spec["retry"] = info
    store.finish(spec, metrics, result.model)
    extra = {"stacked": n_stacked} if n_stacked > 1 else {}
    store.log_event("finished", member.id, metrics=metrics, **extra)
    return metrics
