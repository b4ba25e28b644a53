"""Train every member of a zoo, resumably.

Rerunning after a kill skips finished members, resumes an interrupted member from its
last Lightning checkpoint, and never retrains a finished one: the zoo folder (see
:mod:`interpeq.zoo.store`) is the single source of truth, so any launcher that runs
members against the same folder resumes the same way. A finished member whose stored
config differs from what the YAML now asks for is an error, not silently kept.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from interpeq.zoo.spec import MemberSpec, ZooSpec
from interpeq.zoo.store import Zoo, ZooStore, read_json

DEFAULT_ROOT = Path("checkpoints")


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
    from interpeq.zoo.launchers import check_launcher, run_groups_ray

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="interpeq zoo",
        description="Train every member of a zoo YAML into <root>/<zoo>/ (resumable: rerun after a kill).",
    )
    parser.add_argument("--config", required=True, help="zoo YAML, e.g. configs/zoo/smoke.yaml")
    parser.add_argument(
        "--root", default=str(DEFAULT_ROOT), help="output folder (default: checkpoints)"
    )
    parser.add_argument(
        "--list", action="store_true", help="print the members and exit without training"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--logger",
        choices=["none", "wandb", "csv"],
        default="none",
        help="one run per member (W&B offline without an account; group = zoo). "
        "'none' (default) lets same-architecture members train stacked",
    )
    parser.add_argument(
        "--launcher",
        choices=["local", "ray"],
        default="local",
        help="local (default): one member after another in this process; ray: members (or "
        "stacked groups) as Ray tasks, see docs/scaling.md (pip install 'interpeq[ray]')",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="ray: members training at once (default: CPU count; a local Ray gets this many CPUs)",
    )
    parser.add_argument(
        "--gpus-per-member",
        type=float,
        default=0.0,
        help="ray: GPUs each member task asks for (fractions pack several members per GPU)",
    )
    parser.add_argument(
        "--address", help="ray: a Ray cluster to run on ('auto', HOST:6379 or ray://HOST:10001)"
    )
    args = parser.parse_args(argv)
    try:
        spec = ZooSpec.from_yaml(args.config)
        if args.list:
            store = ZooStore(args.root, spec.name)
            for m in spec.members():
                state = "done" if store.is_finished(m.id) else "todo"
                print(
                    f"{state:5s} {m.id:40s} {m.model.n_layers}L d{m.model.d_model} h{m.model.n_heads} mlp{m.model.d_mlp}"
                )
            return 0
        logger_factory = None
        if args.logger != "none":
            from interpeq.report import make_logger, member_tags

            def logger_factory(member: MemberSpec):
                return make_logger(
                    args.logger,
                    run_name=member.id,
                    group=spec.name,
                    job_type="fit",
                    config=member.to_dict(),
                    tags=member_tags(member.task, member.setting, spec.name),
                    save_dir=Path(args.root) / spec.name,
                )

        zoo = run_zoo(
            spec,
            args.root,
            progress=not args.no_progress,
            logger_factory=logger_factory,
            launcher=args.launcher,
            workers=args.workers,
            gpus_per_member=args.gpus_per_member,
            address=args.address,
        )
    except ValueError as err:
        print(f"interpeq zoo: error: {err}", file=sys.stderr)
        return 2
    print(f"zoo {zoo.name}: {len(zoo)} members in {zoo.path}")
    for member in zoo:
        metrics = " ".join(
            f"{k}={v:.3f}" for k, v in sorted(member.metrics.items()) if isinstance(v, float)
        )
        print(f"  {member.id:40s} {metrics}")
    return 0
