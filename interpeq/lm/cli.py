"""``interpeq reproduce ioi``: the IOI study in one command (:mod:`interpeq.lm.study`)."""

from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="interpeq reproduce ioi",
        description="IOI circuits of pretrained LMs (GPT-2, Pythia) and their pairwise "
        "interpretive equivalence -> <root>/ioi/report/ (docs/lm.md).",
    )
    p.add_argument("--config", help="an IOI YAML (default configs/experiment/ioi.yaml)")
    p.add_argument(
        "--models",
        help="comma-separated hub names or local folders (family=path to set the family), "
        "e.g. gpt2,gpt2-medium,pythia-160m,pythia-410m",
    )
    p.add_argument("--root", default="checkpoints", help="report root (default: checkpoints)")
    p.add_argument("--logger", default="wandb", choices=["wandb", "csv", "none"])
    p.add_argument("--n-prompts", type=int, help="override n_prompts")
    p.add_argument("--m", type=int, help="override m (co-implementations per model)")
    p.add_argument("--seed", type=int, help="override seed")
    p.add_argument(
        "--impls",
        choices=["auto", "intervention", "training"],
        help="override impls, the test's null: auto (calibrated, needs >= 4 models per "
        "family), intervention (raw draws, assumed as wide as retraining), training",
    )
    p.add_argument("--batch-size", type=int, help="override batch_size")
    p.add_argument("--device", help="override device (auto, cpu, cuda, cuda:1, ...)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        from interpeq.lm.config import IOIConfig

        cfg = IOIConfig.from_yaml(
            args.config,
            models=args.models,
            n_prompts=args.n_prompts,
            m=args.m,
            seed=args.seed,
            impls=args.impls,
            batch_size=args.batch_size,
            device=args.device,
        )
        from interpeq.lm.study import run_ioi

        summary = run_ioi(cfg, args.root, logger=args.logger, progress=not args.no_progress)
    except ImportError as err:
        print(
            f"interpeq reproduce ioi: error: {err}; install the lm extra: pip install "
            "'interpeq[lm]'",
            file=sys.stderr,
        )
        return 2
    except ValueError as err:
        text = " ".join(str(err).split())
        print(f"interpeq reproduce ioi: error: {text}", file=sys.stderr)
        return 2
    _print_summary(summary)
    print(f"report: {args.root}/ioi/report/ (report.md, matrix.png, circuits.json, ...)")
    return 0


def _print_summary(summary: dict) -> None:
    """Decisions first (counts, the note on undecidable pairs), then the means."""

    def num(v: float, fmt: str = ".3f") -> str:
        return "n/a" if v != v else format(v, fmt)

    rows = summary["decisions"]
    outcomes = ("rejected", "equivalent", "undecidable")
    counts = {d: sum(r["decision"] == d for r in rows) for d in outcomes}
    print(
        f"  decisions (null {summary['impls']}, alpha {summary['alpha']}): "
        + ", ".join(f"{n} {d}" for d, n in counts.items())
        + f" of {len(rows)} pairs"
    )
    if summary["note"]:
        print(f"  note: {summary['note']}")
    for key, g in summary["headline"].items():
        paper = "" if g.get("paper") is None else f"   (paper {g['paper']:.2f})"
        print(
            f"  {key:16s} rejected {g['n_rejected']} / equivalent {g['n_equivalent']} / "
            f"undecidable {g['n_undecidable']} of {g['n_pairs']} pairs; mean congruity "
            f"{num(g['mean_congruity'])} [{num(g['ci_low'])}, {num(g['ci_high'])}]{paper}"
        )
