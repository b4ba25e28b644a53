"""SIIT batches: seeded base/source pairs with their labels, counterfactuals and patch masks.

A batch is a dict of tensors (everything the loss needs, nothing model-dependent):

* ``base``, ``source``: tokens ``[batch, pos]``;
* ``labels``: the interpretation's output on ``base`` (``-100`` at position 0);
* ``iit_select`` (bool ``[batch, n_components]``): the components aligned to the
  variable drawn for each row, over the full ``model.components()`` list;
  ``iit_labels``: the interpretation's output on ``base`` with that variable taken
  from ``source`` (``task.intervene``; for ``output`` it is the source's labels);
* ``strict_select``: non-circuit components to resample from ``source`` per row
  (one per row, or a random subset, see ``TrainConfig.strict_mode``); the target
  is ``labels``.

Training batches form an endless stream: batch ``t`` is drawn from a generator seeded
by ``(seed, "train", 0, t)``, so a stream is reproducible and a resumed run continues
it exactly (the step is stored in the checkpoint).
Validation uses a fixed set drawn from ``(seed, "val")``; :func:`interpeq.training.evaluate`
uses ``(seed, "test")`` by default.

**Data parallelism (DDP).** ``batch_size`` is the *global* batch. Under a trainer with
``world_size`` processes every rank draws the same global batch ``t`` (with every
random choice of the SIIT step in it: base/source rows, the intervened variable and
its components per row, the strict-mode components) and keeps its shard, rows
``rank::world_size`` (:func:`shard_batch`); ``batch_size`` must be divisible by the
world size. Each rank's loss is the mean over its shard; DDP averages the gradients,
which equals the 1-process gradient of the global batch because every row has the
same number of labelled positions (true of every catalogue task). So 1 and N
processes train on the same data and reach the same weights up to float rounding.
Validation batches are sharded the same way (every rank sees every batch, with its
rows), so the synced ``MeanMetric`` values equal the 1-process values. With one process
nothing changes (same seed, same numbers as before this was added).
"""

from __future__ import annotations

import os
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from interpeq.models import HookedTransformerConfig
from interpeq.seeds import generator
from interpeq.training.config import TrainConfig, TrainingTask, resolve_task
from interpeq.training.correspondence import (
    OUTPUT,
    Correspondence,
    default_correspondence,
    model_components,
)


class SIITSampler:
    """Draws SIIT batches for one (task, architecture, correspondence, train config)."""

    def __init__(
        self,
        task: TrainingTask,
        cfg: HookedTransformerConfig,
        correspondence: Correspondence,
        train: TrainConfig,
    ):
        correspondence.validate(task.task, cfg)
        self.task, self.cfg, self.corr, self.train = task, cfg, correspondence, train
        self.components = model_components(cfg)
        index = {c: i for i, c in enumerate(self.components)}
        self.variables = correspondence.variables
        self.var_masks = torch.zeros(len(self.variables), len(self.components), dtype=torch.bool)
        for v, var in enumerate(self.variables):
            for c in correspondence.components_of(var):
                self.var_masks[v, index[c]] = True
        self.non_circuit = torch.tensor(
            [index[c] for c in correspondence.non_circuit(cfg)], dtype=torch.long
        )

    def counterfactual(self, base: Tensor, source: Tensor, var: str) -> Tensor:
        if var == OUTPUT:
            return self.task.task.labels(source)
        return self.task.task.intervene(base, source, [var])

    def strict_select(self, n: int, gen: torch.Generator, mode: str | None = None) -> Tensor:
        mode = mode or self.train.strict_mode
        select = torch.zeros(n, len(self.components), dtype=torch.bool)
        k = len(self.non_circuit)
        if k == 0:
            return select
        if mode == "one":
            pick = self.non_circuit[torch.randint(k, (n,), generator=gen)]
            select[torch.arange(n), pick] = True
        else:
            draw = torch.rand(n, k, generator=gen) < self.train.subset_prob
            select[:, self.non_circuit] = draw
        return select

    def batch(
        self, n: int, gen: torch.Generator, var_idx: Tensor | None = None
    ) -> dict[str, Tensor]:
        return label_batches([self], [self.draw(n, gen, var_idx)])[0]

    def draw(
        self, n: int, gen: torch.Generator, var_idx: Tensor | None = None
    ) -> dict[str, Tensor]:
        """The random part of a batch (base and source rows, the variable drawn per row,
        the strict-mode components); :func:`label_batches` adds what follows from them."""
        base, source = self.task.sample_pairs(n, gen)
        if var_idx is None:
            var_idx = torch.randint(len(self.variables), (n,), generator=gen)
        return {"base": base, "source": source, "iit_var": var_idx,
                "strict_select": self.strict_select(n, gen)}  # fmt: skip

    def draw_train(self, step: int, rank: int = 0) -> dict[str, Tensor]:
        return self.draw(self.train.batch_size, generator(self.train.seed, "train", rank, step))

    def train_batch(self, step: int, rank: int = 0) -> dict[str, Tensor]:
        return label_batches([self], [self.draw_train(step, rank)])[0]

    def fixed_set(self, n: int, stream: str) -> list[dict[str, Tensor]]:
        """A held-out set of ``n`` rows in batches of at most ``4 * batch_size``."""
        gen = generator(self.train.seed, stream)
        size = 4 * self.train.batch_size
        return [self.batch(min(size, n - i), gen) for i in range(0, n, size)]


