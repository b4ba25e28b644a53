"""A bad value is one line naming the key and the value, checked before anything else."""

from pathlib import Path

import pytest

from interpeq.cli import main
from interpeq.dataclass_io import from_dict
from interpeq.training.config import TrainConfig


def test_numbers_from_yaml_strings_and_clear_errors():
    assert from_dict(TrainConfig, {"lr": "3e-3"}, "train config").lr == pytest.approx(0.003)
    assert from_dict(TrainConfig, {"max_steps": "200"}, "train config").max_steps == 200
    for key, value in (("lr", "abc"), ("max_steps", "2.5"), ("max_steps", True)):
        with pytest.raises(ValueError, match=f"train config key '{key}' must be"):
            from_dict(TrainConfig, {key: value}, "train config")


def test_zoo_set_with_a_word_for_a_number_is_one_line(tmp_path, capsys):
    args = ["zoo", "--config", "configs/zoo/smoke.yaml", "--root", str(tmp_path)]
    assert main([*args, "--set", "train.lr=abc"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'lr' must be a number, got 'abc'" in err[0]


def test_compare_checks_its_values_before_the_folder(tmp_path, capsys):
    assert main(["compare", "no-such-zoo", "--root", str(tmp_path), "--m", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "compare.m must be an int >= 1, got 0" in err[0]


def test_fit_names_the_key_that_sets_a_linked_trainer_option(capsys):
    example = Path(__file__).resolve().parents[1] / "configs" / "trainer" / "fit_example.yaml"
    assert main(["fit", "--config", str(example), "--trainer.max_steps", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "trainer.max_steps: set by the training config: pass --train.max_steps" in err[0]
