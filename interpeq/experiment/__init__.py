"""The experiment pipeline: one zoo YAML -> train (stacked, tracked, logged) -> compare."""

from interpeq.experiment.pipeline import ExperimentResult, run_experiment
from interpeq.experiment.spec import CompareSpec, ExperimentSpec, LoggerSpec, TrackingSpec

__all__ = [
    "CompareSpec",
    "ExperimentResult",
    "ExperimentSpec",
    "LoggerSpec",
    "TrackingSpec",
    "run_experiment",
]
