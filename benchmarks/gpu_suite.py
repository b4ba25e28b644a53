"""The GPU checks of interpeq, in one command that fits a short device lease (<= 8 min).

    python benchmarks/gpu_suite.py            # on a GPU machine (CUDA)
    python benchmarks/gpu_suite.py --smoke    # CPU-sized, a minute here: checks the script

Side-by-side ratios, each printed as it is measured, a table at the end:

1. **stacked vs one at a time**: optimiser steps (fused SIIT step, forward + backward +
   AdamW) of 1, 8, 64 and 256 default-size members stacked, against the same members
   one after another (measured on 8 and scaled: each is the same single-member step);
   also the ``compile:`` modes ``default`` and ``reduce-overhead`` (CUDA graphs) of the
   64-member stack against eager (launch-bound tiny models are where compilation helps).
   Goal: >= 30x at 64 members.
2. **similarity matrix of 256 models** (n = 1000 probes, D = 192): the ridge engine on
   the GPU vs the CPU (the CPU side on 32 models, scaled by the pair count, which is how
   the engine's work grows). Goal: <= 2 s on the GPU.
3. **tracking overhead**: a stacked group of 8 members trained with capture + tracker
   against the same training without.
4. **a scaled toy reproduction**: the wall time of ``interpeq reproduce toy`` on a
   one-algorithm, two-seed config (``--no-toy`` skips it).

Every figure names the device (``torch.cuda.get_device_name``).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch
from _common import stack_of, step_time, sync

from interpeq.models import HookedTransformerConfig

ROWS: list[tuple[str, str]] = []


def report(name: str, value: str) -> None:
    ROWS.append((name, value))
    print(f"{name:44s} {value}", flush=True)


def bench_stacking(args, device: torch.device) -> None:
    model = HookedTransformerConfig()
    sizes = [1, 2, 4] if args.smoke else [1, 8, 64, 256]
    one, b1 = stack_of(1, model, device, args.batch)
    t1 = step_time(one, b1, args.steps, device)
    report("one member, one step", f"{t1 * 1e3:8.2f} ms")
    for n in sizes[1:]:
        module, batches = stack_of(n, model, device, args.batch)
        tn = step_time(module, batches, args.steps, device)
        report(f"{n} stacked vs one at a time", f"{n * t1 / tn:8.2f}x  ({tn * 1e3:.1f} ms/step)")
        del module, batches
    if device.type == "cuda" and not args.no_compile:
        bench_compile(64, args, device)


def bench_compile(n: int, args, device: torch.device) -> None:
    """The zoo YAML's ``compile:`` modes on the fused step of ``n`` stacked members
    (``bench_compile.py`` measures; a mode that fails is reported, not fatal)."""
    from bench_compile import eager_reference, time_mode

    eager, _, want = eager_reference(n, args, device)
    for mode in ("default", "reduce-overhead"):
        try:
            first, steady, same = time_mode(n, mode, want, args, device)
        except Exception as err:  # noqa: BLE001 - report, do not stop the suite
            report(f"{n} stacked: compile {mode}", f"failed ({type(err).__name__}: {err})"[:120])
            continue
        report(
            f"{n} stacked: compile {mode} vs eager",
            f"{eager / steady:8.2f}x  ({steady * 1e3:.1f} ms/step, compile {first:.0f} s, "
            f"losses equal eager: {same})",
        )


def bench_similarity(args, device: torch.device) -> None:
    from interpeq.equivalence import RidgeEngine

    k_gpu, k_cpu = (16, 8) if args.smoke else (256, 32)
    n, d = (200, 48) if args.smoke else (1000, 192)
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(n, d, generator=gen)
    reprs = [
        base @ torch.randn(d, d, generator=gen) + 0.5 * torch.randn(n, d, generator=gen)
        for _ in range(k_gpu)
    ]

    def timed(k: int, dev: torch.device) -> float:
        mats = [r.to(dev) for r in reprs[:k]]
        sync(dev)
        start = time.perf_counter()
        RidgeEngine(mats, device=dev).similarity_matrix()
        sync(dev)
        return time.perf_counter() - start

    cpu = timed(k_cpu, torch.device("cpu")) * (k_gpu * (k_gpu - 1)) / (k_cpu * (k_cpu - 1))
    here = timed(k_gpu, device)
    report(f"{k_gpu}-model similarity matrix on {device.type}", f"{here:8.2f} s (goal <= 2 s)")
    report(f"  vs CPU (scaled from {k_cpu} models)", f"{cpu / here:8.2f}x  ({cpu:.1f} s)")


def bench_tracking(args, root: Path) -> None:
    from interpeq.experiment import ExperimentSpec, run_experiment

    steps = 40 if args.smoke else 600
    every = 20 if args.smoke else 200
    d = 16 if args.smoke else 64
    base = (
        f"tasks: [interleave_reverse, add_index]\nsettings: [D]\n"
        f"model: {{n_layers: 2, d_model: {d}, n_heads: 4, d_head: {d // 4}, d_mlp: {4 * d}}}\n"
        f"train: {{max_steps: {steps}, val_every: {steps}, val_size: 256, test_size: 256, "
        "acc_threshold: 1.1}\n"
    )

    def run(name: str, text: str) -> float:
        path = root / f"{name}.yaml"
        path.write_text(f"name: {name}\n{text}")
        start = time.perf_counter()
        run_experiment(ExperimentSpec.from_yaml(path), root, progress=False, echo=lambda s: None)
        return time.perf_counter() - start

    run("refs", base + "seeds: [0]\n")
    plain = run("plain", base + "seeds: [1, 2, 3, 4]\n")
    track = (
        f"tracking: {{references: ['{root / 'refs'}'], every_n_steps: {every}, "
        "include_unconverged: true}\n"
    )
    tracked = run("tracked", base + "seeds: [1, 2, 3, 4]\n" + track)
    report(
        "tracking overhead, 8 stacked members",
        f"{tracked / plain - 1:+8.1%}  ({plain:.1f} s plain)",
    )


def bench_toy(args, root: Path) -> None:
    from interpeq.reproduce import ExperimentConfig
    from interpeq.reproduce.toy import run_toy

    steps = 30 if args.smoke else 1500
    d = 16 if args.smoke else 48
    path = root / "toy.yaml"
    path.write_text(
        "experiment: toy\nzoo:\n  name: toy_suite\n  algorithms: [algorithm_1, algorithm_4]\n"
        "  seeds: [0, 1]\n  settings: [D]\n"
        f"  model: {{n_layers: 2, d_model: {d}, n_heads: 4, d_head: {d // 4}, d_mlp: {2 * d}}}\n"
        f"  train: {{batch_size: 64, max_steps: {steps}, val_every: 100, val_size: 256, test_size: 256}}\n"
        "  stacked: true\n"
        # the suite times the reproduction; whether these short runs converge is not its test
        "  retry: {thresholds: {acc: 0.0, iia: 0.0, strict_acc: 0.0}}\n"
        f"compare: {{n_probes: {64 if args.smoke else 256}, m: {8 if args.smoke else 40}, alpha: 0.3, impls: [intervention]}}\n"
        "paper: {within_sorting: 0.43, across_families: 0.01}\n"
    )
    start = time.perf_counter()
    run_toy(ExperimentConfig.from_yaml(path), root, logger="none", progress=False)
    report(
        "scaled toy reproduction (2 algorithms x 2 seeds)", f"{time.perf_counter() - start:8.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="CPU-sized: checks the script")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per stack size")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--no-toy", action="store_true")
    args = parser.parse_args()
    args.steps = args.steps or (3 if args.smoke else 10)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    card = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"device: {card}; torch {torch.__version__}; smoke={args.smoke}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="gpu_suite_"))
    start = time.perf_counter()
    bench_stacking(args, device)
    bench_similarity(args, device)
    bench_tracking(args, root)
    if not args.no_toy:
        bench_toy(args, root)
    print(f"\n== {card}, {time.perf_counter() - start:.0f} s in all ==")
    for name, value in ROWS:
        print(f"{name:44s} {value}")


if __name__ == "__main__":
    main()
