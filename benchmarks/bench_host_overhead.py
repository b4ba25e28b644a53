"""Host (Python) overhead of the stacked training step, another revision side by side.

Why: on a GPU a stack of tiny members is bound by what the training thread does per
step, not by the math; any per-member Python (a ``self.log`` per member and key, an
``accuracies`` call per member, a host sync per member) grows with the stack and
caps the speed-up stacking can give. This measures it on the CPU with members so
narrow (``d_model`` 8) that the math is small: the full Lightning step (data,
forward, backward, optimiser, logging hooks), per step and per member-step; the math
alone (forward, backward, optimiser on a drawn batch: ``core``); the host cost per
member-step, ``(step - core) / M``; and
counts per step the ``LightningModule.log`` calls and ``Tensor.item`` calls (each
``.item()`` of a device tensor is a device sync on a GPU; AdamW's reads of its host-side
step counters are left out).

``--before REF`` runs the same measurement on a git worktree of ``REF`` (the code
before the change) in a subprocess, and prints both side by side.

    python benchmarks/bench_host_overhead.py --before 1df4b72
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _common import REPO, run_in_tree, worktree


def _measure(members: int, steps: int, log_every: int) -> dict:
    """Median seconds per training step of a ``members`` stack, and per-step counts."""
    import lightning as L
    import torch
    from lightning.pytorch.loggers.logger import Logger

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import members_of

    from interpeq.models import HookedTransformerConfig
    from interpeq.training.stacked import StackedSIITModule

    class Null(Logger):  # the values still travel Lightning's logging path
        name, version = "null", "0"

        def log_metrics(self, metrics, step=None):
            self.seen = len(metrics)

        def log_hyperparams(self, *args, **kwargs):
            pass

    counts = {"log": 0, "item": 0}
    log, item = L.LightningModule.log, torch.Tensor.item

    def counting_log(self, *a, **k):
        counts["log"] += 1
        return log(self, *a, **k)

    def counting_item(self):  # AdamW reads its host-side step counters: not a device sync
        if "torch/optim" not in sys._getframe(1).f_code.co_filename:
            counts["item"] += 1
        return item(self)

    class Clock(L.Callback):
        def __init__(self):
            self.times, self.c0 = [], None

        def on_train_batch_start(self, trainer, *args):
            self.times.append(time.perf_counter())
            if len(self.times) == 3:  # after two warm-up steps
                self.c0 = dict(counts)

    torch.set_num_threads(1)
    cfg = HookedTransformerConfig(n_layers=2, d_model=8, n_heads=2, d_head=4, d_mlp=16)
    mem = [(t, c, tr.replace(val_every=10**6)) for t, c, tr in members_of(members, cfg, 8)]
    module = StackedSIITModule(mem, cfg)
    clock = Clock()
    trainer = L.Trainer(
        max_steps=steps + 3, logger=Null(), log_every_n_steps=log_every, accelerator="cpu",
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        limit_val_batches=0, callbacks=[clock], num_sanity_val_steps=0,
    )  # fmt: skip
    L.LightningModule.log, torch.Tensor.item = counting_log, counting_item
    try:
        trainer.fit(module)
    finally:
        L.LightningModule.log, torch.Tensor.item = log, item
    module.train()
    batch = module.train_batch(0)
    opt = module.configure_optimizers()["optimizer"]
    core = []
    for _ in range(5):  # the math alone (forward, backward, clip, AdamW) on a drawn batch
        t0 = time.perf_counter()
        module._step(batch)["loss"].sum().backward()
        module.on_before_optimizer_step(opt)
        opt.step()
        opt.zero_grad()
        core.append(time.perf_counter() - t0)
    diffs = sorted(b - a for a, b in zip(clock.times[2:], clock.times[3:], strict=False))
    n = len(clock.times) - 3
    return {
        "members": members,
        "log_every": log_every,
        "step_s": diffs[len(diffs) // 2],
        "core_s": sorted(core)[2],
        "log_calls": (counts["log"] - clock.c0["log"]) / n,
        "items": (counts["item"] - clock.c0["item"]) / n,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", default=None, help="git ref of the code to compare against")
    p.add_argument("--members", type=int, nargs="+", default=[64, 256])
    p.add_argument("--log-every", type=int, nargs="+", default=[50, 1])
    p.add_argument("--steps", type=int, default=12)
    args = p.parse_args(argv)
    trees = [("after", REPO)]
    if args.before:
        trees.insert(0, ("before", worktree(args.before)))
    print(f"{'code':7s} {'M':>4s} {'log_every':>9s} {'ms/step':>8s} {'us/member-step':>15s} "
          f"{'core ms':>8s} {'host us/member':>14s} {'log()/step':>10s} {'item()/step':>11s}")  # fmt: skip
    for members in args.members:
        for log_every in args.log_every:
            for name, tree in trees:
                r = run_in_tree(
                    tree, "bench_host_overhead", f"_measure({members}, {args.steps}, {log_every})"
                )
                print(
                    f"{name:7s} {members:4d} {log_every:9d} {r['step_s'] * 1e3:8.2f} "
                    f"{r['step_s'] / members * 1e6:15.1f} {r['core_s'] * 1e3:8.2f} "
                    f"{(r['step_s'] - r['core_s']) / members * 1e6:14.1f} {r['log_calls']:10.1f} {r['items']:11.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
