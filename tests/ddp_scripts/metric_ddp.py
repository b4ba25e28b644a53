"""The torchmetrics adapters inside a Lightning module on 2 CPU processes (gloo, ``ddp``).

Usage: python metric_ddp.py OUT_JSON

A tiny LightningModule feeds precomputed representation batches into
``InterpretiveEquivalence`` and ``RepresentationSimilarity`` in ``validation_step`` /
``test_step`` and calls ``compute()`` (which gathers across ranks) at epoch end. Every
rank reads its own batches (``use_distributed_sampler=False``), ``SPLITS[mode][rank]``:

* ``uneven`` (``trainer.validate``): rank 0 gets 6 batches, rank 1 gets 4;
* ``lopsided`` (``trainer.test``): 9 batches against 1;
* ``empty`` (``trainer.validate``): rank 1 sees no sample, only one zero-row batch (a
  rank with no batch at all would skip Lightning's epoch-end hooks, and the other
  rank would wait for it in the sync).

Batch 9 repeats sample 0 at its end, like ``DistributedSampler`` padding. Rank 0
writes, per mode, the computed values, the rows each rank saw and the congruity every
rank computed; ``run(range(10))`` in one process (no Lightning) is the reference.
"""

import json
import sys

import torch

from interpeq.metrics import InterpretiveEquivalence, RepresentationSimilarity

N, M, BATCH = 100, 6, 10
SPLITS = {
    "uneven": [[0, 1, 2, 5, 6, 7], [3, 4, 8, 9]],
    "lopsided": [[0, 1, 2, 3, 4, 5, 6, 7, 8], [9]],
    "empty": [list(range(10)), []],
}
KEYS = ("repr_a", "repr_b", "impls_a", "impls_b", "indices")


def data() -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(N, 4, generator=g)
    w = torch.randn(4, 8, generator=g)

    def impl():
        return z @ w + 0.5 * torch.randn(N, 8, generator=g)

    a, b = impl(), impl()
    ia, ib = torch.stack([impl() for _ in range(M)]), torch.stack([impl() for _ in range(M)])
    idx = torch.arange(N)
    out = []
    for i in range(N // BATCH):
        s = list(range(i * BATCH, (i + 1) * BATCH)) + ([0] if i == N // BATCH - 1 else [])
        out.append(dict(zip(KEYS, (a[s], b[s], ia[:, s], ib[:, s], idx[s]), strict=True)))
    return out


def empty_batch() -> dict[str, torch.Tensor]:
    one = data()[0]
    return {k: v[:, :0] if k.startswith("impls") else v[:0] for k, v in one.items()}


def metrics() -> tuple[InterpretiveEquivalence, RepresentationSimilarity]:
    return InterpretiveEquivalence(alpha=0.3, seed=1), RepresentationSimilarity()


def values(eq, sim) -> dict[str, float]:
    out = {k: v.item() for k, v in eq.compute().items()}
    out.update({f"sim_{k}": v.item() for k, v in sim.compute().items()})
    return out


def run(batch_ids) -> dict[str, float]:
    """The 1-process reference: the same metrics over the given batches, no Lightning."""
    eq, sim = metrics()
    batches = data()
    for k in batch_ids:
        b = batches[k]
        eq.update(*(b[k] for k in KEYS))
        sim.update(b["repr_a"], b["repr_b"], indices=b["indices"])
    return values(eq, sim)


def main(path: str) -> None:
    import lightning as L
    from torch.utils.data import DataLoader

    torch.set_num_threads(1)

    class Probe(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))
            self.eq, self.sim = metrics()
            self.results: dict[str, dict] = {}
            self.mode = ""
            self.rows = 0

        def _update(self, batch: dict[str, torch.Tensor]) -> None:
            self.eq.update(*(batch[k] for k in KEYS))
            self.sim.update(batch["repr_a"], batch["repr_b"], indices=batch["indices"])
            self.rows += len(batch["indices"])

        def validation_step(self, batch, batch_idx) -> None:
            self._update(batch)

        def test_step(self, batch, batch_idx) -> None:
            self._update(batch)

        def _finish(self) -> None:
            out = values(self.eq, self.sim)  # the sync: every rank calls compute()
            self.eq.reset()
            self.sim.reset()
            out["rows_per_rank"] = self.all_gather(torch.tensor(self.rows)).tolist()
            out["congruity_per_rank"] = self.all_gather(torch.tensor(out["congruity"])).tolist()
            self.results[self.mode] = out
            self.rows = 0

        on_validation_epoch_end = _finish
        on_test_epoch_end = _finish

        def _loader(self) -> DataLoader:  # called after the launch: the rank is known
            mine = SPLITS[self.mode][self.global_rank]
            batches = data()
            return DataLoader([batches[k] for k in mine] or [empty_batch()], batch_size=None)

        val_dataloader = _loader
        test_dataloader = _loader

    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        use_distributed_sampler=False,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    module = Probe()
    for mode, stage in (("uneven", "validate"), ("lopsided", "test"), ("empty", "validate")):
        module.mode = mode
        getattr(trainer, stage)(module, verbose=False)
    if trainer.is_global_zero:
        with open(path, "w") as f:
            json.dump(module.results, f)
    torch.distributed.barrier()  # rank 0 exits after rank 1
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
