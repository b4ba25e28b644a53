"""``interpeq fit`` reads the zoo YAML's groups (task, model, train, correspondence)."""

import pytest
import yaml

from interpeq.training.fit_cli import main as fit_cli
from interpeq.training.fit_config import to_lightning, to_lightning_args, user_key

ZOO_STYLE = {
    "trainer": {"accelerator": "cpu"},
    "task": "rank",
    "model": {"d_model": 32, "d_head": 8},
    "train": {"lr": 0.001, "max_steps": 2},
    "correspondence": None,
}


def test_zoo_groups_map_onto_the_module_arguments():
    converted, legacy = to_lightning(ZOO_STYLE, "run.yaml")
    assert legacy == []
    assert converted == {
        "trainer": {"accelerator": "cpu"},
        "model": {
            "task": "rank",
            "model": {"d_model": 32, "d_head": 8},
            "siit": {"lr": 0.001, "max_steps": 2},
            "correspondence": None,
        },
    }


def test_flags_and_error_keys_speak_the_zoo_vocabulary():
    argv = ["--train.lr", "1e-3", "--model.d_model=32", "--task", "rank", "--trainer.devices", "2"]
    assert to_lightning_args(argv) == [
        "--model.siit.lr", "1e-3", "--model.model.d_model=32", "--model.task", "rank",
        "--trainer.devices", "2",
    ]  # fmt: skip
    assert to_lightning_args(["--model.siit.lr", "1"]) == ["--model.siit.lr", "1"]  # old flags
    assert user_key("model.siit.lr") == "train.lr"
    assert user_key("model.model.d_model") == "model.d_model"
    assert user_key("model.task") == "task" and user_key("trainer.max_steps") == "trainer.max_steps"


def test_config_files_are_translated_and_old_ones_load_with_a_note(tmp_path, capsys):
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump(ZOO_STYLE))
    work = tmp_path / "work"
    work.mkdir()
    (out,) = [a for a in to_lightning_args(["--config", str(new)], work) if a != "--config"]
    assert yaml.safe_load(open(out))["model"]["siit"] == {"lr": 0.001, "max_steps": 2}
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"model": {"task": "rank", "siit": {"lr": 0.1}}}))
    assert to_lightning_args([f"--config={old}"], work) == ["--config", str(old)]
    err = capsys.readouterr().err
    assert "model.task is now task" in err and "model.siit is now train" in err


def test_a_training_key_under_model_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"task": "rank", "model": {"lr": 0.1}}))
    with pytest.raises(
        ValueError, match=r"bad.yaml: model: unknown key\(s\) \['lr'\].*under train"
    ):
        fit_cli(["--config", str(bad)])


def test_fit_trains_from_the_shipped_layered_configs(tmp_path, capsys):
    configs = ["trainer/cpu", "model/default", "train/default", "task/rank"]
    args = [a for c in configs for a in ("--config", f"configs/{c}.yaml")]
    small = ["--model.d_model", "32", "--model.d_head", "8", "--train.max_steps", "2",
             "--train.val_every", "2", "--train.val_size", "32", "--train.test_size", "32",
             "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false"]  # fmt: skip
    assert fit_cli([*args, *small]) == 0
    assert '"steps": 2' in capsys.readouterr().out
    assert (tmp_path / "model.safetensors").exists()


def test_an_unknown_flag_is_named_as_the_user_wrote_it(capsys):
    from interpeq.cli import main

    assert main(["fit", "--config", "configs/trainer/fit_example.yaml", "--train.lrr", "1"]) == 2
    line = capsys.readouterr().err.splitlines()[0]
    assert "unrecognized arguments: --train.lrr 1" in line and "siit" not in line
