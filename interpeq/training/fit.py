"""Train one member (``fit_member``) and evaluate a model on held-out data (``evaluate``)."""

from __future__ import annotations

import os
import pickle
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from interpeq.models import HookedTransformer, HookedTransformerConfig
from interpeq.seeds import generator
from interpeq.training.config import TrainConfig, resolve_task
from interpeq.training.correspondence import Correspondence
from interpeq.training.datamodule import SIITDataModule, SIITSampler
from interpeq.training.siit import SIITModule, ThresholdStopping, accuracies, siit_forward


@dataclass
class FitResult:
    """A trained member: the model (eval mode, CPU) and its held-out metrics."""

    model: HookedTransformer
    metrics: dict[str, float] = field(default_factory=dict)


@torch.no_grad()
def evaluate(
    model: HookedTransformer,
    task: str,
    correspondence: Correspondence,
    train: TrainConfig | None = None,
    n: int | None = None,
    stream: str = "test",
) -> dict[str, float]:
    """Held-out token-level ``acc``, ``iia``, ``strict_acc`` (+ ``_seq`` row-level versions).

    Rows come from the stream ``(train.seed, stream)`` (never used for training or
    validation). IIA is the mean over aligned variables of the accuracy when *that*
    variable is intervened on every row (per variable as ``iia/<var>``);
    ``strict_acc`` uses ``train.strict_mode``, and both modes are reported as
    ``strict_acc_one`` / ``strict_acc_subset``.
    """
    train = train or TrainConfig()
    n = n or train.test_size
    was_training = model.training
    model.eval()
    sampler = SIITSampler(resolve_task(task), model.cfg, correspondence, train)
    comps = model.components()
    weights = torch.ones(3)
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}

    def add(key: str, values: torch.Tensor) -> None:
        sums[key] = sums.get(key, 0.0) + float(values.sum())
        counts[key] = counts.get(key, 0.0) + values.numel()

    gen = generator(train.seed, stream)
    size = 4 * train.batch_size
    device = next(model.parameters()).device
    for start in range(0, n, size):
        rows = min(size, n - start)
        for v, var in enumerate(sampler.variables):
            batch = sampler.batch(rows, gen, var_idx=torch.full((rows,), v))
            for mode in ("one", "subset"):
                batch["strict_select"] = sampler.strict_select(rows, gen, mode)
                dev_batch = {k: t.to(device) for k, t in batch.items()}
                acc = accuracies(siit_forward(model, model, dev_batch, comps, weights), dev_batch)
                add(f"strict_acc_{mode}", acc["strict_acc"][0])
                add(f"strict_acc_{mode}_seq", acc["strict_acc"][1])
                if mode == "one":
                    add("acc", acc["acc"][0])
                    add("acc_seq", acc["acc"][1])
                    add(f"iia/{var}", acc["iia"][0])
                    add(f"iia_seq/{var}", acc["iia"][1])
    out = {k: sums[k] / counts[k] for k in sums}
    out["iia"] = sum(out[f"iia/{v}"] for v in sampler.variables) / len(sampler.variables)
    out["iia_seq"] = sum(out[f"iia_seq/{v}"] for v in sampler.variables) / len(sampler.variables)
    out["strict_acc"] = out[f"strict_acc_{train.strict_mode}"]
    out["strict_acc_seq"] = out[f"strict_acc_{train.strict_mode}_seq"]
    model.train(was_training)
    return out


def _finished(ckpt: dict[str, Any], train: TrainConfig) -> bool:
    if ckpt.get("global_step", 0) >= train.max_steps:
        return True
    states = ckpt.get("callbacks", {})
    return any(k.startswith("ThresholdStopping") and v.get("stopped") for k, v in states.items())


