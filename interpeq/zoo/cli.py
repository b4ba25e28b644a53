"""``interpeq zoo --config <yaml>``: run the experiment a zoo YAML describes.

Trains every member (stacked where they share an architecture, on the best device,
resumably; see :mod:`interpeq.zoo.runner`), with the YAML's ``trainer:``, ``logger:``,
``tracking:``, ``retry:`` and ``compare:`` sections (:mod:`interpeq.experiment`).
Options override the file: ``--logger``, ``--compare`` / ``--no-compare``,
``--no-tracking`` and ``--set section.key=value`` (YAML values, repeatable).
``--set trainer.devices=N --set trainer.strategy=ddp`` trains every group on N
processes (rank 0 writes the zoo and compares; :mod:`interpeq.zoo.ddp`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import yaml

from interpeq._ray import LAUNCHERS
from interpeq.interrupts import debug_enabled, on_stop
from interpeq.zoo import ddp
from interpeq.zoo.retry import unconverged_warning
from interpeq.zoo.stale import move_stale
from interpeq.zoo.store import DEFAULT_ROOT, ZooStore


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interpeq zoo",
        description="Train every member of a zoo YAML into <root>/<zoo>/ (resumable: rerun "
        "after a kill), with the experiment sections of the YAML (trainer, logger, tracking, "
        "retry, compare).",
    )
    parser.add_argument("--config", required=True, help="zoo YAML, e.g. configs/zoo/smoke.yaml")
    parser.add_argument(
        "--tasks",
        action="append",
        default=[],
        metavar="FILE",
        help="a task file defining tasks the YAML names (Python with @register-ed builders; "
        "repeatable; a YAML never loads one itself; docs/your-task.md)",
    )
    parser.add_argument(
        "--root", default=str(DEFAULT_ROOT), help="output folder (default: checkpoints)"
    )
    parser.add_argument(
        "--list", action="store_true", help="print the members and exit without training"
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="retrain the damaged members (files that fail their checks; see --list), "
        "moving their folders aside to <zoo>/.damaged/; the other members are not touched",
    )
    parser.add_argument(
        "--retrain-stale",
        action="store_true",
        help="retrain the finished members trained with another config than the YAML now "
        "gives (e.g. a changed train.max_steps), moving their folders aside to <zoo>/.stale/",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved experiment and exit"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument(
        "--logger",
        choices=["none", "wandb", "csv"],
        help="overrides logger.kind: one run per member, stacked or not (W&B offline without "
        "an account; group = zoo)",
    )
    compare = parser.add_mutually_exclusive_group()
    compare.add_argument("--compare", action="store_true", help="compare after training")
    compare.add_argument("--no-compare", action="store_true", help="do not compare")
    parser.add_argument("--no-tracking", action="store_true", help="ignore the tracking section")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of the YAML, e.g. --set trainer.precision=bf16-mixed "
        "--set train.max_steps=500 (values are YAML)",
    )
    parser.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        default="local",
        help="local (default): one member or stacked group after another in this process; "
        "ray: as Ray tasks, see docs/scaling.md (pip install 'interpeq[ray]')",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="ray: members training at once (default: CPU count; a local Ray gets this many CPUs)",
    )
    parser.add_argument(
        "--gpus-per-member",
        type=float,
        default=None,
        help="ray: GPUs each member task asks for (fractions pack several members per GPU; "
        "default: 1 where CUDA is available, else 0)",
    )
    parser.add_argument(
        "--address", help="ray: a Ray cluster to run on ('auto', HOST:6379 or ray://HOST:10001)"
    )
    return parser


def overrides(args: argparse.Namespace) -> dict:
    """The CLI's overrides of the YAML, as dotted keys."""
    out = {}
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. trainer.devices=2")
        out[key.strip()] = yaml.safe_load(value)
    if args.logger:
        out["logger.kind"] = args.logger
    if args.compare:
        out["compare.enabled"] = True
    if args.no_compare:
        out["compare"] = False
    if args.no_tracking:
        out["tracking"] = None
    return out


def _launch(args: argparse.Namespace) -> dict:
    return dict(
        launcher=args.launcher,
        workers=args.workers,
        gpus_per_member=args.gpus_per_member,
        address=args.address,
    )


