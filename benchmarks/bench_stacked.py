"""Stacked vs one-after-another SIIT training of same-architecture members.

    python benchmarks/bench_stacked.py                  # 8 members, CPU
    python benchmarks/bench_stacked.py --device cuda --steps 50

Both sides run the same optimiser steps (forward, backward, AdamW, per-member
clipping) on the same batches; batches are drawn beforehand so the ratio measures
training compute. Prints the throughput ratio (goal: >= 3x on CPU, >= 10x on GPU)
and checks that the stacked members' step-1 losses equal the sequential ones.
"""

from __future__ import annotations

import argparse
import time

import torch

from interpeq.models import HookedTransformerConfig
from interpeq.tasks import list_tasks
from interpeq.training import SIITModule, TrainConfig, resolve_task, sample_correspondence
from interpeq.training.stacked import StackedSIITModule, _stack


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = HookedTransformerConfig()
    train = TrainConfig(batch_size=args.batch_size, max_steps=1000)
    tasks = list_tasks(kind="task")
    members = []
    for m in range(args.members):
        task = tasks[m % len(tasks)]
        corr = sample_correspondence(resolve_task(task).task, model, seed=m)
        members.append((task, corr, train.replace(seed=m)))

    stacked = StackedSIITModule(members, model).to(device)
    batches = [
        [{k: v.to(device) for k, v in s.train_batch(step).items()} for s in stacked.samplers]
        for step in range(args.steps)
    ]
    singles = [
        SIITModule(
            task=t, model=model.replace(seed=tr.seed), siit=tr, correspondence=c.to_dict()
        ).to(device)
        for t, c, tr in members
    ]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def run_sequential() -> tuple[float, list[float]]:
        first = []
        sync()
        start = time.perf_counter()
        for m, module in enumerate(singles):
            opt = module.configure_optimizers()["optimizer"]
            for step in range(args.steps):
                out = module._step(batches[step][m])
                if step == 0:
                    first.append(float(out["loss"].detach()))
                opt.zero_grad()
                out["loss"].backward()
                module.on_before_optimizer_step(opt)
                opt.step()
        sync()
        return time.perf_counter() - start, first

    def run_stacked() -> tuple[float, list[float]]:
        opt = stacked.configure_optimizers()["optimizer"]
        first = []
        sync()
        start = time.perf_counter()
        for step in range(args.steps):
            out = stacked._step(_stack(batches[step]))
            if step == 0:
                first = out["loss"].detach().tolist()
            opt.zero_grad()
            out["loss"].sum().backward()
            stacked.on_before_optimizer_step(opt)
            opt.step()
        sync()
        return time.perf_counter() - start, first

    # warm-up (allocator, vmap tracing caches) on copies of the step, not timed
    stacked._step(_stack(batches[0]))
    singles[0]._step(batches[0][0])
    t_seq, loss_seq = run_sequential()
    t_stk, loss_stk = run_stacked()
    ok = torch.allclose(torch.tensor(loss_seq), torch.tensor(loss_stk), rtol=1e-5, atol=1e-5)
    steps = args.members * args.steps
    print(
        f"device {device}, {args.members} members x {args.steps} steps, batch {args.batch_size}, threads {torch.get_num_threads()}"
    )
    print(f"sequential: {t_seq:.2f} s ({steps / t_seq:.1f} member-steps/s)")
    print(f"stacked:    {t_stk:.2f} s ({steps / t_stk:.1f} member-steps/s)")
    print(f"throughput ratio stacked/sequential: {t_seq / t_stk:.2f}x")
    print(f"step-1 losses sequential {[round(x, 5) for x in loss_seq]}")
    print(f"step-1 losses stacked    {[round(x, 5) for x in loss_stk]}")
    print(f"step-1 losses match: {ok}")
    assert ok, "stacked step-1 losses differ from sequential ones"


if __name__ == "__main__":
    main()