def load_checkpoint(path: Path, what: str = "that run") -> dict[str, Any]:
    """A Lightning checkpoint written by this package (plain values and tensors only).

    A truncated or corrupt file (a run killed while writing it, a bad disk) or one that
    is not such a checkpoint is a ``ValueError`` naming the file and the fix (delete it
    to restart ``what`` from scratch). Load a checkpoint with this before handing it to
    ``Trainer.fit(ckpt_path=...)``, so that Lightning never meets a broken file.
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, pickle.PickleError) as err:
        raise ValueError(_damaged(path, err, what)) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError(_damaged(path, "no 'state_dict' in it", what))
    return ckpt


def _damaged(path: Path, err: Any, what: str) -> str:
    cause = " ".join(str(err).split())
    if "PytorchStreamReader" in cause or "zip archive" in cause:
        cause = "not a complete zip archive"
    elif "Weights only load failed" in cause or isinstance(err, pickle.PickleError):
        cause = "cannot be read as a checkpoint"
    cause = cause if len(cause) <= 120 else cause[:117] + "..."
    return (
        f"checkpoint {path} is truncated or corrupt ({cause}); "
        f"delete it to restart {what} from scratch"
    )


def training_device(trainer_kwargs: dict[str, Any] | None = None) -> torch.device:
    """The device Lightning trains a member on (``accelerator`` ``"auto"`` by default):
    held-out evaluation runs there too, not on the host after training. Under DDP each
    rank takes its own GPU (``LOCAL_RANK``); ``devices=[k]`` names GPU ``k``."""
    kwargs = trainer_kwargs or {}
    if kwargs.get("accelerator", "auto") not in ("auto", "gpu", "cuda"):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        return torch.device("cpu")
    devices = kwargs.get("devices")
    local = int(os.environ.get("LOCAL_RANK", 0))
    index = devices[local] if isinstance(devices, list | tuple) else local
    return torch.device("cuda", index % torch.cuda.device_count())


def quiet_lightning_warnings() -> None:
    """Hide torch's ``LeafSpec`` deprecation, which Lightning's ``_pytree`` triggers once
    per fit (glued onto progress bars); it concerns Lightning, not the user. The
    ``interpeq`` command installs the same filter at start (:mod:`interpeq.cli`)."""
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*deprecated", category=FutureWarning)


def trainer_for(
    train: TrainConfig,
    ckpt_dir: Path,
    logger: Any = False,
    callbacks: Sequence[Callback] = (),
    trainer_kwargs: dict[str, Any] | None = None,
) -> L.Trainer:
    """The Lightning Trainer ``fit_member``/``fit_stacked`` use (overridable by ``trainer_kwargs``).

    Data parallelism: ``trainer_kwargs={"devices": 2, "strategy": "ddp"}`` (add
    ``"accelerator": "gpu"`` for GPUs, ``"num_nodes"`` for several machines); see
    ``docs/ddp.md``.
    """
    quiet_lightning_warnings()
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir, filename="{step}", save_last=True, every_n_train_steps=train.val_every
    )
    kwargs: dict[str, Any] = {
        "max_steps": train.max_steps,
        "val_check_interval": train.val_every,
        "check_val_every_n_epoch": None,
        "num_sanity_val_steps": 0,
        "logger": logger,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        # the best device there is (a GPU where one is, else the CPU); one per member or
        # stacked group: several GPUs serve several groups (the Ray launcher), not one
        "accelerator": "auto",
        "devices": 1,
        "default_root_dir": str(ckpt_dir),
        "callbacks": [ThresholdStopping(), checkpoint, *callbacks],
    }
    kwargs.update(trainer_kwargs or {})
    return L.Trainer(**kwargs)


def fit_member(
    *,
    task: str,
    model: HookedTransformerConfig,
    correspondence: Correspondence,
    train: TrainConfig,
    ckpt_dir: Path,
    logger: Any = False,
    callbacks: Sequence[Callback] = (),
    trainer_kwargs: dict[str, Any] | None = None,
    init_state: dict[str, Any] | None = None,
) -> FitResult:
    """Train one model with SIIT, checkpointing into ``ckpt_dir``; resume from ``last.ckpt``.

    ``init_state``: start from these weights (a ``HookedTransformer`` state dict)
    instead of the seeded initialisation, when there is no checkpoint to resume from
    (continuing a member that missed its thresholds).

    A finished checkpoint (max steps reached or thresholds met) is loaded without
    training. Returns the model (eval, CPU) and held-out metrics (:func:`evaluate`)
    plus ``steps`` and ``seconds`` (training wall time, summed over resumptions).

    With ``trainer_kwargs={"devices": N, "strategy": "ddp"}`` Lightning re-runs the
    calling script for ranks 1..N-1 (so call this from a script or ``python -m``, not
    ``python -c`` or a notebook); each rank trains on its shard of the same global
    batches as a 1-process run, rank 0 writes the checkpoints and logs, and every rank
    returns the same model and metrics. Guard any further writes of the calling script
    with ``lightning.fabric.utilities.rank_zero.rank_zero_only.rank == 0``.
    """
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    module = SIITModule(task=task, model=model, siit=train, correspondence=correspondence.to_dict())
    last = ckpt_dir / "last.ckpt"
    ckpt = load_checkpoint(last, "this member") if last.exists() else None
    pre = None
    if ckpt is None and init_state is None and train.pretrain_steps:
        pre = _pretrain(task, model, correspondence, train, ckpt_dir, trainer_kwargs)
        init_state = pre.model.state_dict()
    if ckpt is None and init_state is not None:
        module.net.load_state_dict(init_state)
    if ckpt is not None and _finished(ckpt, train):
        module.load_state_dict(ckpt["state_dict"])
        steps, seconds = int(ckpt["global_step"]), float(ckpt.get("interpeq_train_seconds", 0.0))
    else:
        data = SIITDataModule(
            task=task, model=model, siit=train, correspondence=correspondence.to_dict()
        )
        trainer = trainer_for(train, ckpt_dir, logger, callbacks, trainer_kwargs)
        start = time.perf_counter()
        trainer.fit(
            module,
            datamodule=data,
            ckpt_path=str(last) if ckpt is not None else None,
            weights_only=True,
        )
        trainer.save_checkpoint(last, weights_only=False)  # full state: resumable
        steps = trainer.global_step
        seconds = module.train_seconds or time.perf_counter() - start
    net = module.net.eval()
    metrics = evaluate(net.to(training_device(trainer_kwargs)), task, correspondence, train)
    net = net.cpu()
    metrics.update(steps=float(steps), seconds=float(seconds))
    pre_metrics = _pretrain_record(ckpt_dir) if pre is None else pre.metrics
    if pre_metrics:
        metrics["pretrain_steps"] = pre_metrics["steps"]
        metrics["seconds"] += pre_metrics["seconds"]
    return FitResult(model=net, metrics=metrics)


def _pretrain(task: str, model, correspondence, train: TrainConfig, ckpt_dir: Path, trainer_kwargs):
    """``train.pretrain_steps`` on the stage task's own inputs (``ckpt_dir/pretrain``,
    resumable like any member); see :class:`TrainConfig`."""
    stage = resolve_task(task)
    if stage.stage is None:
        raise ValueError(
            f"pretrain_steps applies to algorithm stages (pretraining on the stage task's own "
            f"inputs); {task!r} is a task trained on its own inputs already: set it to 0"
        )
    own = train.replace(max_steps=train.pretrain_steps, pretrain_steps=0, min_steps=0)
    return fit_member(
        task=stage.task.name, model=model, correspondence=correspondence, train=own,
        ckpt_dir=ckpt_dir / "pretrain", trainer_kwargs=trainer_kwargs,
    )  # fmt: skip


def _pretrain_record(ckpt_dir: Path) -> dict[str, float] | None:
    """Steps and seconds of a finished pretraining in ``ckpt_dir`` (a resumed member)."""
    last = ckpt_dir / "pretrain" / "last.ckpt"
    if not last.exists():
        return None
    ckpt = load_checkpoint(last, "this member's pretraining")
    return {
        "steps": float(ckpt["global_step"]),
        "seconds": float(ckpt.get("interpeq_train_seconds", 0.0)),
    }