def load_tasks(args: argparse.Namespace) -> None:
    """Load the ``--tasks`` files, then check the YAML's task names and the zoo's
    recorded task files (one line each) before anything else reads the YAML. The YAML
    is read with ``safe_load`` only: it names tasks, and a name alone never makes
    interpeq import anything."""
    from interpeq.tasks.user import load_task_files, missing_task_error
    from interpeq.training import resolve_task

    if args.tasks and args.launcher == "ray":
        raise ValueError(
            "--tasks with --launcher ray: Ray workers do not load task files; train a zoo "
            "of your own tasks with the local launcher (the default)"
        )
    load_task_files(args.tasks)
    path = Path(args.config)
    try:
        data = yaml.safe_load(path.read_text()) if path.is_file() else None
    except yaml.YAMLError:
        data = None  # ExperimentSpec reports it
    data = {**(data if isinstance(data, dict) else {}), **overrides(args)}
    store = ZooStore(args.root, str(data.get("name") or path.stem))
    command = f"interpeq zoo --config {args.config}"
    for name in data.get("tasks") or []:
        try:
            resolve_task(name)
        except ValueError:
            raise missing_task_error(str(name), store.task_files(), command) from None
    store.check_task_files(command)


def check_tasks_fit(exp) -> None:
    """A task-file task whose interpretation is deeper than the zoo's model allows (or
    needs MLPs it lacks) is one line naming the variable and the layers it needs."""
    from interpeq.tasks.user import check_reachable, file_of
    from interpeq.training import resolve_task

    for name in exp.zoo.tasks:
        task = resolve_task(name).task
        if file_of(task.name) is not None:
            check_reachable(task, exp.zoo.model_for(name))


def _other_rank(exp, args: argparse.Namespace) -> int:
    """A DDP rank > 0 (started by Lightning re-running this command): trains its shard
    of the same groups as rank 0, silently, and stops before the comparison, which
    rank 0 runs alone (:mod:`interpeq.zoo.ddp`)."""
    import dataclasses

    from interpeq.experiment import run_experiment

    exp = dataclasses.replace(exp, compare=dataclasses.replace(exp.compare, enabled=False))
    try:
        run_experiment(exp, args.root, progress=False, echo=lambda _: None, **_launch(args))
    finally:
        ddp.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    from interpeq.experiment import ExperimentSpec, run_experiment

    args = build_parser().parse_args(argv)
    try:
        load_tasks(args)
        exp = ExperimentSpec.from_yaml(args.config, overrides(args))
        check_tasks_fit(exp)
        if args.print_config:
            print(yaml.safe_dump(exp.to_dict(), sort_keys=False).rstrip())
            return 0
        if args.list:
            store = ZooStore(args.root, exp.zoo.name)
            for m in exp.zoo.members():
                state, why = store.member_state(m.id)  # done / todo / damaged (why)
                print(
                    f"{state:7s} {m.id:40s} {m.model.n_layers}L d{m.model.d_model} h{m.model.n_heads} mlp{m.model.d_mlp}"
                    + (f"  ({why}; --repair retrains it)" if why else "")
                )
            return 0
        ids, store = [m.id for m in exp.zoo.members()], ZooStore(args.root, exp.zoo.name)
        if ddp.rank() > 0:  # a DDP rank Lightning started: train, write nothing, stop
            return _other_rank(exp, args)
        for member_id, moved in store.repair(ids) if args.repair else store.check_intact(ids):
            print(f"repair: {member_id} was damaged; moved aside to {moved}; retraining it")
        if args.retrain_stale:
            for member_id, diffs, moved in move_stale(exp.zoo.members(), store):
                print(f"retrain-stale: {member_id} ({'; '.join(diffs[:2])}) moved aside to "
                      f"{moved}; retraining it")  # fmt: skip
        on_stop(
            lambda: store.progress(ids),
            "interpeq zoo " + shlex.join(sys.argv[2:] if argv is None else argv),
        )
        ddp.check_ddp(exp.trainer, args.launcher)
        try:
            result = run_experiment(exp, args.root, progress=not args.no_progress, **_launch(args))
        finally:
            ddp.close()
    except ValueError as err:
        if debug_enabled():  # --debug: the traceback, from the interpeq boundary
            raise
        print(f"interpeq zoo: error: {err}", file=sys.stderr)
        return 2
    if result.unconverged:
        records = {i: _retry_record(Path(args.root) / exp.zoo.name / i) for i in result.unconverged}
        print(unconverged_warning(result.unconverged, exp.retry, records), file=sys.stderr)
    return 0


def _retry_record(member_dir: Path) -> dict | None:
    """What the retries of a member tried (its ``member.json`` ``retry`` entry), if any."""
    try:
        return json.loads((member_dir / "member.json").read_text()).get("retry")
    except (OSError, ValueError):
        return None
