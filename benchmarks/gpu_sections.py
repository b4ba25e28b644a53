"""The sections of ``gpu_suite.py``: each measures one thing and reports its figures
with :func:`report` the moment they exist, so a section that fails or is stopped later
still leaves what it measured on the screen and in the suite's summary.

A section is ``fn(args, device, root)``; ``args`` are the suite's parsed arguments
(``smoke``, ``steps``, ``batch``), ``root`` a scratch folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from _common import members_of, step_time, sync

from interpeq.models import HookedTransformerConfig

ROWS: list[tuple[str, str]] = []
WARMUP = 3  # untimed Lightning steps first: the data worker's start, lazy CUDA set-up
LOG_EVERY = 50  # Lightning's default, which trainer_for (zoo training) keeps
SIM_TOL = 1e-4  # |GPU - CPU| allowed per similarity: float32 rounding, not a bug


def report(name: str, value: str) -> None:
    """Print one figure now (flushed: a lease may end mid-run) and keep it for the summary."""
    ROWS.append((name, value))
    print(f"{name:48s} {value}", flush=True)


def _model(smoke: bool) -> HookedTransformerConfig:
    """Default-size members on a GPU; in ``--smoke`` members so narrow that the CPU
    run checks the code path in seconds (its figures say nothing about a GPU)."""
    if smoke:
        return HookedTransformerConfig(n_layers=2, d_model=8, n_heads=2, d_head=4, d_mlp=16)
    return HookedTransformerConfig()


def full_step(n: int, model, batch: int, steps: int, device: torch.device) -> tuple[float, float]:
    """Median seconds of the FULL training step of ``n`` stacked members, and of its
    math alone.

    Why both: on a GPU a stack of tiny members is bound by the Python around the math
    (drawing batches, ``training_step``'s metrics, ``on_train_batch_end``, Lightning's
    loop), which timing ``_step`` on pre-drawn batches hides. The full step is a
    ``Trainer.fit`` as zoo training runs it (the module's own DataLoader, a worker from
    8 members, gradient clipping, AdamW, the LR schedule; logging every ``LOG_EVERY``
    steps, so the median is a non-logging step), clocked at each batch start after a
    device sync, as ``bench_host_overhead.py`` clocks it. The math alone is
    ``_common.step_time`` (forward, backward, clip, AdamW) on the same module.
    """
    import lightning as L
    from lightning.pytorch.loggers.logger import Logger

    from interpeq.training.stacked import StackedSIITModule

    class Null(Logger):  # values still travel Lightning's logging path, to nowhere
        name, version = "null", "0"

        def log_metrics(self, metrics, step=None):
            pass

        def log_hyperparams(self, *args, **kwargs):
            pass

    class Clock(L.Callback):
        def __init__(self):
            self.times: list[float] = []

        def on_train_batch_start(self, *args):
            sync(device)
            self.times.append(time.perf_counter())

    members = [(t, c, tr.replace(val_every=10**6)) for t, c, tr in members_of(n, model, batch)]
    module = StackedSIITModule(members, model)
    clock = Clock()
    trainer = L.Trainer(
        max_steps=WARMUP + steps + 1, logger=Null(), log_every_n_steps=LOG_EVERY,
        accelerator=device.type, devices=1, limit_val_batches=0, num_sanity_val_steps=0,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        callbacks=[clock],
    )  # fmt: skip
    trainer.fit(module)
    diffs = sorted(
        b - a for a, b in zip(clock.times[WARMUP:], clock.times[WARMUP + 1 :], strict=False)
    )
    module.to(device).train()  # Lightning's teardown moves it back to the CPU
    batches = [{k: v.to(device) for k, v in module.train_batch(s).items()} for s in range(2)]
    core = step_time(module, batches, steps, device)
    return diffs[len(diffs) // 2], core


def stacking(args, device: torch.device, root: Path) -> None:
    """Stacked vs one at a time: ``n`` members' full steps against ``n`` single-member
    full steps (the same step, one member after another). Goal: >= 30x at 64."""
    model = _model(args.smoke)
    sizes = [1, 2, 8] if args.smoke else [1, 8, 64, 256]
    print(
        f"  timed: the full Lightning training step (Trainer.fit: data, training_step with "
        f"its metrics, hooks, backward, clip, AdamW), median of {args.steps} after "
        f"{WARMUP} warm-up; 'math' is _step + backward + AdamW on pre-drawn batches",
        flush=True,
    )
    t1, c1 = full_step(1, model, args.batch, args.steps, device)
    report("one member, full step", f"{t1 * 1e3:8.2f} ms  (math {c1 * 1e3:.2f} ms)")
    for n in sizes[1:]:
        tn, cn = full_step(n, model, args.batch, args.steps, device)
        report(
            f"{n} stacked vs one at a time (full step)",
            f"{n * t1 / tn:8.2f}x  ({tn * 1e3:.1f} ms/step; math {cn * 1e3:.1f} ms, "
            f"{n * c1 / cn:.2f}x)",
        )
        if device.type == "cuda":
            torch.cuda.empty_cache()


_EAGER: dict[int, tuple] = {}  # n -> bench_compile.eager_reference, shared by both modes


def compile_mode(mode: str, args, device: torch.device, root: Path) -> None:
    """The zoo YAML's ``compile:`` mode on the fused step of 64 stacked members against
    eager (``bench_compile.py`` measures; launch-bound tiny models are where it helps)."""
    from bench_compile import eager_reference, time_mode

    n = 64
    if n not in _EAGER:
        _EAGER[n] = eager_reference(n, args, device)
    eager, _, want = _EAGER[n]
    first, steady, same = time_mode(n, mode, want, args, device)
    report(
        f"{n} stacked: compile {mode} vs eager",
        f"{eager / steady:8.2f}x  ({steady * 1e3:.1f} ms/step, compile {first:.0f} s, "
        f"losses equal eager: {same})",
    )


def compile_default(args, device: torch.device, root: Path) -> None:
    compile_mode("default", args, device, root)


def compile_reduce_overhead(args, device: torch.device, root: Path) -> None:
    compile_mode("reduce-overhead", args, device, root)


def similarity(args, device: torch.device, root: Path) -> None:
    """The ridge similarity matrix of 256 models (n = 1000 probes, D = 192) on the GPU
    against the CPU, timed (the CPU on 32 models, scaled by the pair count, which is how
    the engine's work grows) and checked: the GPU's pairs among the first 32 models must
    equal the CPU's within ``SIM_TOL`` (a fast wrong matrix is no speed-up). Goal: <= 2 s."""
    from interpeq.equivalence import RidgeEngine

    k_gpu, k_cpu = (16, 8) if args.smoke else (256, 32)
    n, d = (200, 48) if args.smoke else (1000, 192)
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(n, d, generator=gen)
    reprs = [
        base @ torch.randn(d, d, generator=gen) + 0.5 * torch.randn(n, d, generator=gen)
        for _ in range(k_gpu)
    ]

    def timed(k: int, dev: torch.device) -> tuple[float, torch.Tensor]:
        mats = [r.to(dev) for r in reprs[:k]]
        sync(dev)
        start = time.perf_counter()
        sim = RidgeEngine(mats, device=dev).similarity_matrix()
        sync(dev)
        return time.perf_counter() - start, sim.cpu()

    cpu, sim_cpu = timed(k_cpu, torch.device("cpu"))
    cpu *= (k_gpu * (k_gpu - 1)) / (k_cpu * (k_cpu - 1))
    here, sim_here = timed(k_gpu, device)
    report(f"{k_gpu}-model similarity matrix on {device.type}", f"{here:8.2f} s (goal <= 2 s)")
    report(f"  vs CPU (scaled from {k_cpu} models)", f"{cpu / here:8.2f}x  ({cpu:.1f} s)")
    if device.type != "cuda":
        report("  GPU results equal CPU", "     n/a  (the check needs a GPU)")
        return
    diff = (sim_here[:k_cpu, :k_cpu].double() - sim_cpu.double()).abs().max().item()
    same = diff <= SIM_TOL
    report(
        "  GPU results equal CPU",
        f"{'yes' if same else 'NO':>8s}  (max |GPU - CPU| {diff:.2e} over {k_cpu}x{k_cpu}, "
        f"tolerance {SIM_TOL:g})",
    )
    if not same:
        raise AssertionError(f"GPU similarities differ from the CPU's by {diff:.2e} > {SIM_TOL:g}")


def tracking(args, device: torch.device, root: Path) -> None:
    """Tracking overhead: a stacked group of 8 members trained with capture + tracker
    against the same training without (the experiment pipeline, end to end)."""
    from interpeq.experiment import ExperimentSpec, run_experiment

    steps, every, d = (10, 5, 8) if args.smoke else (600, 200, 64)
    held_out = 64 if args.smoke else 256
    base = (
        f"tasks: [interleave_reverse, add_index]\nsettings: [D]\n"
        f"model: {{n_layers: 2, d_model: {d}, n_heads: 4, d_head: {d // 4}, d_mlp: {4 * d}}}\n"
        f"train: {{max_steps: {steps}, val_every: {steps}, val_size: {held_out}, "
        f"test_size: {held_out}, acc_threshold: 1.1}}\n"
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
        f"{tracked / plain - 1:+8.1%}  ({plain:.1f} s plain, {steps} steps)",
    )


def toy(args, device: torch.device, root: Path) -> None:
    """Wall time of ``interpeq reproduce toy`` on a one-algorithm-pair, two-seed config."""
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
