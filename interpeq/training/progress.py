"""Step-level progress of one member or stacked group: a bar that moves every step.

A stacked group of 36 members is one Lightning run of up to ``max_steps`` steps; a
zoo-level bar counting members would sit at ``0/36`` for its whole run. This callback
shows the steps, and after each validation how many members already meet their
early-stopping thresholds.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from tqdm.auto import tqdm

from interpeq.console import bars_disabled


class StepProgress(Callback):
    """A tqdm bar over the run's steps; ``label`` names the member or group."""

    def __init__(self, label: str, total: int, n_members: int = 1, position: int = 1) -> None:
        self.label, self.total, self.n_members, self.position = label, total, n_members, position
        self.bar: Any = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.bar = tqdm(
            total=self.total,
            initial=trainer.global_step,
            desc=self.label,
            unit="step",
            leave=False,
            position=self.position,
            disable=bars_disabled(),
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.bar is not None:
            self.bar.update(trainer.global_step - self.bar.n)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        met = getattr(pl_module, "members_meeting_thresholds", None)
        if self.bar is not None and met is not None:
            count = met(trainer.callback_metrics)
            self.bar.set_postfix_str(f"{count}/{self.n_members} at threshold")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
