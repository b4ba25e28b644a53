"""Run the metrics on 1 or 2 gloo processes over the same samples; print JSON results.

Usage: python ddp_script.py PORT OUT_JSON. Two gloo ranks run every split in SPLITS:
rank r gets the batches SPLITS[mode][r] (uneven: rank 0 has more batches; empty: rank 1
has none). The last batch repeats sample 0, like DistributedSampler padding.
``run(range(10))`` in one process is the reference.
"""

import json
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from interpeq.metrics import InterpretiveEquivalence, RepresentationSimilarity

N, M, BATCH = 100, 6, 10
SPLITS = {
    "uneven": [[0, 1, 2, 5, 6, 7], [3, 4, 8, 9]],
    "even": [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]],
    "empty": [list(range(10)), []],
}


def data():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(N, 4, generator=g)
    w = torch.randn(4, 8, generator=g)

    def impl():
        return z @ w + 0.5 * torch.randn(N, 8, generator=g)

    a, b = impl(), impl()
    ia, ib = torch.stack([impl() for _ in range(M)]), torch.stack([impl() for _ in range(M)])
    idx = torch.arange(N)
    batches = [slice(i * BATCH, (i + 1) * BATCH) for i in range(N // BATCH)]
    out = [(a[s], b[s], ia[:, s], ib[:, s], idx[s]) for s in batches]
    # batch 9: padding duplicate of sample 0 appended
    a9, b9, ia9, ib9, i9 = out[-1]
    out[-1] = (
        torch.cat([a9, a[:1]]),
        torch.cat([b9, b[:1]]),
        torch.cat([ia9, ia[:, :1]], 1),
        torch.cat([ib9, ib[:, :1]], 1),
        torch.cat([i9, idx[:1]]),
    )
    return out


def run(batch_ids):
    eq = InterpretiveEquivalence(alpha=0.3, seed=1)
    sim = RepresentationSimilarity()
    batches = data()
    for k in batch_ids:
        a, b, ia, ib, idx = batches[k]
        eq.update(a, b, ia, ib, indices=idx)
        sim.update(a, b, indices=idx)
    out = {k: v.item() for k, v in eq.compute().items()}
    out.update({f"sim_{k}": v.item() for k, v in sim.compute().items()})
    return out


def worker(rank, world, port, path):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        result = {mode: run(split[rank]) for mode, split in SPLITS.items()}
        if rank == 0:
            with open(path, "w") as f:
                json.dump(result, f)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    port, path = int(sys.argv[1]), sys.argv[2]
    mp.spawn(worker, args=(2, port, path), nprocs=2, join=True)
