"""Every shipped YAML under configs/ loads through the reader of its group, and the
default files are the options' defaults (configs/ mirrors the options tree)."""

from pathlib import Path

import pytest
import yaml

from interpeq.compare.options import defaults_yaml, option_defaults
from interpeq.demo import load_tracking
from interpeq.experiment import ExperimentSpec
from interpeq.lm.config import IOIConfig
from interpeq.models import HookedTransformerConfig
from interpeq.reproduce.config import ExperimentConfig
from interpeq.training import TrainConfig, resolve_task
from interpeq.training.fit_config import to_lightning

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
GROUPS = {"compare", "experiment", "model", "task", "tracking", "train", "trainer", "zoo"}


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_configs_folders_are_the_options_groups():
    assert {p.name for p in CONFIGS.iterdir() if p.is_dir() and p.name != "__pycache__"} == GROUPS


def _check(path: Path) -> None:
    group, data = path.parent.name, _load(path)
    if group == "zoo":
        assert ExperimentSpec.from_yaml(path).zoo.members()
    elif group == "experiment":
        reader = IOIConfig if path.stem == "ioi" else ExperimentConfig
        assert reader.from_yaml(path)
    elif group in ("model", "train", "task", "trainer"):
        converted, legacy = to_lightning(data, str(path))
        assert legacy == [], f"{path}: write task/model/train, not model.siit"
        module = converted.get("model", {})
        HookedTransformerConfig.from_dict(module.get("model") or {})
        TrainConfig.from_dict(module.get("siit") or {})
        if "task" in module:
            resolve_task(module["task"])
    elif group == "tracking":
        assert set(load_tracking(path)) == {"capture", "tracker"}
    elif group == "compare":
        assert data["compare"] == option_defaults()


@pytest.mark.parametrize(
    "path", sorted(CONFIGS.glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_every_shipped_config_loads(path):
    _check(path)


def test_default_files_are_the_defaults():
    assert (CONFIGS / "compare" / "default.yaml").read_text() == defaults_yaml(), (
        "regenerate: python -c 'from interpeq.compare.options import defaults_yaml; "
        'print(defaults_yaml(), end="")\' > configs/compare/default.yaml'
    )
    assert _load(CONFIGS / "train" / "default.yaml")["train"] == TrainConfig().to_dict()
    model = _load(CONFIGS / "model" / "default.yaml")["model"]
    assert model == {k: v for k, v in HookedTransformerConfig().to_dict().items() if k in model}
