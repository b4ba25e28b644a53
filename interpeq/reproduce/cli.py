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
        help="cpu (default: sized for a 2-core CPU; docs/results.md gives its time) or paper "
        "(the paper's sizes; a GPU)",
    )
    parser.add_argument(
        "--config",
        help="an experiment YAML instead of configs/experiment/<experiment>_<scale>.yaml",
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
    cfg = ExperimentConfig.from_yaml(args.config or experiment_path(args.experiment, args.scale))
    if cfg.experiment != args.experiment:
        raise ValueError(f"{cfg.path} is a {cfg.experiment!r} experiment, not {args.experiment!r}")
    if cfg.experiment == "toy":
        from interpeq.reproduce.toy import run_toy as run
    else:
        from interpeq.reproduce.studies import run_study as run
    # a bad value is one line at the interpeq boundary (interpeq.cli; --debug: traceback)
    summary = run(cfg, args.root, logger=args.logger, progress=not args.no_progress)
    print("\n".join(summary_lines(summary)))
    report = f"{args.root}/{cfg.zoo.name}/report"
    print(f"\nreport: {report}/ (report.md, summary.json, matrices, members.csv)")
    return 0


def summary_lines(summary: dict) -> list[str]:
    """What a run found, from its summary (the data the report is written from): the
    timings, the members that missed their thresholds, and per result the decisions and,
    for the toy, the family means and the two criteria."""
    lines = [
        f"{summary['zoo']}: {summary['members']} members ({summary['trained']} trained, "
        f"{summary['reused']} reused), training {summary['train_seconds']:.0f} s, "
        f"comparison {summary['compare_seconds']:.0f} s, total {summary['total_seconds']:.0f} s"
    ]
    if summary.get("unconverged"):
        lines.append(f"missed their thresholds (left out): {', '.join(summary['unconverged'])}")
    for key, res in summary["results"].items():
        line = f"{key}: {res['n_rejected']} / {res['n_pairs']} pairs rejected"
        fam, checks = res.get("family_means"), res.get("checks")
        if fam is not None and fam.get("within_sorting") is not None:
            line += f"; within sorting {fam['within_sorting']:.2f}"
            line += f", across families {fam.get('across_families') or float('nan'):.2f}"
        if checks:
            line += (f"; diagonal above other families in {sum(v is True for v in checks['diagonal_above_other_family'].values())}"
                     f" / {len(checks['diagonal_above_other_family'])} rows")  # fmt: skip
        lines.append(line)
    tests = summary.get("group_tests") or []
    if tests:
        counts = {d: sum(t["decision"] == d for t in tests) for d in ("rejected", "undecidable")}
        lines.append(
            f"group permutation tests: {counts['rejected']} / {len(tests)} algorithm pairs "
            f"rejected, {counts['undecidable']} undecidable"
        )
    return lines