def label_batches(
    samplers: list[SIITSampler], drawn: list[dict[str, Tensor]]
) -> list[dict[str, Tensor]]:
    """Complete drawn batches (:meth:`SIITSampler.draw`) with ``labels``, ``iit_select``
    and ``iit_labels``. The interpretation runs once per task on the rows of every
    sampler of that task together (it is row-wise, so each batch gets exactly what it
    would alone): in a stack, labelling costs per task, not per member."""
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(samplers):
        groups.setdefault((s.task.name, tuple(s.variables)), []).append(i)
    out: list[dict[str, Tensor]] = [{} for _ in samplers]
    for members in groups.values():
        first = samplers[members[0]]
        base = torch.cat([drawn[i]["base"] for i in members])
        source = torch.cat([drawn[i]["source"] for i in members])
        labels = first.task.task.labels(base)
        cfs = torch.stack([first.counterfactual(base, source, v) for v in first.variables])
        start = 0
        for i in members:
            d, n = drawn[i], drawn[i]["base"].shape[0]
            rows = torch.arange(start, start + n)
            out[i] = {**d, "labels": labels[rows], "iit_select": samplers[i].var_masks[d["iit_var"]],
                      "iit_labels": cfs[d["iit_var"], rows]}  # fmt: skip
            start += n
    return out


WORKER_FROM = 8  # members from which a stack draws its batches in a worker process


def data_workers(n_members: int, world: int = 1) -> int:
    """Worker processes drawing a stack's batches: one per :data:`WORKER_FROM` members,
    at most 8 and half of this process's share of the CPU cores (at least one)."""
    if n_members < WORKER_FROM:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(n_members // WORKER_FROM, 8, (cores or 2) // (2 * world)))


def shard_batch(batch: dict[str, Tensor], rank: int, world: int) -> dict[str, Tensor]:
    """Rows ``rank::world`` of every tensor of ``batch`` (the batch itself when ``world == 1``)."""
    if world == 1:
        return batch
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is outside world size {world}")
    return {k: v[rank::world] for k, v in batch.items()}


def check_world(t: TrainConfig, world: int) -> None:
    """Each of ``world`` processes gets an equal shard of every global batch (the mean
    of shard means is then the batch mean), and at least one validation row."""
    if t.batch_size % world:
        raise ValueError(
            f"batch_size {t.batch_size} (the global batch) is not divisible by the "
            f"{world} processes of the trainer; choose a multiple of {world}"
        )
    if t.val_size < world:
        raise ValueError(f"val_size {t.val_size} is smaller than the {world} processes")


class _Fixed(IterableDataset):
    """A fixed list of batches, as an iterable so that Lightning never wraps it in a
    ``DistributedSampler`` (the datamodule shards rows itself)."""

    def __init__(self, batches: list[dict[str, Tensor]]):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)


class _Stream(IterableDataset):
    def __init__(self, owner: Any):
        self.owner = owner

    def __iter__(self):
        """Steps from the owner's ``start_step``; with ``k`` DataLoader workers, worker
        ``w`` draws steps ``w, w + k, ...``, which the loader returns in turn (in order)."""
        info = get_worker_info()
        step, stride = self.owner.start_step, 1
        if info is not None:
            step, stride = step + info.id, info.num_workers
        while True:
            yield self.owner.train_batch(step)
            step += stride


