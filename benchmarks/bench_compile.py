"""``torch.compile`` of the fused SIIT step against eager, side by side in one run.

    .venv/bin/python benchmarks/bench_compile.py                       # CPU: 1 and 8 members
    python benchmarks/bench_compile.py --members 8,64 --modes default,reduce-overhead  # GPU

For each stack size: the eager step time, then per mode the one-off compile time (first
forward + backward) and the steady step time (median, forward + backward + AdamW), the
ratio eager / compiled, and whether the compiled step's losses equal eager's at the same
weights (float rounding). The zoo YAML's ``compile:`` key switches the same
:class:`~interpeq.training.fused.CompiledStep` on for training; this script says
whether it pays on the machine at hand. The step's FLOPs give the floor: a step cannot
run faster than its FLOPs at the machine's matmul rate (``bench_stacked.py`` prints it).
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import stack_of, step_time, sync
from torch.utils.flop_counter import FlopCounterMode

from interpeq.models import HookedTransformerConfig
from interpeq.training.fused import CompiledStep


def eager_reference(n: int, args, device: torch.device) -> tuple[float, float, torch.Tensor]:
    """Eager seconds per step of ``n`` stacked default-size members, the step's GFLOP
    (forward + backward) and the first batch's losses, which each mode must reproduce."""
    module, batches = stack_of(n, HookedTransformerConfig(), device, args.batch)
    with torch.no_grad():
        want = module._step(batches[0])["loss"]
    with FlopCounterMode(display=False) as counter:
        module._step(batches[0])["loss"].sum().backward()
    module.zero_grad()
    return step_time(module, batches, args.steps, device), counter.get_total_flops() / 1e9, want


def time_mode(n: int, mode: str, want: torch.Tensor, args, device: torch.device):
    """One compile mode from scratch on the same initial weights as the eager run:
    (one-off compile seconds, steady seconds per step, losses equal eager's)."""
    module, batches = stack_of(n, HookedTransformerConfig(), device, args.batch)
    module.fused_step = CompiledStep(mode)
    try:
        sync(device)
        start = time.perf_counter()
        out = module._step(batches[0])
        out["loss"].sum().backward()
        sync(device)
        first = time.perf_counter() - start
        module.zero_grad()
        same = torch.allclose(out["loss"].detach(), want, rtol=1e-4, atol=1e-5)
        return first, step_time(module, batches, args.steps, device), same
    finally:
        torch._dynamo.reset()  # the next mode compiles from scratch


def compare(n: int, modes: list[str], args, device: torch.device) -> None:
    eager, gflop, want = eager_reference(n, args, device)
    print(
        f"{n:4d} member(s), batch {args.batch}: eager {eager * 1e3:8.1f} ms/step "
        f"({gflop / eager:6.1f} GFLOP/s, {gflop:.2f} GFLOP/step)",
        flush=True,
    )
    for mode in modes:
        first, steady, same = time_mode(n, mode, want, args, device)
        print(
            f"      {mode:26s} compile {first:6.1f} s, {steady * 1e3:8.1f} ms/step: "
            f"{eager / steady:5.2f}x eager; losses equal eager: {same}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", default="1,8")
    parser.add_argument(
        "--modes", default=None, help="default: 'default' (+reduce-overhead on CUDA)"
    )
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    modes = (
        args.modes or ("default,reduce-overhead" if device.type == "cuda" else "default")
    ).split(",")
    card = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"{card}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    for n in (int(x) for x in args.members.split(",")):
        compare(n, modes, args, device)


if __name__ == "__main__":
    main()
