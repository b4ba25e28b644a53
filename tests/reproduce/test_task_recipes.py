"""Per-task recipes in the zoo YAML: ``task_model`` resolves per member (recorded in the
member's config), and bad entries are one-line errors naming the section and choices."""

import pytest

from interpeq.reproduce import ExperimentConfig
from interpeq.zoo import ZooSpec

BASE = {
    "name": "rec",
    "algorithms": ["algorithm_1"],
    "seeds": [0],
    "model": {"n_layers": 2, "d_model": 48, "n_heads": 4, "d_head": 12, "d_mlp": 96},
    "train": {"max_steps": 10},
}


def spec(**extra) -> ZooSpec:
    return ZooSpec.from_dict({**BASE, **extra})


def test_task_model_resolves_per_member_and_is_recorded():
    s = spec(
        task_model={"sort_descending": {"d_model": 64, "d_mlp": 256}},
        task_train={"sort_descending": {"max_steps": 30}},
    )
    by_task = {m.task: m for m in s.members()}
    sort, nmc = by_task["algorithm_1/stage0"], by_task["algorithm_1/stage1"]
    assert (sort.model.d_model, sort.model.d_mlp, sort.model.d_head) == (64, 256, 16)
    assert (nmc.model.d_model, nmc.model.d_head) == (48, 12)  # the zoo's model
    assert sort.train.max_steps == 30 and nmc.train.max_steps == 10
    assert sort.to_dict()["model"]["d_model"] == 64  # what member.json records
    assert sort.model.seed == spec().members()[0].model.seed  # seeds do not move


def test_exact_entry_wins_over_catalogue_name_and_keeps_explicit_d_head():
    s = spec(
        task_model={
            "sort_descending": {"d_model": 64},
            "algorithm_1/stage0": {"d_model": 96, "d_head": 8},
        }
    )
    m = next(m for m in s.members() if m.task == "algorithm_1/stage0")
    assert (m.model.d_model, m.model.d_head) == (96, 8)


def test_experiment_config_reads_task_model():
    cfg = ExperimentConfig.from_dict(
        {"experiment": "toy", "zoo": {**BASE, "task_model": {"sort_descending": {"n_layers": 3}}}}
    )
    stage0 = next(m for m in cfg.zoo.members() if m.task.endswith("stage0"))
    assert stage0.model.n_layers == 3


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (
            {"task_model": {"sort_ascending": {"d_model": 64}}},
            ["task_model", "sort_ascending", "valid"],
        ),
        ({"task_model": {"sort_descending": {"width": 64}}}, ["task_model", "width", "d_model"]),
        ({"task_model": {"sort_descending": {"d_model": -1}}}, ["task_model", "d_model", "-1"]),
        ({"task_model": {"sort_descending": 64}}, ["task_model", "sort_descending", "mapping"]),
        ({"task_model": [1]}, ["task_model", "sort_descending"]),
        (
            {"task_train": {"sort_descending": {"lr_typo": 1}}},
            ["task_train", "lr_typo", "max_steps"],
        ),
    ],
)
def test_bad_recipes_are_one_line_errors(extra, needles):
    with pytest.raises(ValueError) as err:
        spec(**extra)
    msg = str(err.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg
