"""Experiment configs (``configs/experiment/<experiment>_<scale>.yaml``).

An experiment config is a zoo spec (``zoo:``, exactly what ``interpeq zoo`` reads), the
comparison settings (``compare:``) and, for the toy, the paper's numbers to report
beside ours (``paper:``). It is read with ``yaml.safe_load`` and validated before any
training is spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from interpeq.compare.options import OPTION_DEFAULTS, CompareOptions
from interpeq.resources import config_path
from interpeq.zoo import ZooSpec

EXPERIMENTS_DIR = config_path("experiment")
EXPERIMENTS = ("toy", "matched", "settings")
SCALES = ("cpu", "paper")
TOP_KEYS = {"experiment", "zoo", "compare", "paper"}
COMPARE_OPTIONS = ("n_probes", "m", "alpha", "seed", "impls", "probes", "similarity", "reference")
COMPOSE = ("chains", "paper")
_DEFAULT = OPTION_DEFAULTS  # one declaration: interpeq.compare.options.CompareOptions


@dataclass
class CompareSettings:
    """How an experiment's units are compared: the comparison's options (defaults and
    checks of :class:`~interpeq.compare.options.CompareOptions`) with ``impls`` a list
    (``impls[0]`` is the headline null, all are reported) and the studies' own keys."""

    n_probes: int = _DEFAULT["n_probes"]
    m: int = _DEFAULT["m"]
    alpha: float = _DEFAULT["alpha"]
    seed: int = _DEFAULT["seed"]
    impls: list[str] = field(default_factory=lambda: [_DEFAULT["impls"]])
    probes: str = _DEFAULT["probes"]
    similarity: str = _DEFAULT["similarity"]
    reference: bool = False  # also the paper code's circuit-patching fraction (toy)
    # matched: the mechanism study's other readings (representation or similarity names)
    readings: list[str] = field(default_factory=list)
    # toy: "paper" also composes each algorithm as the paper code does, from a per-task
    # zoo (interpeq.reproduce.paper_composition): paper_k models per stage, every path
    compose: str = "chains"
    paper_k: int = 5
    paper_max_paths: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.impls, str):
            self.impls = [self.impls]
        if not isinstance(self.impls, list) or not self.impls:
            raise ValueError(f"compare.impls must be a non-empty list, got {self.impls!r}")
        shared = {k: getattr(self, k) for k in COMPARE_OPTIONS if k != "impls"}
        for impls in self.impls:
            CompareOptions(impls=impls, **shared)
        self._check_readings()
        if self.compose not in COMPOSE:
            raise ValueError(
                f"compare.compose must be one of {list(COMPOSE)}, got {self.compose!r}"
            )
        for name in ("paper_k", "paper_max_paths"):
            v = getattr(self, name)
            if (v is not None or name == "paper_k") and (
                isinstance(v, bool) or not isinstance(v, int) or v < 1
            ):
                raise ValueError(f"compare.{name} must be a positive int, got {v!r}")

    def _check_readings(self) -> None:
        from interpeq.equivalence import REPRESENTATIONS, SIMILARITY_METHODS, representation_options

        if not isinstance(self.readings, list):
            raise ValueError(f"compare.readings must be a list, got {self.readings!r}")
        for reading in self.readings:
            if reading in SIMILARITY_METHODS:
                continue
            try:
                representation_options(str(reading))
            except ValueError:
                raise ValueError(
                    f"compare.readings: unknown reading {reading!r}; choose representations "
                    f"({', '.join(REPRESENTATIONS)}) or similarities ({', '.join(SIMILARITY_METHODS)})"
                ) from None


@dataclass
class ExperimentConfig:
    experiment: str
    zoo: ZooSpec
    compare: CompareSettings
    paper: dict[str, float]
    raw: dict[str, Any]  # the file as read, written back into the report
    path: Path | None = None
    pipeline: Any = None  # interpeq.experiment.ExperimentSpec of the zoo: section

    @classmethod
    def from_yaml(cls, path: str | Path) -> ExperimentConfig:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"experiment config {str(path)!r} does not exist")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ValueError(f"experiment config {str(path)!r} is not valid YAML: {err}") from None
        cfg = cls.from_dict(data)
        cfg.path = path
        return cfg

    @classmethod
    def from_dict(cls, data: Any) -> ExperimentConfig:
        if not isinstance(data, dict):
            raise ValueError(f"an experiment config is a mapping with keys {sorted(TOP_KEYS)}")
        unknown = sorted(set(data) - TOP_KEYS)
        if unknown:
            raise ValueError(f"unknown experiment config keys {unknown}; valid: {sorted(TOP_KEYS)}")
        experiment = data.get("experiment")
        if experiment not in EXPERIMENTS:
            raise ValueError(f"'experiment' must be one of {list(EXPERIMENTS)}, got {experiment!r}")
        if not isinstance(data.get("zoo"), dict):
            raise ValueError("an experiment config needs a 'zoo:' mapping (a zoo spec)")
        comp = dict(data.get("compare") or {})
        bad = sorted(set(comp) - {f.name for f in fields(CompareSettings)})
        if bad:
            valid = sorted(f.name for f in fields(CompareSettings))
            raise ValueError(f"unknown compare keys {bad}; valid: {valid}")
        from interpeq.experiment import ExperimentSpec

        pipeline = ExperimentSpec.from_dict(data["zoo"])
        return cls(
            experiment=experiment,
            zoo=pipeline.zoo,
            pipeline=pipeline,
            compare=CompareSettings(**comp),
            paper={k: float(v) for k, v in (data.get("paper") or {}).items()},
            raw=data,
        )


def experiment_path(experiment: str, scale: str) -> Path:
    """``configs/experiment/<experiment>_<scale>.yaml``, checked to exist."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose one of {list(EXPERIMENTS)}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {list(SCALES)}")
    path = EXPERIMENTS_DIR / f"{experiment}_{scale}.yaml"
    if not path.is_file():
        raise ValueError(f"no config for {experiment} at scale {scale}: {path} is missing")
    return path
