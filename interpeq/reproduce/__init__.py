"""Experiments that reproduce the paper and go past it, each one command.

``interpeq reproduce toy --scale cpu|paper`` (:mod:`interpeq.reproduce.toy`),
``interpeq reproduce matched`` and ``interpeq reproduce settings``
(:mod:`interpeq.reproduce.studies`). Configs live in ``configs/experiment/``;
zoos train resumably into ``checkpoints/<zoo>/`` and reports go to
``checkpoints/<zoo>/report/``.
"""

from interpeq.reproduce.config import ExperimentConfig, experiment_path

__all__ = ["ExperimentConfig", "experiment_path"]
