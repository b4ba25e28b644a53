"""SIIT training: correspondences, the Lightning module/datamodule, stacked training, weights I/O."""

from interpeq.training.config import TrainConfig, TrainingTask, resolve_task
from interpeq.training.correspondence import (
    Correspondence,
    default_correspondence,
    heads_needed,
    model_components,
    sample_correspondence,
)
from interpeq.training.datamodule import SIITDataModule, SIITSampler
from interpeq.training.fit import FitResult, evaluate, fit_member
from interpeq.training.siit import SIITModule, ThresholdStopping, siit_forward

__all__ = [
    "Correspondence",
    "FitResult",
    "SIITDataModule",
    "SIITModule",
    "SIITSampler",
    "ThresholdStopping",
    "TrainConfig",
    "TrainingTask",
    "default_correspondence",
    "evaluate",
    "fit_member",
    "heads_needed",
    "model_components",
    "resolve_task",
    "sample_correspondence",
    "siit_forward",
]
