"""Strict interchange-intervention training (SIIT) as a LightningModule.

One step = two forward passes of the model: the source run (gradient-free, caching
every head's ``hook_z`` and every ``hook_mlp_out``) and one base run of ``3 x batch``
rows patched with a per-row ``select`` mask over ``model.components()``:

* rows ``0..b``: nothing patched -> behaviour loss against ``labels``;
* rows ``b..2b``: the drawn variable's aligned components from the source -> IIT loss
  against the counterfactual labels;
* rows ``2b..3b``: the drawn non-circuit component(s) from the source -> strict loss
  against ``labels``.

:func:`siit_forward` is written against ``(net, run)`` so the same code serves a
plain module and a ``functional_call`` under ``torch.func.vmap`` (stacked training).

Metrics are token-level accuracies over positions 1..9 (``val/acc``, ``val/iia``,
``val/strict_acc``: the thresholds apply to these); sequence-level versions (every
position right) are logged as ``val/acc_seq`` etc. for information.

Under DDP (``devices=N, strategy="ddp"``) each rank runs this step on its shard of the
global batch (:mod:`interpeq.training.datamodule`); the step itself draws no random
numbers, so the averaged gradient is the 1-process one. ``val/*`` metrics are
torchmetrics ``MeanMetric`` objects, synced over the ranks at epoch end (every rank gets the
same values, hence the same :class:`ThresholdStopping` decision); ``train/*`` step
values are rank 0's shard, not synced (no collective per step).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from torchmetrics import MeanMetric

from interpeq.models import (
    Component,
    HookedTransformer,
    HookedTransformerConfig,
    patch_hooks,
    required_hooks,
)
from interpeq.tasks import IGNORE_INDEX
from interpeq.training.config import TrainConfig, resolve_task
from interpeq.training.datamodule import as_correspondence, as_model_config, as_train_config
from interpeq.training.fused import PARTS, component_masks, fused_siit_step, part_losses

METRICS = ("acc", "iia", "strict_acc")


def siit_forward(
    net: HookedTransformer,
    run: Callable[[Tensor], Tensor],
    batch: dict[str, Tensor],
    components: Sequence[Component],
    weights: Tensor | Sequence[float],
) -> dict[str, Tensor]:
    """Losses and predictions of one SIIT step.

    ``run(tokens) -> logits`` evaluates the model (``net`` itself, or a
    ``functional_call`` on ``net``); hooks are registered on ``net``. Returns
    ``loss`` (weighted sum), ``loss_<part>`` and ``preds_<part>`` (argmax ``[b, pos]``).
    """
    cache: dict[str, Tensor] = {}

    def save(act: Tensor, hook) -> None:
        cache[hook.name] = act.detach()

    with torch.no_grad(), net.hooks([(name, save) for name in required_hooks(components)]):
        run(batch["source"])
    select = torch.cat(
        [torch.zeros_like(batch["iit_select"]), batch["iit_select"], batch["strict_select"]]
    )
    tripled = {k: torch.cat([v, v, v]) for k, v in cache.items()}
    with net.hooks(patch_hooks(tripled, components, select)):
        logits = run(torch.cat([batch["base"]] * 3))
    return part_losses(logits, batch, weights)


def accuracies(
    out: dict[str, Tensor], batch: dict[str, Tensor]
) -> dict[str, tuple[Tensor, Tensor]]:
    """Per metric: (token-level correct over valid positions, per-row all-correct)."""
    targets = {"acc": batch["labels"], "iia": batch["iit_labels"], "strict_acc": batch["labels"]}
    res = {}
    for metric, part in zip(METRICS, PARTS, strict=True):
        target = targets[metric]
        valid = target != IGNORE_INDEX
        correct = out[f"preds_{part}"] == target
        res[metric] = (correct[valid].float(), (correct | ~valid).all(-1).float())
    return res


class TrainClock:
    """Lightning hooks keeping training wall time across resumptions (in the checkpoint),
    shared by single and stacked modules."""

    train_seconds: float = 0.0
    _t0: float | None = None

    def on_train_start(self) -> None:
        self._t0 = time.perf_counter()

    def _elapsed(self) -> float:
        return self.train_seconds + (
            time.perf_counter() - self._t0 if self._t0 is not None else 0.0
        )

    def on_train_end(self) -> None:
        self.train_seconds, self._t0 = self._elapsed(), None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["interpeq_train_seconds"] = self._elapsed()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.train_seconds = float(checkpoint.get("interpeq_train_seconds", 0.0))


class SIITModule(TrainClock, L.LightningModule):
    """A :class:`HookedTransformer` trained with SIIT on ``task`` under ``correspondence``.

    ``correspondence=None`` uses :func:`default_correspondence`. ``model.seed`` seeds
    the weight initialisation; ``siit.seed`` the data.
    """

    def __init__(
        self,
        task: str = "add_index",
        model: HookedTransformerConfig = HookedTransformerConfig(),  # noqa: B008
        siit: TrainConfig = TrainConfig(),  # noqa: B008
        correspondence: dict[str, list[str]] | None = None,
    ):
        super().__init__()
        self.ttask = resolve_task(task)
        self.cfg = as_model_config(model)
        self.train_cfg = as_train_config(siit)
        self.corr = as_correspondence(correspondence, self.ttask, self.cfg)
        # plain values only, so checkpoints load without unpickling our classes
        self.save_hyperparameters(
            {
                "task": task,
                "model": self.cfg.to_dict(),
                "siit": self.train_cfg.to_dict(),
                "correspondence": self.corr.to_dict(),
            }
        )
        self.net = HookedTransformer(self.cfg)
        self.components = self.net.components()
        t = self.train_cfg
        self.register_buffer(
            "weights",
            torch.tensor([t.behaviour_weight, t.iit_weight, t.strict_weight]),
            persistent=False,
        )
        for name, mask in zip(
            ("head_map", "mlp_map"), component_masks(self.components, self.cfg), strict=True
        ):
            self.register_buffer(name, mask, persistent=False)
        self.train_acc = MeanMetric()
        self.val_metrics = torch.nn.ModuleDict(
            {f"{m}{suffix}": MeanMetric() for m in METRICS for suffix in ("", "_seq")}
        )
        self.train_seconds = 0.0
        self._t0: float | None = None

    def forward(self, tokens: Tensor) -> Tensor:
        return self.net(tokens)

    #: ``"fused"``: the hand-batched step of :mod:`interpeq.training.fused` with one
    #: member (same losses as ``"hooks"``, about 1.3x faster on CPU); ``"hooks"``:
    #: :func:`siit_forward` through the model's hooks (the reference).
    impl: str = "fused"

    def _step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.impl == "hooks":
            return siit_forward(self.net, self.net, batch, self.components, self.weights)
        params = {name: p[None] for name, p in self.net.named_parameters()}
        masks = (self.head_map, self.mlp_map)
        out = fused_siit_step(
            params, {k: v[None] for k, v in batch.items()}, self.cfg, masks, self.weights[None]
        )
        return {k: v[0] for k, v in out.items()}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self._step(batch)
        for part in PARTS:
            self.log(f"train/loss_{part}", out[f"loss_{part}"].detach())
        self.log("train/loss", out["loss"].detach(), prog_bar=True)
        tokens, _ = accuracies(out, batch)["acc"]
        self.train_acc(tokens)
        self.log("train/acc", self.train_acc, on_step=True, on_epoch=False)
        return out["loss"]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        out = self._step(batch)
        for metric, (tokens, rows) in accuracies(out, batch).items():
            self.val_metrics[metric].update(tokens)
            self.val_metrics[f"{metric}_seq"].update(rows)
        for name, metric in self.val_metrics.items():
            self.log(f"val/{name}", metric, on_step=False, on_epoch=True, prog_bar=name in METRICS)

    def configure_optimizers(self) -> Any:
        t = self.train_cfg
        opt = torch.optim.AdamW(self.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, t.lr_factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_before_optimizer_step(self, optimizer) -> None:
        if self.train_cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.parameters(), self.train_cfg.grad_clip)

    def thresholds_met(self, metrics: dict[str, Tensor]) -> bool:
        return _thresholds_met(self.train_cfg, metrics, "")


def _thresholds_met(train: TrainConfig, metrics: dict[str, Tensor], suffix: str) -> bool:
    return train.thresholds.met(metrics, prefix="val/", suffix=suffix)


class ThresholdStopping(Callback):
    """Stop once every validation metric reaches its threshold (``pl_module.thresholds_met``).

    Decided from ``trainer.callback_metrics`` (synchronised torchmetrics values), so
    every DDP rank takes the same decision. ``stopped`` is kept in checkpoints.
    """

    def __init__(self) -> None:
        self.stopped = False
        self.stopped_at: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        train = pl_module.train_cfg
        if trainer.global_step >= train.min_steps and pl_module.thresholds_met(
            trainer.callback_metrics
        ):
            trainer.should_stop = True
            self.stopped, self.stopped_at = True, trainer.global_step

    def state_dict(self) -> dict[str, Any]:
        return {"stopped": self.stopped, "stopped_at": self.stopped_at}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.stopped = bool(state_dict.get("stopped", False))
        self.stopped_at = state_dict.get("stopped_at")
