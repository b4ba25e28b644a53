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

from interpeq.zoo.retry import RetrySpec, retry_member
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


CPU_MAX_STACK = 64  # on a CPU the stacking gain flattens early and memory is shared
GPU_MAX_STACK = 256  # beyond this a stack of small members is no longer launch-bound


def member_bytes(model: Any, batch_size: int, n_ctx: int = 16, d_vocab: int = 64) -> int:
    """Rough float32 bytes one member of a stack needs while training.

    Weights, gradients and AdamW's two moments (16 bytes per parameter), and the
    activations autograd keeps per token and layer (about ``12 d_model + 2 d_mlp +
    3 n_heads n_ctx`` floats, attention scores included) for the batch, its SIIT
    counterfactual source and the patched pass (x3), plus the logits. An estimate for
    choosing a stack size, not a bound: the printed reason says what it assumed."""
    n_layers, d, heads = model.n_layers, model.d_model, model.n_heads
    d_head, mlp = model.d_head or d // heads, model.d_mlp
    params = n_layers * (4 * d * heads * d_head + 2 * d * mlp + 4 * d) + 2 * d * d_vocab
    per_token = n_layers * (12 * d + 2 * mlp + 3 * heads * n_ctx) + 2 * d_vocab
    return 4 * (4 * (params + n_ctx * d) + 3 * batch_size * n_ctx * per_token)


def max_stack_for(free_bytes: int, per_member: int, *, headroom: float = 0.8) -> int:
    """Members that fit in ``headroom`` of ``free_bytes`` (at least 1, at most
    ``GPU_MAX_STACK``)."""
    return max(1, min(GPU_MAX_STACK, int(free_bytes * headroom) // max(1, per_member)))


def default_max_stack(member: MemberSpec | None = None) -> int:
    """Members per stacked model when the zoo does not say (``max_stack``): on a GPU as
    many as its free memory holds (:func:`member_bytes`), up to ``GPU_MAX_STACK``, with
    the reason printed; ``CPU_MAX_STACK`` on a CPU."""
    import torch

    if not torch.cuda.is_available():
        return CPU_MAX_STACK
    free, _ = torch.cuda.mem_get_info()
    if member is None:
        return GPU_MAX_STACK
    per = member_bytes(member.model, member.train.batch_size)
    n = max_stack_for(free, per)
    print(
        f"stacks of at most {n} members: {free / 2**30:.1f} GiB free on "
        f"{torch.cuda.get_device_name()}, about {per / 2**20:.0f} MiB per member "
        f"(d_model {member.model.d_model}, batch {member.train.batch_size}); "
        "set max_stack: in the zoo YAML to choose"
    )
    return n


def stack_groups(
    members: Sequence[MemberSpec], store: ZooStore, max_stack: int | None = None
) -> list[list[MemberSpec]]:
    """Group members that can train as one stacked model: same architecture and
    training hyper-parameters (seeds, tasks and correspondences may differ), at most
    ``max_stack`` per group.

    A member with a checkpoint of its own (interrupted alone, or finished by a stacked
    run whose other members were not yet moved into place) stays alone: it resumes. So
    does a member with ``pretrain_steps``: its two phases train on different inputs from
    weights of its own, which a fused stack (one shared schedule) does not do.
    """
    groups: dict[str, list[MemberSpec]] = {}
    alone = []
    for m in members:
        if m.train.pretrain_steps or (store.work_dir(m.id) / "last.ckpt").exists():
            alone.append([m])
            continue
        key = json.dumps(
            [m.model.replace(seed=0).to_dict(), m.train.replace(seed=0).to_dict()], sort_keys=True
        )
        groups.setdefault(key, []).append(m)
    chunks = []
    for g in groups.values():
        cap = max_stack or default_max_stack(g[0])
        chunks += [g[i : i + cap] for i in range(0, len(g), cap)]
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
        result, info = retry_member(member, store, result, run.retry, run.trainer_kwargs)
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


def _store(member, store: ZooStore, result, info, retry: RetrySpec, n_stacked: int) -> dict:
    metrics = {**result.metrics, "converged": retry.converged(result.metrics)}
    spec = member.to_dict()
    if info is not None:
        spec["retry"] = info
    store.finish(spec, metrics, result.model)
    extra = {"stacked": n_stacked} if n_stacked > 1 else {}
    store.log_event("finished", member.id, metrics=metrics, **extra)
    return metrics
