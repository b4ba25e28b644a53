"""``interpeq zoo --config <yaml>``: train a zoo (see :mod:`interpeq.zoo.runner`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from interpeq.zoo.runner import run_zoo
from interpeq.zoo.spec import MemberSpec, ZooSpec
from interpeq.zoo.store import DEFAULT_ROOT, ZooStore


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
