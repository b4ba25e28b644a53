"""``ActivationCapture``: the representations of the model being trained, every N steps.

At step 0 (before the first update), every ``every_n_steps`` optimiser steps (or every
``every_n_epochs`` epochs) and at the end of training, the callback computes
:func:`interpeq.equivalence.representations` of the model being trained on a fixed,
seeded probe set (the same tokens at every capture) and stores a
:class:`CaptureRecord` ``(run_id, member_id, step, epoch, reprs [n, D])``:

* in memory (``capture.records``; ``capture.latest`` also holds co-implementations
  when a listener asked for them) and passed to listeners such as
  :class:`interpeq.callbacks.EquivalenceTracker`;
* on disk as a ``datasets.Dataset`` (``save_to_disk``) in ``<save_dir>/captures``
  (default ``save_dir``: the trainer's ``default_root_dir``, i.e. the run's folder in
  ``checkpoints/``), rewritten after every capture; the probe tokens go to
  ``<save_dir>/captures_probes`` (a stacked run: ``<save_dir>/<member>/captures``, one
  folder per member). ``datasets.load_from_disk`` reads them back.

Forward hooks exist only during a capture (``run_with_cache`` adds and removes them);
everything runs under ``torch.no_grad()`` in eval mode (the training flag is restored),
so no graph is kept and training is unaffected.

**Stacked training** (:class:`interpeq.training.stacked.StackedSIITModule`): one record
per member per capture (``member_ids`` names them; default ``member<k>``).

**DDP** (``Trainer(devices=N, strategy="ddp")``): captured **once, on global rank 0**,
not sharded. The probe set is small (a few hundred rows, one forward pass per capture
plus the co-implementations), so sharding it would save little and would need a
gather, i.e. a collective that every rank has to reach at the same step; rank 0
alone needs the result (it is the rank that logs and writes). DDP keeps the weights
identical on every rank, so rank 0's capture is the model's capture. The callback
calls no collective (rank 0 runs the model's own forward, not the DDP wrapper's,
under ``no_grad``), so the other ranks simply go on to the next step and wait for
rank 0 in the next gradient all-reduce. On ranks > 0 ``records`` stays empty, no
listener is called and nothing is written. A 1-process and a 2-process run of the
same member (:class:`~interpeq.training.SIITDataModule` feeds both the same global
batches) capture the same representations to float rounding
(``tests/training/test_ddp.py``).

**Probes**: ``probes`` (a token tensor) if given, else ``n_probes`` rows of the
``probe_task`` sampler (default: the trained task, first member's for stacked runs)
seeded by ``probe_seed``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from interpeq.equivalence import co_implementations, representations


@dataclass
class CaptureRecord:
    run_id: str
    member_id: str
    step: int
    epoch: int
    reprs: Tensor  # [n, D] float32, CPU
    impls: Tensor | None = None  # [m, n, D] when requested (kept only in ``latest``)


def _positive_or_none(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int (or None), got {value!r}")
    return value


def trained_models(pl_module: L.LightningModule) -> tuple[list, list, list[str]]:
    """``(models, correspondences, task names)`` of a SIIT module (one) or a stacked one (M)."""
    if hasattr(pl_module, "unstack") and hasattr(pl_module, "corrs"):
        return pl_module.unstack(), list(pl_module.corrs), list(pl_module.tasks)
    if hasattr(pl_module, "net") and hasattr(pl_module, "corr"):
        return [pl_module.net], [pl_module.corr], [pl_module.ttask.name]
    raise ValueError(
        f"ActivationCapture needs an interpeq SIITModule or StackedSIITModule, got {type(pl_module).__name__}"
    )


def model_configs(pl_module: L.LightningModule) -> list:
    if hasattr(pl_module, "cfgs"):
        return list(pl_module.cfgs)
    if hasattr(pl_module, "cfg"):
        return [pl_module.cfg]
    return [m.cfg for m in trained_models(pl_module)[0]]


class ActivationCapture(Callback):
    """Capture the trained model's representations on fixed probes; see the module doc."""

    def __init__(
        self,
        every_n_steps: int | None = 500,
        *,
        every_n_epochs: int | None = None,
        n_probes: int = 256,
        probe_seed: int = 0,
        probes: Tensor | None = None,
        probe_task: str | None = None,
        save_dir: str | Path | None = None,
        save: bool = True,
        run_id: str | None = None,
        member_ids: Sequence[str] | None = None,
        at_start: bool = True,
        at_end: bool = True,
        repr_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if every_n_epochs is not None and every_n_steps is not None:
            raise ValueError(
                "give every_n_steps or every_n_epochs, not both (set the other to None)"
            )
        self.every_n_steps = _positive_or_none("every_n_steps", every_n_steps)
        self.every_n_epochs = _positive_or_none("every_n_epochs", every_n_epochs)
        if self.every_n_steps is None and self.every_n_epochs is None:
            raise ValueError(
                "ActivationCapture needs every_n_steps or every_n_epochs (a positive int)"
            )
        if isinstance(n_probes, bool) or not isinstance(n_probes, int) or n_probes < 5:
            raise ValueError(f"n_probes must be an int >= 5, got {n_probes!r}")
        if probes is not None:
            if not isinstance(probes, Tensor) or probes.ndim != 2 or probes.dtype.is_floating_point:
                raise ValueError("probes must be an integer token tensor [n, seq_len]")
        if probe_task is not None:
            from interpeq.training import resolve_task

            resolve_task(probe_task)  # raises ValueError listing valid tasks
        self.n_probes, self.probe_seed, self.probe_task = n_probes, probe_seed, probe_task
        self._probes = probes.cpu() if probes is not None else None
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self.save = save
        self.run_id = run_id
        self.member_ids = list(member_ids) if member_ids is not None else None
        self.at_start, self.at_end = at_start, at_end
        self.repr_kwargs = dict(repr_kwargs or {})
        self.records: list[CaptureRecord] = []
        self.latest: list[CaptureRecord] = []
        # the models of the latest capture, with their correspondences, for listeners
        # (a stacked module's are unstacked copies; a single model is the live one)
        self.latest_models: list[tuple[Any, Any]] = []
        self.listeners: list[
            Callable[[L.Trainer, L.LightningModule, list[CaptureRecord]], None]
        ] = []
        self.impls_m: int | None = None
        self.impls_seed = 0
        self.seconds = 0.0
        self._steps_done: set[int] = set()

    # -- configuration by other callbacks ---------------------------------------------
    def add_listener(
        self, fn: Callable[[L.Trainer, L.LightningModule, list[CaptureRecord]], None]
    ) -> None:
        """``fn(trainer, pl_module, records)`` after each capture (rank 0 only)."""
        if fn not in self.listeners:
            self.listeners.append(fn)

    def request_impls(self, m: int, seed: int = 0) -> None:
        """Also compute ``m`` co-implementations (seeded, the same draws at every capture)."""
        if self.impls_m is not None and (self.impls_m, self.impls_seed) != (m, seed):
            raise ValueError(
                f"co-implementations already requested with m={self.impls_m}, seed={self.impls_seed}; "
                f"cannot also use m={m}, seed={seed}"
            )
        self.impls_m, self.impls_seed = m, seed

    def probes(self, pl_module: L.LightningModule) -> Tensor:
        """The probe tokens (sampled once, then fixed)."""
        if self._probes is None:
            from interpeq.seeds import generator
            from interpeq.training import resolve_task

            task = self.probe_task or trained_models_task(pl_module)
            self._probes = resolve_task(task).sample(
                self.n_probes, generator(self.probe_seed, "capture-probes", task)
            )
        return self._probes

    def ids(self, trainer: L.Trainer, n_members: int) -> tuple[str, list[str]]:
        run_id = self.run_id or Path(trainer.default_root_dir).name
        if self.member_ids is not None:
            if len(self.member_ids) != n_members:
                raise ValueError(
                    f"member_ids has {len(self.member_ids)} names for {n_members} trained members"
                )
            return run_id, self.member_ids
        return run_id, [run_id] if n_members == 1 else [f"member{k}" for k in range(n_members)]

    def out_dir(self, trainer: L.Trainer) -> Path:
        return self.save_dir if self.save_dir is not None else Path(trainer.default_root_dir)

    # -- Lightning hooks --------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        tokens = self.probes(pl_module)
        for cfg in model_configs(pl_module):
            if int(tokens.max()) >= cfg.d_vocab or tokens.shape[1] > cfg.n_ctx:
                raise ValueError(
                    f"probe tokens (max {int(tokens.max())}, length {tokens.shape[1]}) do not fit the "
                    f"trained model's vocabulary {cfg.d_vocab} / context {cfg.n_ctx}"
                )
        self.ids(trainer, len(model_configs(pl_module)))  # checks member_ids
        if trainer.is_global_zero and self.save:
            self._load_previous(trainer)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.at_start:
            self.capture(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self.capture(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.capture(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.at_end:
            self.capture(trainer, pl_module)

    # -- the capture ------------------------------------------------------------------
    def capture(self, trainer: L.Trainer, pl_module: L.LightningModule) -> list[CaptureRecord]:
        """Capture now (once per global step; rank 0 only). Returns the new records."""
        step = int(trainer.global_step)
        if not trainer.is_global_zero or step in self._steps_done:
            return []
        import time

        t0 = time.perf_counter()
        self._steps_done.add(step)
        models, corrs, _ = trained_models(pl_module)
        run_id, member_ids = self.ids(trainer, len(models))
        new = []
        for model, corr, mid in zip(models, corrs, member_ids, strict=True):
            device = next(model.parameters()).device
            tokens = self.probes(pl_module).to(device)
            reprs = representations(model, tokens, **self.repr_kwargs).cpu()
            impls = None
            if self.impls_m:
                impls = co_implementations(
                    model, corr, tokens, self.impls_m, self.impls_seed, **self.repr_kwargs
                ).cpu()
            new.append(CaptureRecord(run_id, mid, step, int(trainer.current_epoch), reprs, impls))
        self.latest = new
        self.latest_models = list(zip(models, corrs, strict=True))
        self.records.extend(
            CaptureRecord(r.run_id, r.member_id, r.step, r.epoch, r.reprs) for r in new
        )
        if self.save:
            self._write(trainer)
        self.seconds += time.perf_counter() - t0
        for fn in self.listeners:
            fn(trainer, pl_module, new)
        return new

    def _member_dirs(self, out: Path) -> dict[str, Path]:
        """Where each member's captures go: ``out`` for a single member; for a stacked
        run ``out/<member id>``, so that every member's folder looks like a lone run's."""
        ids = list(dict.fromkeys(r.member_id for r in self.records))
        return {ids[0]: out} if len(ids) == 1 else {m: out / m for m in ids}

    def _write(self, trainer: L.Trainer) -> None:
        import datasets

        out = self.out_dir(trainer)
        bars = not datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()  # one bar per capture would flood the console
        try:
            for member, folder in self._member_dirs(out).items():
                self._write_member(folder, [r for r in self.records if r.member_id == member])
        finally:
            if not bars:
                datasets.enable_progress_bars()

    def _write_member(self, out: Path, records: list[CaptureRecord]) -> None:
        from datasets import Array2D, Dataset, Features, Value

        out.mkdir(parents=True, exist_ok=True)
        n, d = records[0].reprs.shape
        features = Features(
            {
                "run_id": Value("string"),
                "member_id": Value("string"),
                "step": Value("int64"),
                "epoch": Value("int64"),
                "reprs": Array2D(shape=(n, d), dtype="float32"),
            }
        )
        rows = [r for r in records if tuple(r.reprs.shape) == (n, d)]
        ds = Dataset.from_dict(
            {
                "run_id": [r.run_id for r in rows],
                "member_id": [r.member_id for r in rows],
                "step": [r.step for r in rows],
                "epoch": [r.epoch for r in rows],
                "reprs": [r.reprs.numpy() for r in rows],
            },
            features=features,
        )
        tmp, final = out / "captures.tmp", out / "captures"
        shutil.rmtree(tmp, ignore_errors=True)
        ds.save_to_disk(str(tmp))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        probes = out / "captures_probes"
        if not probes.exists():
            Dataset.from_dict({"tokens": self._probes.tolist()}).save_to_disk(str(probes))

    def _load_previous(self, trainer: L.Trainer) -> None:
        """On resume: keep the records an interrupted run of this folder already wrote."""
        out = self.out_dir(trainer)
        ids = self.member_ids or []
        paths = [out / "captures"] if len(ids) <= 1 else [out / m / "captures" for m in ids]
        if self.records or not all(p.exists() for p in paths):
            return
        try:
            from datasets import concatenate_datasets, load_from_disk

            parts = [load_from_disk(str(p)) for p in paths]
            ds = concatenate_datasets(parts).with_format("torch")
        except Exception:  # noqa: BLE001 - a stale or partial folder: start afresh
            return
        for row in ds:
            self.records.append(
                CaptureRecord(
                    row["run_id"],
                    row["member_id"],
                    int(row["step"]),
                    int(row["epoch"]),
                    row["reprs"].float(),
                )
            )
            self._steps_done.add(int(row["step"]))


def trained_models_task(pl_module: L.LightningModule) -> str:
    if hasattr(pl_module, "tasks"):
        return pl_module.tasks[0]
    return pl_module.ttask.name


def load_captures(save_dir: str | Path):
    """The captures ``datasets.Dataset`` written under ``save_dir`` (torch format)."""
    from datasets import load_from_disk

    path = Path(save_dir) / "captures"
    if not path.exists():
        raise ValueError(
            f"{path}: no captures (was ActivationCapture run with save_dir={save_dir}?)"
        )
    return load_from_disk(str(path)).with_format("torch")
