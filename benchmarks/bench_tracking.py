"""Overhead of equivalence tracking: training with ActivationCapture + EquivalenceTracker
at the default interval vs the same training without, side by side in one run.

    .venv/bin/python benchmarks/bench_tracking.py [--steps 600] [--d-model 64]

Goal: <= 5% more wall time. References: two members per task (add_next, all_equal),
trained once (stacked) before timing; the reference precomputation at setup is
reported separately (it is paid once per run, not per capture).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from interpeq.callbacks import ActivationCapture, EquivalenceTracker
from interpeq.models import HookedTransformerConfig
from interpeq.training import TrainConfig, default_correspondence, fit_member, resolve_task
from interpeq.training.stacked import fit_stacked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument(
        "--every", type=int, default=None, help="capture interval (default: the callback's)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    for name in ("lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(1)
    d = args.d_model
    cfg = HookedTransformerConfig(n_layers=2, d_model=d, n_heads=4, d_head=d // 4, d_mlp=4 * d)
    train = TrainConfig(
        max_steps=args.steps, val_every=args.steps, val_size=256, test_size=256,
        acc_threshold=1.1, iia_threshold=1.1, strict_threshold=1.1,  # never stop early
    )  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="bench_tracking_"))
    corr = {t: default_correspondence(resolve_task(t).task, cfg) for t in ("add_next", "all_equal")}
    members = [
        (t, corr[t], train.replace(seed=s, max_steps=200), cfg.replace(seed=s))
        for t in corr
        for s in (1, 2)
    ]
    refs_fit = fit_stacked(members, cfg, ckpt_dir=tmp / "refs")
    refs = {
        t: [(r.model, corr[t]) for (mt, *_), r in zip(members, refs_fit, strict=True) if mt == t]
        for t in corr
    }

    def run(tracked: bool, k: int) -> tuple[float, float, float]:
        cbs, tracker = [], None
        if tracked:
            cap = ActivationCapture() if args.every is None else ActivationCapture(args.every)
            tracker = EquivalenceTracker(refs, capture=cap)
            cbs = [cap, tracker]
        t0 = time.perf_counter()
        fit_member(task="add_next", model=cfg, correspondence=corr["add_next"], train=train,
                   ckpt_dir=tmp / f"run{k}-{tracked}", callbacks=cbs)  # fmt: skip
        total = time.perf_counter() - t0
        per_capture = (cbs[0].seconds + tracker.seconds) if tracked else 0.0
        return total, per_capture, len(cbs[0].records) if tracked else 0

    rows = []
    for k in range(args.repeats):  # interleaved, so load drifts hit both arms
        rows.append((run(False, k), run(True, k)))
    base = min(r[0][0] for r in rows)
    tracked = min(r[1][0] for r in rows)
    capture_s = min(r[1][1] for r in rows)
    n_caps = rows[0][1][2]
    every = ActivationCapture().every_n_steps if args.every is None else args.every
    print(
        f"d_model {d}, {args.steps} steps, capture every {every} steps ({n_caps} captures incl. start/end)"
    )
    print(f"  without tracking  {base:7.1f} s")
    print(
        f"  with tracking     {tracked:7.1f} s  (capture + congruity: {capture_s:.1f} s in callbacks)"
    )
    print(
        f"  overhead          {100 * (tracked / base - 1):+.1f}%  (callback time alone: {100 * capture_s / base:.1f}% of training)"
    )


if __name__ == "__main__":
    main()
