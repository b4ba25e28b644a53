"""The IOI study's config (``configs/experiment/ioi.yaml``) and its model list.

A model entry is a hub name (``gpt2``, ``gpt2-medium``, ``pythia-160m`` -- short Pythia
names mean ``EleutherAI/pythia-*``), a local folder written by ``save_pretrained``, or
``family=path`` to set the family (the comparison's group) explicitly. Otherwise the
family is read from the loaded model's ``model_type`` (``gpt2`` -> gpt2, ``gpt_neox``
-> pythia). Every key is validated before any model is loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from interpeq.equivalence.defaults import DEFAULT_ALPHA, DEFAULT_M
from interpeq.equivalence.pairwise import check_test_options
from interpeq.lm.circuits import METRICS, RULES
from interpeq.lm.ioi import CORRUPTIONS
from interpeq.resources import config_path

PAPER = {"within_gpt2": 0.92, "within_pythia": 0.73, "across": 0.13}
HUB_ALIASES = {"gpt2-small": "gpt2"}


def default_config() -> Path:
    """``configs/experiment/ioi.yaml``, the packaged config (:mod:`interpeq.resources`)."""
    return config_path("experiment", "ioi.yaml")


@dataclass(frozen=True)
class ModelSpec:
    """One model of the comparison: what to load, its short id and (optional) family."""

    source: str  # hub id or local folder
    id: str
    family: str | None = None

    @staticmethod
    def parse(entry: str) -> ModelSpec:
        entry = str(entry).strip()
        family = None
        if "=" in entry:
            family, entry = (s.strip() for s in entry.split("=", 1))
            if not family or not entry:
                raise ValueError(f"model entry {entry!r}: expected 'family=path'")
        path = Path(entry).expanduser()
        if path.exists():
            return ModelSpec(str(path), path.name, family)
        source = HUB_ALIASES.get(entry, entry)
        if source.startswith("pythia-"):
            source = f"EleutherAI/{source}"
        return ModelSpec(source, source.split("/")[-1], family)


@dataclass
class CircuitRule:
    rule: str = "fraction"
    fraction: float = 0.8
    k: int = 20
    metric: str = "kl"

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"circuit.rule must be one of {list(RULES)}, got {self.rule!r}")
        if self.metric not in METRICS:
            raise ValueError(f"circuit.metric must be one of {list(METRICS)}, got {self.metric!r}")
        if not 0 < float(self.fraction) <= 1:
            raise ValueError(f"circuit.fraction must be in (0, 1], got {self.fraction!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"circuit.k must be a positive int, got {self.k!r}")


@dataclass
class IOIConfig:
    """Everything ``interpeq reproduce ioi`` needs; see ``configs/experiment/ioi.yaml``."""

    models: list[str] = field(
        default_factory=lambda: ["gpt2", "gpt2-medium", "pythia-160m", "pythia-410m"]
    )
    n_prompts: int = 1000
    seed: int = 0
    corruption: str = "s2_io"
    prepend_bos: bool = True
    m: int = DEFAULT_M
    alpha: float = DEFAULT_ALPHA
    # the pairwise test's null (interpeq.equivalence.pairwise_congruity): "auto", the
    # calibrated null, needs >= 4 models per family (else its pairs are undecidable);
    # "intervention": the raw draws, assumed to move a model as far as retraining does
    impls: str = "auto"
    p_include: float = 0.5
    apply_ln: bool | str = True
    circuit: CircuitRule = field(default_factory=CircuitRule)
    batch_size: int = 64
    device: str = "auto"
    paper: dict[str, float] = field(default_factory=lambda: dict(PAPER))
    experiment: str = "ioi"

    def __post_init__(self) -> None:
        if isinstance(self.circuit, dict):
            unknown = set(self.circuit) - {"rule", "fraction", "k", "metric"}
            if unknown:
                raise ValueError(f"circuit: unknown keys {sorted(unknown)}")
            self.circuit = CircuitRule(**self.circuit)
        if self.experiment != "ioi":
            raise ValueError(f"this is a {self.experiment!r} config, not an 'ioi' one")
        if isinstance(self.models, str):
            self.models = [s for s in self.models.split(",") if s.strip()]
        if len(self.models) < 2:
            raise ValueError(f"models: need at least 2 models to compare, got {self.models!r}")
        if self.corruption not in CORRUPTIONS:
            raise ValueError(f"corruption must be one of {list(CORRUPTIONS)}")
        for name in ("n_prompts", "m", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if self.n_prompts < 10:
            raise ValueError("n_prompts must be >= 10 (the ridge fits hold out 10%)")
        if not 0 < self.alpha < 1 or not 0 < self.p_include <= 1:
            raise ValueError("alpha must be in (0, 1) and p_include in (0, 1]")
        check_test_options(self.alpha, self.impls)
        if self.apply_ln not in (True, False, "last"):
            raise ValueError(f"apply_ln must be true, false or 'last', got {self.apply_ln!r}")

    def model_specs(self) -> list[ModelSpec]:
        specs = [ModelSpec.parse(e) for e in self.models]
        ids: dict[str, int] = {}
        out = []
        for s in specs:  # unique ids: a second 'model' folder becomes 'model-2'
            ids[s.id] = ids.get(s.id, 0) + 1
            out.append(
                s if ids[s.id] == 1 else ModelSpec(s.source, f"{s.id}-{ids[s.id]}", s.family)
            )
        return out

    @classmethod
    def from_yaml(cls, path: str | Path | None = None, **overrides: Any) -> IOIConfig:
        path = Path(path or default_config())
        if not path.exists():
            raise ValueError(f"config {path} does not exist")
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**raw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
