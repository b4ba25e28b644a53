"""``interpeq demo``: the main job end to end, small enough for a CPU in a few minutes.

1. train the reference members of a small zoo of two interpretations
   (``configs/zoo/demo.yaml``: seed 0 of each task, stacked);
2. train the other members one by one with :class:`ActivationCapture` and
   :class:`EquivalenceTracker` on, following their congruity to each reference group
   (the *equivalence curve*, logged to W&B: offline without an account);
3. compare every pair of members (``interpeq compare``) and write ``matrix.png``,
   ``matrix.csv`` and ``results.json``;
4. print where everything is. Output goes to ``checkpoints/demo/``; rerunning resumes
   (finished members are not retrained).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from interpeq.resources import config_path

DEFAULT_ZOO = config_path("zoo", "demo.yaml")
DEFAULT_TRACKING = config_path("callbacks", "demo.yaml")


def load_tracking(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """``{"capture": {...}, "tracker": {...}}`` keyword arguments from a YAML file."""
    if path is None:
        return {"capture": {}, "tracker": {}}
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"tracking config {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(data) - {"capture", "tracker"})
    if unknown:
        raise ValueError(f"{path}: unknown sections {unknown}; valid: ['capture', 'tracker']")
    return {"capture": dict(data.get("capture") or {}), "tracker": dict(data.get("tracker") or {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="interpeq demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", default=str(DEFAULT_ZOO), help="zoo YAML (default configs/zoo/demo.yaml)"
    )
    parser.add_argument(
        "--tracking",
        default=str(DEFAULT_TRACKING),
        help="capture/tracker YAML (configs/callbacks/demo.yaml)",
    )
    parser.add_argument("--root", default="checkpoints", help="output root (default checkpoints)")
    parser.add_argument(
        "--logger",
        default="wandb",
        choices=("wandb", "csv", "none"),
        help="wandb (offline without an account), csv or none",
    )
    parser.add_argument("--max-steps", type=int, help="override the zoo's train.max_steps")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    try:
        return run_demo(args)
    except ValueError as err:
        print(f"interpeq demo: error: {err}", file=sys.stderr)
        return 2


def run_demo(args: argparse.Namespace) -> int:
    import torch

    from interpeq.callbacks import ActivationCapture, EquivalenceTracker
    from interpeq.compare import compare_zoo
    from interpeq.report import make_logger, member_tags
    from interpeq.report.wandb import SafeWandbLogger, offline_runs
    from interpeq.zoo import Zoo, ZooSpec, run_zoo

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    t_start = time.perf_counter()
    spec = ZooSpec.from_yaml(args.config)
    if args.max_steps:
        spec = dataclasses.replace(spec, train={**spec.train, "max_steps": args.max_steps})
    tracking = load_tracking(args.tracking)
    root = Path(args.root)
    zoo_dir = root / spec.name
    progress = not args.no_progress
    if len(spec.seeds) < 2:
        raise ValueError(
            "the demo zoo needs at least two seeds (the first one trains the references)"
        )

    print(f"[1/3] reference members (seed {spec.seeds[0]} of {', '.join(spec.tasks)}), stacked")
    ref_zoo = run_zoo(dataclasses.replace(spec, seeds=spec.seeds[:1]), root, progress=progress)
    references = {
        task: [m for m in ref_zoo.select(task=task) if m.seed == spec.seeds[0]]
        for task in spec.tasks
    }

    print(
        f"[2/3] the other members, each with the equivalence tracker against {sorted(references)}"
    )
    loggers: list[Any] = []

    def logger_factory(member):
        for lg in loggers:  # one W&B run per member: end the previous one first
            lg.finish()
        loggers.clear()
        lg = make_logger(
            args.logger,
            run_name=member.id,
            group=spec.name,
            job_type="fit",
            config={"zoo": spec.name, **member.to_dict(), "tracking": tracking},
            tags=member_tags(member.task, member.setting, spec.name),
            save_dir=zoo_dir,
        )
        if lg:
            loggers.append(lg)
        return lg

    def callbacks_factory(member):
        save = zoo_dir / "tracking" / member.id
        capture = ActivationCapture(
            save_dir=save, run_id=member.id, member_ids=[member.id], **tracking["capture"]
        )
        return [
            capture,
            EquivalenceTracker(references, capture=capture, save_dir=save, **tracking["tracker"]),
        ]

    zoo = run_zoo(
        spec,
        root,
        progress=progress,
        logger_factory=logger_factory,
        callbacks_factory=callbacks_factory,
    )
    for lg in loggers:
        lg.finish()

    print(f"[3/3] pairwise congruity over the {len(zoo)} members")
    clog = make_logger(
        args.logger,
        run_name=f"{spec.name}-compare",
        group=spec.name,
        job_type="compare",
        config={"zoo": spec.name, "tracking": tracking},
        tags=[f"zoo:{spec.name}", "compare"],
        save_dir=zoo_dir,
    )
    result = compare_zoo(Zoo.load(zoo_dir), logger=clog, progress=progress)
    if clog:
        clog.finish()
    print(result.summary_text())

    curves = sorted((zoo_dir / "tracking").glob("*/equivalence_curve.png"))
    print(f"\ndemo finished in {time.perf_counter() - t_start:.0f} s. Look at:")
    print(f"  congruity matrix    {result.files['matrix.png']}")
    for c in curves:
        print(f"  equivalence curve   {c}")
    if isinstance(clog, SafeWandbLogger) or args.logger == "wandb":
        runs = offline_runs(zoo_dir)
        if runs:
            print(f"  W&B offline runs    {zoo_dir / 'wandb'} ({len(runs)} runs)")
            print(f"  upload them with:   wandb sync {zoo_dir / 'wandb'}/offline-run-*")
    elif args.logger == "csv":
        print(f"  CSV logs            {zoo_dir / spec.name}/<member>/metrics.csv")
    return 0
