"""Training configuration and training-task resolution.

Task names accepted by training:

* a catalogue task, e.g. ``"add_index"`` (inputs from the task's own sampler);
* a composed algorithm's stage, ``"algorithm_3/stage2"`` (0-based, as the ``s{k}.``
  prefixes of :mod:`interpeq.tasks.compose`): the stage's own task (labels,
  interpretation) on the stage-k input distribution, i.e. stage-0 samples pushed
  through the earlier stages (:meth:`Algorithm.stage_task_inputs`);
* a whole algorithm, ``"algorithm_1"`` (one model for the whole chain).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
from torch import Tensor

from interpeq.dataclass_io import from_dict
from interpeq.tasks import Task, get_algorithm, get_task, list_algorithms, list_tasks
from interpeq.tasks.names import parse_stage


@dataclass(frozen=True)
class TrainingTask:
    """What training needs of a task: its interpretation and an input distribution."""

    name: str
    task: Task  # labels, interventions and the causal model
    source: Task  # samples inputs (the algorithm for a stage, else ``task`` itself)
    stage: int | None = None

    @property
    def model(self):
        return self.task.model

    def sample(self, n: int, gen: torch.Generator) -> Tensor:
        if self.stage is None:
            return self.task.sample(n, gen)
        return self.source.stage_task_inputs(self.stage, n, gen)

    def sample_pairs(self, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.sample(n, gen), self.sample(n, gen)


@cache
def resolve_task(name: str) -> TrainingTask:
    """``"add_index"``, ``"algorithm_3/stage2"`` or ``"algorithm_1"`` -> :class:`TrainingTask`."""
    if not isinstance(name, str):
        raise ValueError(f"task must be a string, got {type(name).__name__}")
    stage = parse_stage(name)
    if stage:
        algo = get_algorithm(stage[0])
        k = stage[1]
        if not 0 <= k < len(algo.stages):
            raise ValueError(
                f"{name!r}: {algo.name} has stages 0..{len(algo.stages) - 1} "
                f"({', '.join(s.name for s in algo.stages)})"
            )
        return TrainingTask(name, algo.stages[k], algo, k)
    if name in list_algorithms():
        algo = get_algorithm(name)
        return TrainingTask(name, algo, algo)
    if name in list_tasks():
        task = get_task(name)
        return TrainingTask(name, task, task)
    raise ValueError(
        f"unknown task {name!r}; valid: tasks {list_tasks()}, algorithms {list_algorithms()}, "
        "or '<algorithm>/stage<k>'"
    )


STRICT_MODES = ("one", "subset")
SCHEDULES = ("constant", "cosine")


METRICS = ("acc", "iia", "strict_acc")  # what a threshold applies to (token level, 1..9)


@dataclass(frozen=True)
class Thresholds:
    """One bar per headline metric. The one type for both uses of a bar: early stopping
    on validation metrics (:attr:`TrainConfig.thresholds`, from its ``*_threshold``
    keys) and the ``converged`` flag on held-out metrics (``retry.thresholds`` of a zoo,
    :class:`interpeq.zoo.retry.RetrySpec`). A bar above 1 is never met (a run that must
    not stop early)."""

    acc: float = 0.95
    iia: float = 0.90
    strict_acc: float = 0.90

    def __post_init__(self) -> None:
        for name in METRICS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise ValueError(f"threshold {name} must be a number >= 0, got {v!r}")

    @classmethod
    def from_dict(cls, data: Any, what: str = "thresholds") -> Thresholds:
        if not isinstance(data, dict) or set(data) - set(METRICS):
            raise ValueError(f"{what} takes {list(METRICS)}, got {data!r}")
        return cls(**{k: float(v) for k, v in data.items()})

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    def met(self, metrics: dict[str, Any], prefix: str = "", suffix: str = "") -> bool:
        """Every ``<prefix><metric><suffix>`` of ``metrics`` reaches its bar."""
        for name in METRICS:
            value = metrics.get(f"{prefix}{name}{suffix}")
            if value is None or float(value) < getattr(self, name):
                return False
        return True

    def margin(self, metrics: dict[str, Any]) -> float:
        """The worst metric's distance to its bar (>= 0 when every bar is met)."""
        return min(float(metrics.get(k, 0.0)) - getattr(self, k) for k in METRICS)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of SIIT training (model architecture and init seed live in the model config).

    ``seed`` drives the data: training pairs, which variable/component each row
    intervenes on, and the held-out validation/test sets (derived streams, so
    validation and test never coincide with training draws).

    ``strict_mode``: ``"one"`` resample-patches one non-circuit component per row
    (the reference SIIT setting); ``"subset"`` patches each non-circuit component
    independently with probability ``subset_prob``. Validation's strict accuracy uses
    the same mode. Thresholds apply to *token-level* metrics over positions 1..9 and
    stop training once every validation metric reaches them (after ``min_steps``).

    ``pretrain_steps`` (algorithm stages only): train first on the stage task's *own*
    inputs for at most this many steps (stopping early at the thresholds), then on the
    stage's inputs from those weights. A stage whose inputs are a narrow distribution
    (e.g. ``alternating_parity`` on sorted sequences) can reach full accuracy through a
    route that bypasses a variable's component (IIA stuck near 0.86 at any length of
    training); learnt on the task's own inputs first, the mechanism carries over and
    holds on the stage's inputs (docs/toy_options.md).
    """

    seed: int = 0
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.01
    max_steps: int = 4000
    min_steps: int = 0
    warmup_steps: int = 100
    schedule: str = "cosine"
    min_lr_ratio: float = 0.05
    grad_clip: float | None = 1.0
    behaviour_weight: float = 1.0
    iit_weight: float = 1.0
    strict_weight: float = 0.4
    strict_mode: str = "one"
    subset_prob: float = 0.5
    acc_threshold: float = 0.97
    iia_threshold: float = 0.94
    strict_threshold: float = 0.94
    val_size: int = 1024
    val_every: int = 200
    test_size: int = 4096
    pretrain_steps: int = 0

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_steps", "val_size", "val_every", "test_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"TrainConfig.{name} must be a positive int, got {value!r}")
        for name in ("min_steps", "warmup_steps", "pretrain_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        if self.strict_mode not in STRICT_MODES:
            raise ValueError(
                f"unknown strict_mode {self.strict_mode!r}; choose one of {STRICT_MODES}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {SCHEDULES}")
        if not 0 < self.subset_prob <= 1:
            raise ValueError(f"subset_prob must be in (0, 1], got {self.subset_prob!r}")
        for name in ("behaviour_weight", "iit_weight", "strict_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def thresholds(self) -> Thresholds:
        """The early-stopping bars on validation metrics."""
        return Thresholds(self.acc_threshold, self.iia_threshold, self.strict_threshold)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return from_dict(cls, data, "train config")

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def lr_factor(self, step: int) -> float:
        """Multiplier of ``lr`` at optimiser step ``step`` (linear warmup, then constant/cosine)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        import math

        span = max(1, self.max_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (
            1 + math.cos(math.pi * progress)
        )
