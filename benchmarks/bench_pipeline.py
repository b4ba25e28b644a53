"""The experiment pipeline's costs, side by side in one run, on the same members and steps:

1. stacked, no logger, no tracking (the baseline);
2. stacked, with the equivalence tracker and one W&B run per member (offline), each
   capture analysed beside training (``tracking.background: true``, the default);
3. with ``--inline``: the same as 2 with the analysis in the training thread
   (``background: false``), so the two ways are measured side by side;
4. one member at a time (``stacked: false``), no logger, no tracking.

Prints the overhead of tracking + W&B (2 and 3 vs 1; goal <= 10% on this CPU), the
speed-up of stacking (4 vs 1), and how far each member's held-out accuracy / IIA / strict accuracy
lies between 1 and 4 (goal <= 0.02: a member trained in a stack is the model it would be
alone).

    .venv/bin/python benchmarks/bench_pipeline.py [--members 8] [--steps 300] [--d-model 64] [--inline]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import torch

from interpeq.experiment import ExperimentSpec, run_experiment


def zoo_text(name: str, args: argparse.Namespace, stacked: bool, extra: str = "") -> str:
    d = args.d_model
    seeds = list(range(1, args.members // 2 + 1))
    return (
        f"name: {name}\ntasks: [interleave_reverse, add_index]\nseeds: {seeds}\nsettings: [D]\n"
        f"model: {{n_layers: 2, d_model: {d}, n_heads: 4, d_head: {d // 4}, d_mlp: {4 * d}}}\n"
        f"train: {{max_steps: {args.steps}, val_every: {args.steps}, val_size: 256, "
        "test_size: 1024, acc_threshold: 1.1, iia_threshold: 1.1, strict_threshold: 1.1}\n"
        f"stacked: {str(stacked).lower()}\n{extra}"
    )


def run(root: Path, text: str, name: str) -> tuple[float, dict]:
    path = root / f"{name}.yaml"
    path.write_text(text)
    exp = ExperimentSpec.from_yaml(path)
    start = time.perf_counter()
    zoo = run_experiment(exp, root, progress=False, echo=lambda s: None).zoo
    return time.perf_counter() - start, {m.id: m.metrics for m in zoo}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--every", type=int, default=150, help="capture interval")
    parser.add_argument("--no-alone", action="store_true", help="skip the one-at-a-time run")
    parser.add_argument(
        "--inline", action="store_true", help="also track with the analysis in the training thread"
    )
    args = parser.parse_args()
    for name in ("lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(1)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    root = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    # references (seed 0 of each task), trained once before any timing
    refs = zoo_text("refs", args, True).replace(
        f"seeds: {list(range(1, args.members // 2 + 1))}", "seeds: [0]"
    )
    run(root, refs, "refs")

    def track(background: bool) -> str:
        return (
            f"logger: wandb\ntracking: {{references: ['{root / 'refs'}'], every_n_steps: "
            f"{args.every}, include_unconverged: true, background: {str(background).lower()}}}\n"
        )

    t_plain, plain = run(root, zoo_text("plain", args, True), "plain")
    t_track, _ = run(root, zoo_text("tracked", args, True, track(True)), "tracked")
    print(
        f"{args.members} members, {args.steps} steps, d_model {args.d_model}, {torch.get_num_threads()} thread(s)"
    )
    print(f"stacked                          {t_plain:7.1f} s")
    print(
        f"stacked + tracking + W&B runs    {t_track:7.1f} s   overhead {t_track / t_plain - 1:+.1%} (goal <= +10%)"
        "  [analysis beside training]"
    )
    if args.inline:
        t_inline, _ = run(root, zoo_text("inline", args, True, track(False)), "inline")
        print(
            f"  the same, analysis inline      {t_inline:7.1f} s   overhead {t_inline / t_plain - 1:+.1%}"
        )
    if args.no_alone:
        return
    t_alone, alone = run(root, zoo_text("alone", args, False), "alone")
    gaps = {
        k: max(abs(plain[m][k] - alone[m][k]) for m in plain) for k in ("acc", "iia", "strict_acc")
    }
    print(
        f"one member at a time             {t_alone:7.1f} s   stacking speed-up {t_alone / t_plain:.2f}x"
    )
    print(
        "largest held-out gap, stacked vs alone: "
        + ", ".join(f"{k} {v:.4f}" for k, v in gaps.items())
        + " (goal <= 0.02)"
    )


if __name__ == "__main__":
    main()
