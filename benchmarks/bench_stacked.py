"""Stacked vs one-after-another SIIT training of same-architecture members.

    python benchmarks/bench_stacked.py                  # 8 members, CPU, batch 128 and 32
    python benchmarks/bench_stacked.py --device cuda --steps 50 --batch-sizes 128

Every side runs the same optimiser steps (forward, backward, AdamW, per-member
clipping) on the same batches; batches are drawn beforehand so the ratio measures
training compute. Four ways to train 8 members:

* ``seq hooks``: one ``SIITModule`` after another (``siit_forward`` through hooks,
  what ``fit_member`` runs);
* ``seq fused``: one member at a time through the fused step
  (:mod:`interpeq.training.fused` with ``M = 1``): the like-with-like baseline;
* ``stacked vmap``: ``torch.func.vmap`` over ``siit_forward`` (``impl="vmap"``);
* ``stacked fused``: all members in one fused step (``fit_stacked``'s default).

The headline ratio is ``stacked fused`` over the better sequential path (goal
>= 3x on CPU, >= 10x on GPU). Step-1 losses of every stacked member must equal the
sequential ones. To show how far a CPU can go, the benchmark also prints the
step's FLOPs (counted with ``torch.utils.flop_counter`` on the fused step) and the
throughput this CPU reaches on a plain batched matmul of the model's largest shape:
if the sequential path already runs near that rate, stacking cannot win much.
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import members_of, sync
from torch.utils.flop_counter import FlopCounterMode

from interpeq.models import HookedTransformerConfig
from interpeq.training import SIITModule
from interpeq.training.stacked import StackedSIITModule, _stack


def matmul_rate(m: int, rows: int, d_in: int, d_out: int, device: torch.device) -> float:
    """GFLOP/s of ``bmm([m, rows, d_in], [m, d_in, d_out])`` (the MLP's shape), forward only."""
    a = torch.randn(m, rows, d_in, device=device)
    w = torch.randn(m, d_in, d_out, device=device)
    for _ in range(3):
        torch.bmm(a, w)
    reps = 20
    sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        torch.bmm(a, w)
    sync(device)
    return 2 * m * rows * d_in * d_out * reps / (time.perf_counter() - start) / 1e9


def bench(args, batch_size: int, device: torch.device) -> dict[str, float]:
    model = HookedTransformerConfig()
    members = members_of(args.members, model, batch_size)
    stacked = StackedSIITModule(members, model).to(device)
    stacked_vmap = StackedSIITModule(members, model, impl="vmap").to(device)
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
    for single in singles:
        single.impl = "hooks"  # the reference path (SIITModule's default is the fused step)
    ones = [StackedSIITModule([mem], model).to(device) for mem in members]

    def train_loop(module, get_batch) -> tuple[float, list[float]]:
        opt = module.configure_optimizers()["optimizer"]
        first: list[float] = []
        for step in range(args.steps):
            out = module._step(get_batch(step))
            if step == 0:
                first = out["loss"].detach().reshape(-1).tolist()
            opt.zero_grad()
            out["loss"].sum().backward()
            module.on_before_optimizer_step(opt)
            opt.step()
        return first

    def timed(fn) -> tuple[float, list[float]]:
        sync(device)
        start = time.perf_counter()
        first = fn()
        sync(device)
        return time.perf_counter() - start, first

    def seq_hooks() -> list[float]:
        return [
            x for m, s in enumerate(singles) for x in train_loop(s, lambda k, m=m: batches[k][m])
        ]

    def seq_fused() -> list[float]:
        return [
            x
            for m, s in enumerate(ones)
            for x in train_loop(s, lambda k, m=m: _stack([batches[k][m]]))
        ]

    def stk(module):
        return lambda: train_loop(module, lambda k: _stack(batches[k]))

    # warm-up (allocator, vmap caches), not timed
    for module, b in ((stacked, _stack(batches[0])), (stacked_vmap, _stack(batches[0]))):
        module._step(b)
    singles[0]._step(batches[0][0])
    ones[0]._step(_stack([batches[0][0]]))
    res = {}
    res["seq hooks"], loss_seq = timed(seq_hooks)
    res["seq fused"], loss_one = timed(seq_fused)
    res["stacked vmap"], loss_vmap = timed(stk(stacked_vmap))
    res["stacked fused"], loss_stk = timed(stk(stacked))
    ref = torch.tensor(loss_seq)
    for name, losses in (
        ("seq fused", loss_one),
        ("stacked vmap", loss_vmap),
        ("stacked fused", loss_stk),
    ):
        ok = torch.allclose(ref, torch.tensor(losses), rtol=1e-5, atol=1e-5)
        print(f"  step-1 losses of {name} equal seq hooks: {ok}")
        assert ok, f"{name} step-1 losses differ from sequential ones: {losses} vs {loss_seq}"

    # FLOPs of one member-step (forward + backward of the fused step) and the CPU's matmul rate
    one = ones[0]
    with FlopCounterMode(display=False) as counter:
        one._step(_stack([batches[0][0]]))["loss"].sum().backward()
    one.zero_grad()
    flops = counter.get_total_flops()
    rows = 3 * batch_size * 11
    rate_1 = matmul_rate(1, rows, model.d_model, model.d_mlp, device)
    rate_m = matmul_rate(args.members, rows, model.d_model, model.d_mlp, device)
    steps = args.members * args.steps
    print(
        f"batch {batch_size}: {args.members} members x {args.steps} steps, threads {torch.get_num_threads()}, "
        f"{flops / 1e9:.2f} GFLOP per member-step"
    )
    for name, t in res.items():
        print(
            f"  {name:14s} {t:7.2f} s  {steps / t:6.1f} member-steps/s  {flops * steps / t / 1e9:6.1f} GFLOP/s"
        )
    best_seq = min(res["seq hooks"], res["seq fused"])
    print(
        f"  bmm [{1}x{rows}x{model.d_model}]@[{model.d_model}x{model.d_mlp}]: {rate_1:.1f} GFLOP/s; "
        f"stacked x{args.members}: {rate_m:.1f} GFLOP/s"
    )
    print(
        f"  ratio stacked fused / best sequential: {best_seq / res['stacked fused']:.2f}x "
        f"(vs seq hooks {res['seq hooks'] / res['stacked fused']:.2f}x, "
        f"stacked vmap / seq hooks {res['seq hooks'] / res['stacked vmap']:.2f}x); "
        f"ceiling if the stacked step ran at the stacked-bmm rate: "
        f"{rate_m / (flops * steps / best_seq / 1e9):.2f}x",
        flush=True,
    )
    return res


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-sizes", default="128,32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        bench(args, bs, device)


if __name__ == "__main__":
    main()