def as_correspondence(
    correspondence: Correspondence | dict | None, task: TrainingTask, cfg: HookedTransformerConfig
) -> Correspondence:
    if correspondence is None:
        return default_correspondence(task.task, cfg)
    if not isinstance(correspondence, Correspondence):
        correspondence = Correspondence(correspondence)
    return correspondence.validate(task.task, cfg)


def as_model_config(model: HookedTransformerConfig | dict) -> HookedTransformerConfig:
    return (
        model
        if isinstance(model, HookedTransformerConfig)
        else HookedTransformerConfig.from_dict(dict(model))
    )


def as_train_config(train: TrainConfig | dict) -> TrainConfig:
    return train if isinstance(train, TrainConfig) else TrainConfig.from_dict(dict(train))


class SIITDataModule(L.LightningDataModule):
    """Endless seeded training stream + fixed validation set (see the module docstring).

    Arguments left ``None`` are taken from the :class:`SIITModule` being trained (its
    ``task``, ``model``, ``siit`` and ``correspondence``) when the trainer sets the
    datamodule up, so a CLI config states them once, under ``model``. A
    ``correspondence`` of ``None`` (on both) means :func:`default_correspondence`.
    Under DDP every rank draws the global batch and keeps its shard (module docstring).
    """

    def __init__(
        self,
        task: str | None = None,
        model: HookedTransformerConfig | None = None,
        siit: TrainConfig | None = None,
        correspondence: dict[str, list[str]] | None = None,
    ):
        super().__init__()
        self.args = {"task": task, "model": model, "siit": siit, "correspondence": correspondence}
        self.start_step = 0
        self._val: list[dict[str, Tensor]] | None = None
        self.sampler: SIITSampler | None = None
        if None not in (task, model, siit):
            self._build(task, model, siit, correspondence)

    def _build(self, task, model, siit, correspondence) -> None:
        self.ttask = resolve_task(task)
        self.cfg = as_model_config(model)
        self.train_cfg = as_train_config(siit)
        self.corr = as_correspondence(correspondence, self.ttask, self.cfg)
        self.sampler = SIITSampler(self.ttask, self.cfg, self.corr, self.train_cfg)

    def setup(self, stage: str) -> None:
        if self.sampler is not None:
            return
        module = (
            self.trainer.lightning_module if getattr(self, "trainer", None) is not None else None
        )
        args = dict(self.args)
        if module is not None:
            hp = module.hparams
            for key in ("task", "model", "siit"):
                args[key] = args[key] if args[key] is not None else hp[key]
            if args["correspondence"] is None:
                args["correspondence"] = hp["correspondence"]
        missing = [k for k in ("task", "model", "siit") if args[k] is None]
        if missing:
            raise ValueError(f"SIITDataModule needs {missing} (or an SIITModule to take them from)")
        self._build(args["task"], args["model"], args["siit"], args["correspondence"])

    def _check_world(self) -> None:
        check_world(self.train_cfg, self.world_size)

    @property
    def rank(self) -> int:
        trainer = getattr(self, "trainer", None)
        return trainer.global_rank if trainer is not None else 0

    @property
    def world_size(self) -> int:
        trainer = getattr(self, "trainer", None)
        return trainer.world_size if trainer is not None else 1

    def train_batch(self, step: int) -> dict[str, Tensor]:
        """This rank's shard of global training batch ``step``."""
        return shard_batch(self.sampler.train_batch(step), self.rank, self.world_size)

    def train_dataloader(self) -> DataLoader:
        self._check_world()
        return DataLoader(_Stream(self), batch_size=None, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        self._check_world()
        if self._val is None:
            self._val = self.sampler.fixed_set(self.train_cfg.val_size, "val")
        shards = [shard_batch(b, self.rank, self.world_size) for b in self._val]
        shards = [b for b in shards if len(b["base"])]
        return DataLoader(_Fixed(shards), batch_size=None, num_workers=0)

    def state_dict(self) -> dict[str, Any]:
        trainer = getattr(self, "trainer", None)
        return {"step": trainer.global_step if trainer is not None else self.start_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.start_step = int(state_dict.get("step", 0))
