"""``interpeq reproduce <experiment> --scale cpu|paper``: see :mod:`interpeq.reproduce`."""

from __future__ import annotations

import argparse
import sys

from interpeq.reproduce.config import EXPERIMENTS, SCALES, ExperimentConfig, experiment_path


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "ioi":  # pretrained LMs (interpeq.lm, the lm extra)
        from interpeq.lm.cli import main as ioi_main

        return ioi_main(list(argv[1:]))
    parser = argparse.ArgumentParser(
        prog="interpeq reproduce",
        description="Train (or reuse) an experiment's zoo, compare it and write a report folder "
        "(<root>/<zoo>/report/). Rerunning reuses every finished member.",
    )
    parser.add_argument(
        "experiment",
        choices=EXPERIMENTS,
        help="toy: the paper's 6 x 6 algorithm matrix; matched: behaviour-matched pairs; "
        "settings: congruity within each zoo setting (D, A, C, B)",
    )
    parser.add_argument(
        "--scale",
        default="cpu",
        choices=SCALES,
        help="cpu (default: under an hour on 2 CPU cores) or paper (the paper's sizes; a GPU)",
    )
    parser.add_argument(
        "--config",
        help="an experiment YAML instead of configs/experiments/<experiment>_<scale>.yaml",
    )
    parser.add_argument(
        "--root", default="checkpoints", help="zoo root folder (default: checkpoints)"
    )
    parser.add_argument(
        "--logger",
        default="wandb",
        choices=["wandb", "csv", "none"],
        help="wandb (default; offline without an account), csv or none",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args(argv)
    try:
        cfg = ExperimentConfig.from_yaml(
            args.config or experiment_path(args.experiment, args.scale)
        )
        if cfg.experiment != args.experiment:
            raise ValueError(
                f"{cfg.path} is a {cfg.experiment!r} experiment, not {args.experiment!r}"
            )
        if cfg.experiment == "toy":
            from interpeq.reproduce.toy import run_toy as run
        else:
            from interpeq.reproduce.studies import run_study as run
        run(cfg, args.root, logger=args.logger, progress=not args.no_progress)
    except ValueError as err:
        print(f"interpeq reproduce: error: {err}", file=sys.stderr)
        return 2
    report = f"{args.root}/{cfg.zoo.name}/report"
    text = open(f"{report}/report.md").read()
    print(text.split("\n## Chains")[0].split("\n## Stage")[0].strip())
    print(f"\nreport: {report}/ (report.md, summary.json, matrices, members.csv)")
    return 0
