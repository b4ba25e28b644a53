"""Distributed pairwise congruity: one process vs blocks over Ray workers (and a GPU).

K units (default 24) in 3 groups, each a representation ``[n, D]`` (n = 256 probes,
D = 96) with m = 40 co-implementations (the default, docs/method.md section 6), as ``interpeq compare``
builds them. Times :func:`interpeq.equivalence.pairwise_congruity` in one process against
:func:`interpeq.compare.distributed.pairwise_congruity_blocks` with ``--workers`` Ray
workers (default 2) on a local Ray, and checks the rows are bit-identical. Ray's
start and its workers' first import are timed apart (a warm-up run) and not in the
speed-up: a long ``interpeq compare`` pays them once. The two are then run
alternately ``--repeat`` times (default 2) and the best of each is compared, so that a
change in the machine's load hits both alike. When CUDA is present, also one
process on the GPU (same numbers up to float rounding). Each process and Ray worker
uses one intra-op thread (the CLI's default).

With ``--zoo PATH`` (a trained zoo, e.g. ``checkpoints/seeds_check``) it times the
whole ``compare_zoo`` instead (representations, co-implementations and pairs; n = 256
probes, m = 40) and checks that ``matrix.csv`` and ``results.json`` are byte-identical.

    python benchmarks/bench_compare_distributed.py [--units K] [--workers W] [--quick]
    python benchmarks/bench_compare_distributed.py --zoo checkpoints/seeds_check
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch


def make_units(k: int, n: int, d: int, m: int, seed: int = 0):
    from interpeq.equivalence import Unit

    g = torch.Generator().manual_seed(seed)
    units = []
    for group in range(3):
        z = torch.randn(n, 12, generator=g)
        for u in range(k // 3 + (group < k % 3)):
            x = torch.tanh(z @ torch.randn(12, d, generator=g))
            x = x + 0.3 * torch.randn(n, d, generator=g)
            impls = x + 0.1 * torch.randn(m, n, d, generator=g)
            units.append(Unit(f"g{group}-u{u}", f"g{group}", x, impls))
    return units


def fresh(units):
    from interpeq.equivalence import Unit

    return [Unit(u.id, u.group, u.reprs, u.impls) for u in units]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--units", type=int, default=24)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--d", type=int, default=96)
    ap.add_argument("--m", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="9 units, n=128, D=32, m=10")
    ap.add_argument("--zoo", help="time compare_zoo on this trained zoo instead")
    ap.add_argument("--repeat", type=int, default=2, help="alternating runs; best of each")
    args = ap.parse_args()
    if args.zoo:
        return bench_zoo(args.zoo, args.workers, args.repeat)
    if args.quick:
        args.units, args.n, args.d, args.m = 9, 128, 32, 10
    torch.set_num_threads(1)

    import ray

    from interpeq.compare.distributed import pairwise_congruity_blocks
    from interpeq.equivalence import pairwise_congruity

    units = make_units(args.units, args.n, args.d, args.m)
    k = len(units)
    print(
        f"{k} units, {k * (k - 1) // 2} pairs, n={args.n} probes, D={args.d}, m={args.m}; "
        f"{os.cpu_count()} CPU cores on this machine (shared with other work: timings vary)"
    )

    t_init = start_ray(args.workers)
    try:
        start = time.perf_counter()
        pairwise_congruity_blocks(fresh(units), workers=args.workers)
        t_warm = time.perf_counter() - start
        t_single, t_blocks = [], []
        for _ in range(args.repeat):  # alternate, so that load changes hit both alike
            start = time.perf_counter()
            single = pairwise_congruity(fresh(units))
            t_single.append(time.perf_counter() - start)
            start = time.perf_counter()
            blocks = pairwise_congruity_blocks(fresh(units), workers=args.workers)
            t_blocks.append(time.perf_counter() - start)
    finally:
        ray.shutdown()
    same = json.dumps(blocks) == json.dumps(single)
    report(args.workers, t_init, t_warm, t_single, t_blocks)
    print(f"rows bit-identical:     {same}")
    if torch.cuda.is_available():
        gpu = [u.__class__(u.id, u.group, u.reprs.cuda(), u.impls.cuda()) for u in units]
        pairwise_congruity(gpu[:3])  # CUDA context, kernels
        torch.cuda.synchronize()
        start = time.perf_counter()
        on_gpu = pairwise_congruity([u.__class__(u.id, u.group, u.reprs, u.impls) for u in gpu])
        torch.cuda.synchronize()
        t_gpu = time.perf_counter() - start
        worst = max(
            abs(a["similarity"] - b["similarity"]) for a, b in zip(single, on_gpu, strict=True)
        )
        print(f"one GPU ({torch.cuda.get_device_name()}): {t_gpu:7.2f} s")
        print(
            f"speed-up (GPU):         {min(t_single) / t_gpu:7.2f}x  (largest similarity diff {worst:.1e})"
        )
    else:
        print("GPU: none here (CUDA not available)")
    if not same:
        raise SystemExit("distributed rows differ from the single-process rows")


def start_ray(workers: int) -> float:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    start = time.perf_counter()
    ray.init(
        num_cpus=workers,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=200 * 1024**2,
        logging_level="WARNING",
    )
    return time.perf_counter() - start


def report(workers: int, t_init: float, t_warm: float, t_single: list, t_blocks: list) -> None:
    best_1, best_w = min(t_single), min(t_blocks)
    print(f"Ray start:              {t_init:7.2f} s (once per run)")
    print(f"{workers} workers, first run:  {t_warm:7.2f} s (workers start, import torch)")
    print(
        f"one process:            {best_1:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in t_single)})"
    )
    print(
        f"{workers} workers:              {best_w:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in t_blocks)})"
    )
    print(f"speed-up ({workers} workers):     {best_1 / best_w:7.2f}x  (best of each)")


def bench_zoo(path: str, workers: int, repeat: int) -> None:
    import logging
    import tempfile
    from pathlib import Path

    import ray

    from interpeq.compare import compare_zoo, load_zoo

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    torch.set_num_threads(1)
    zoo = load_zoo(path)
    out = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    print(f"compare_zoo on {zoo.path} ({len(zoo)} members), {os.cpu_count()} CPU cores (shared)")
    t_init = start_ray(workers)
    try:
        kw = {"workers": workers, "launcher": "ray", "progress": False}
        start = time.perf_counter()
        compare_zoo(zoo, out_dir=out / "warm", **kw)
        t_warm = time.perf_counter() - start
        t_single, t_blocks = [], []
        for _ in range(repeat):
            start = time.perf_counter()
            compare_zoo(zoo, out_dir=out / "one", progress=False)
            t_single.append(time.perf_counter() - start)
            start = time.perf_counter()
            compare_zoo(zoo, out_dir=out / "two", **kw)
            t_blocks.append(time.perf_counter() - start)
    finally:
        ray.shutdown()
    same = all(
        (out / "one" / f).read_bytes() == (out / "two" / f).read_bytes()
        for f in ("matrix.csv", "results.json")
    )
    report(workers, t_init, t_warm, t_single, t_blocks)
    print(f"files byte-identical:   {same}")
    if not same:
        raise SystemExit("distributed files differ from the single-process files")


if __name__ == "__main__":
    main()
