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

    .venv/bin/python benchmarks/bench_pipeline.py [--members 8] [--steps 300] [--d-model 64] [--inline] [--repeats 2]
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


def timed_rounds(
    root: Path, args: argparse.Namespace, arms: dict[str, tuple[str, str | None]]
) -> tuple[dict[str, list[float]], dict]:
    """Each arm once per round; odd rounds run the arms in reverse (ABBA), so a drift of the
    machine's speed that is linear in time adds as much to each arm and cancels in the ratio
    of their sums. Zoo names differ per run; member seeds do not depend on them, so every
    run trains the same models."""
    times: dict[str, list[float]] = {name: [] for name in arms}
    plain: dict = {}
    for r in range(args.repeats):
        order = list(arms) if r % 2 == 0 else list(reversed(arms))
        for name in order:
            extra, _ = arms[name]
            seconds, metrics = run(root, zoo_text(f"{name}-{r}", args, True, extra), f"{name}-{r}")
            times[name].append(seconds)
            if name == "stacked":
                plain = metrics  # the stacked members, compared with alone below
            print(f"  round {r}: {name:<8} {seconds:7.1f} s", flush=True)
    return times, plain


def report(times: dict[str, list[float]], arms: dict[str, tuple[str, str | None]]) -> None:
    """Per arm: its total time and its overhead over the baseline, as the ratio of sums
    (drift-cancelling under ABBA) and the spread of the per-round ratios."""
    base = times["stacked"]
    print(f"stacked                          {sum(base):7.1f} s  (rounds: {fmt(base)})")
    for name, (_, how) in arms.items():
        if name == "stacked":
            continue
        ratios = [t / b - 1 for t, b in zip(times[name], base, strict=True)]
        print(
            f"{'stacked + tracking + W&B runs' if name == 'tracked' else '  the same, inline':<32} "
            f"{sum(times[name]):7.1f} s  (rounds: {fmt(times[name])})  overhead "
            f"{sum(times[name]) / sum(base) - 1:+.1%} (per round {min(ratios):+.1%} .. "
            f"{max(ratios):+.1%}; goal <= +10%)  [{how}]"
        )


def fmt(seconds: list[float]) -> str:
    return ", ".join(f"{t:.1f}" for t in seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--every", type=int, default=150, help="capture interval")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="rounds of the timed arms (ABBA order); 2 cancels linear drift",
    )
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

    arms = {"stacked": ("", None), "tracked": (track(True), "analysis beside training")}
    if args.inline:
        arms["inline"] = (track(False), "analysis in the training thread")
    times, plain = timed_rounds(root, args, arms)
    print(
        f"{args.members} members, {args.steps} steps, d_model {args.d_model}, "
        f"{torch.get_num_threads()} thread(s), {args.repeats} round(s), arms in ABBA order"
    )
    report(times, arms)
    if args.no_alone:
        return
    t_alone, alone = run(root, zoo_text("alone", args, False), "alone")
    gaps = {
        k: max(abs(plain[m][k] - alone[m][k]) for m in plain) for k in ("acc", "iia", "strict_acc")
    }
    print(
        f"one member at a time             {t_alone:7.1f} s   stacking speed-up {t_alone / (sum(times['stacked']) / len(times['stacked'])):.2f}x"
    )
    print(
        "largest held-out gap, stacked vs alone: "
        + ", ".join(f"{k} {v:.4f}" for k, v in gaps.items())
        + " (goal <= 0.02)"
    )


if __name__ == "__main__":
    main()
