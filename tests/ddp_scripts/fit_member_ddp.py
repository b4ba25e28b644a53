"""Train one member with ``fit_member`` on DEVICES CPU processes (gloo DDP when > 1).

Usage: python fit_member_ddp.py OUT_DIR DEVICES [MAX_STEPS [PRECISION [LR [TASK]]]]

Lightning's ``strategy="ddp"`` re-runs this script for rank 1 (same arguments); every
rank trains, only rank 0 writes ``OUT_DIR/result.json`` (held-out metrics, the
threshold-stopping state, the tracker's curve) and ``OUT_DIR/result.pt`` (captured
representations per step, final weights). Loggers: W&B (mode from ``WANDB_MODE``) and
CSV, both under ``OUT_DIR``. The test compares a 1-process and a 2-process run.

Defaults (interleave_reverse, lr 1e-3, float32) reach the thresholds in ~150 steps
with 1- and 2-process captures equal to ~1e-6. A harder setting (divide_by_max, lr
3e-3) drifts apart after ~50 steps in float32 and ~150 in float64: the two runs differ
only in the order of float sums (one batch mean vs two shard means averaged by DDP),
and AdamW turns rounding noise in near-zero gradients into full-size steps.
"""

import json
import sys
from pathlib import Path

import torch


def world_size() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def main() -> None:
    out, devices = Path(sys.argv[1]), int(sys.argv[2])
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 400
    precision = sys.argv[4] if len(sys.argv) > 4 else "32-true"
    lr = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-3
    task = sys.argv[6] if len(sys.argv) > 6 else "interleave_reverse"
    torch.set_num_threads(1)
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from interpeq.callbacks import ActivationCapture, EquivalenceTracker
    from interpeq.models import HookedTransformer, HookedTransformerConfig
    from interpeq.report import make_logger
    from interpeq.training import TrainConfig, default_correspondence, fit_member, resolve_task
    from interpeq.training.fit import load_checkpoint

    cfg = HookedTransformerConfig(n_layers=2, d_model=32, n_heads=2, d_head=8, d_mlp=64, seed=3)
    train = TrainConfig(
        seed=5,
        batch_size=64,
        lr=lr,
        max_steps=steps,
        val_every=50,
        val_size=256,
        test_size=512,
        warmup_steps=10,
        acc_threshold=0.97,
        iia_threshold=0.95,
        strict_threshold=0.95,
    )
    corr = default_correspondence(resolve_task(task).task, cfg)
    refs = {f"ref{s}": (HookedTransformer(cfg.replace(seed=s)).eval(), corr) for s in (11, 12, 13)}
    loggers = [
        make_logger("wandb", run_name="m", group="ddp", config={"devices": devices}, save_dir=out),
        make_logger("csv", run_name="m", group="ddp", save_dir=out),
    ]
    cap = ActivationCapture(50, n_probes=96, probe_seed=1)
    tracker = EquivalenceTracker(
        refs, capture=cap, m=6, alpha=0.2, n_boot=50, plot=False, impls="intervention"
    )  # one model per reference group: the raw draws (the calibrated null needs 4)
    kwargs = {"devices": devices, "strategy": "ddp"} if devices > 1 else {}
    kwargs["precision"] = precision
    result = fit_member(
        task=task,
        model=cfg,
        correspondence=corr,
        train=train,
        ckpt_dir=out / "run",
        logger=loggers,
        callbacks=[cap, tracker],
        trainer_kwargs=kwargs,
    )
    if rank_zero_only.rank == 0:
        loggers[0].finish()
        ckpt = load_checkpoint(out / "run" / "last.ckpt")
        stop = next(v for k, v in ckpt["callbacks"].items() if k.startswith("ThresholdStopping"))
        (out / "result.json").write_text(
            json.dumps(
                {
                    "metrics": result.metrics,
                    "stopping": stop,
                    "history": tracker.history,
                    "world_size": world_size(),
                },
                indent=1,
            )
        )
        torch.save(
            {
                "captures": {r.step: r.reprs for r in cap.records},
                "weights": result.model.state_dict(),
            },
            out / "result.pt",
        )
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()  # rank 0 exits after every rank is done
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
