"""``interpeq demo``: the main job end to end, small enough for a CPU in a few minutes.

The demo is a configuration of the experiment pipeline (:mod:`interpeq.experiment`),
``configs/zoo/demo.yaml``: a small zoo of two interpretations whose seeds 0-3 of each
task train first (stacked) and serve as the reference group (four: what the calibrated
null needs to decide); the other members train
stacked with the equivalence tracker on (the *equivalence curve* of every member, each
in its own W&B run: offline without an account); then every pair is compared
(``matrix.png``, ``matrix.csv``, ``results.json``, and a compare run). Output goes to
``checkpoints/demo/``; rerunning resumes (finished members are not retrained).

A zoo YAML without ``tracking:`` / ``compare:`` sections gets the demo's defaults:
tracking against the first seeds (up to four) of every task and a comparison, both keeping members
that missed their thresholds (flagged in the table), so that any small zoo shows the
whole pipeline. ``--tracking`` takes the older capture/tracker YAML.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from interpeq.equivalence.nulls import MIN_MEMBERS
from interpeq.resources import config_path

DEFAULT_ZOO = config_path("zoo", "demo.yaml")
DEFAULT_TRACKING = config_path("tracking", "demo.yaml")


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


def demo_overrides(args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    """The demo's command-line options and defaults as overrides of the zoo YAML."""
    out: dict[str, Any] = {"logger.kind": args.logger}
    if args.max_steps:  # a shortened run: its members may not learn; keep them, flagged
        out["train.max_steps"] = args.max_steps
        out["tracking.include_unconverged"] = True
        out["compare.include_unconverged"] = True
    if not data.get("tracking"):
        seeds = data.get("seeds") if isinstance(data.get("seeds"), list) else [0]
        refs = seeds[: max(1, min(MIN_MEMBERS, len(seeds) - 1))]
        out["tracking"] = {
            "references": [f"self:seed={s}" for s in refs],
            "include_unconverged": True,
        }
    if not data.get("compare"):
        out["compare"] = {"enabled": True, "include_unconverged": True}
    if args.tracking:
        old = load_tracking(args.tracking)
        keys = {"every_n_steps", "n_probes"} & set(old["capture"])
        out.update({f"tracking.{k}": old["capture"][k] for k in keys})
        keys = {"m", "alpha", "seed", "one_sided"} & set(old["tracker"])
        out.update({f"tracking.{k}": old["tracker"][k] for k in keys})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="interpeq demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", default=str(DEFAULT_ZOO), help="zoo YAML (default configs/zoo/demo.yaml)"
    )
    parser.add_argument("--tracking", help="capture/tracker YAML (overrides the tracking section)")
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

    from interpeq.experiment import ExperimentSpec, run_experiment
    from interpeq.report import offline_runs

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    t_start = time.perf_counter()
    path = Path(args.config)
    data = yaml.safe_load(path.read_text()) if path.is_file() else {}
    exp = ExperimentSpec.from_yaml(path, demo_overrides(args, data or {}))
    if len(exp.zoo.seeds) < 2:
        raise ValueError("the demo zoo needs at least two seeds (the first trains the references)")
    result = run_experiment(exp, args.root, progress=not args.no_progress)
    zoo_dir = Path(args.root) / exp.zoo.name
    curves = sorted((zoo_dir / "tracking").glob("*/equivalence_curve.png"))
    print(f"\ndemo finished in {time.perf_counter() - t_start:.0f} s. Look at:")
    print(f"  congruity matrix    {result.compare.files['matrix.png']}")
    for c in curves:
        print(f"  equivalence curve   {c}")
    runs = offline_runs(zoo_dir) if args.logger == "wandb" else []
    if runs:
        print(f"  W&B offline runs    {zoo_dir / 'wandb'} ({len(runs)} runs)")
        print(f"  upload them with:   wandb sync {zoo_dir / 'wandb'}/offline-run-*")
    elif args.logger == "csv":
        print(f"  CSV logs            {zoo_dir / exp.zoo.name}/<member>/metrics.csv")
    return 0
