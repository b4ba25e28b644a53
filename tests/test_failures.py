"""Every failure a user meets: one short line naming the file or key and the fix, a
non-zero exit, the traceback only with --debug; no noise from libraries."""

import hashlib
import signal
import warnings
from pathlib import Path

import pytest
import yaml

from interpeq.cli import main, run_command

REPO = Path(__file__).resolve().parents[1]
FIT = ["fit", "--config", str(REPO / "configs/trainer/fit_example.yaml")]
TINY = {
    "tasks": ["add_next"],
    "seeds": [0, 1],
    "settings": ["D"],
    "model": {"n_layers": 2, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32},
    "train": {"max_steps": 20, "batch_size": 32, "val_every": 10, "val_size": 64},
}


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPEQ_DEBUG", "")  # restored after: --debug sets it
    monkeypatch.chdir(tmp_path)  # whatever a fit config writes lands here
    monkeypatch.setenv("WANDB_MODE", "disabled")


def short(err: str) -> list[str]:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert 1 <= len(lines) <= 3, err
    assert "Traceback" not in err
    return lines


def test_fit_mistyped_task_is_one_line_naming_the_key_and_the_valid_tasks(capsys):
    assert main([*FIT, "--task", "sort_ascnding"]) == 2
    err = capsys.readouterr().err
    first = short(err)[0]
    assert first.startswith("interpeq fit: error: task: unknown task 'sort_ascnding'")
    assert "sort_ascending" in first and "algorithm_1" in first  # the fix: what is valid
    assert "args parameter" not in err and "usage:" not in err
    assert "--debug" in err

    assert main(["--debug", *FIT, "--task", "sort_ascnding"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "resolve_task" in err


def test_fit_bad_callback_value_names_the_key_and_the_root_cause(tmp_path, capsys):
    cb = tmp_path / "cb.yaml"
    cb.write_text(
        yaml.safe_dump(
            {
                "trainer": {
                    "callbacks": [
                        {
                            "class_path": "interpeq.callbacks.ActivationCapture",
                            "init_args": {"every_n_steps": 0},
                        }
                    ]
                }
            }
        )
    )
    assert main([*FIT, "--config", str(cb)]) == 2
    line = short(capsys.readouterr().err)[0]
    assert line.startswith("interpeq fit: error: trainer.callbacks: every_n_steps must be")
    assert "ActivationCapture" in line and "Given value" not in line and "Namespace" not in line


def test_fit_parse_errors_are_one_line_and_help_says_interpeq_fit(capsys):
    assert main([*FIT, "--train.lr", "abc"]) == 2
    line = short(capsys.readouterr().err)[0]
    assert "train.lr" in line and "abc" in line and "interpeq fit --help" in line
    assert "siit" not in line
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: interpeq fit")


def test_fit_resume_from_a_broken_checkpoint_is_refused_before_lightning(tmp_path, capsys):
    bad = tmp_path / "last.ckpt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    args = [*FIT, "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", str(bad)]
    assert main(args) == 2
    line = short(capsys.readouterr().err)[0]
    assert str(bad) in line and "truncated or corrupt" in line and "delete it" in line


def _zoo(tmp_path: Path, name: str, stacked: bool) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "stacked": stacked, **TINY}))
    return path


def test_truncated_member_checkpoint_names_the_file_and_the_fix(tmp_path, capsys):
    config, root = _zoo(tmp_path, "one", stacked=False), tmp_path / "ck"
    ckpt = root / "one" / ".partial" / "add_next-D-s0" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"PK\x03\x04" + bytes(100))  # a zip header, then nothing
    assert main(["zoo", "--config", str(config), "--root", str(root), "--no-progress"]) == 2
    line = short(capsys.readouterr().err)[0]
    assert line.startswith("interpeq zoo: error: checkpoint ")
    assert str(ckpt) in line and "delete it to restart this member from scratch" in line
    assert "PytorchStreamReader" not in line

    argv = ["--debug", "zoo", "--config", str(config), "--root", str(root), "--no-progress"]
    assert main(argv) == 2
    assert "Traceback" in capsys.readouterr().err


def test_truncated_stacked_group_checkpoint_names_the_file_and_the_fix(tmp_path, capsys):
    config, root = _zoo(tmp_path, "stack", stacked=True), tmp_path / "ck"
    ids = ["add_next-D-s0", "add_next-D-s1"]
    work = (
        root
        / "stack"
        / ".partial"
        / ("stack-" + hashlib.sha256("|".join(ids).encode()).hexdigest()[:12])
    )
    ckpt = work / "stacked" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a checkpoint at all")
    assert main(["zoo", "--config", str(config), "--root", str(root), "--no-progress"]) == 2
    line = short(capsys.readouterr().err)[0]
    assert str(ckpt) in line and "delete it to restart this stacked group from scratch" in line


def test_boundary_expected_errors_bugs_and_interrupts(capsys):
    def bad_value(argv):
        raise ValueError("config.yaml: key 'x' is wrong;\n  set it to 1")

    def missing(argv):
        raise FileNotFoundError(2, "No such file or directory", "nowhere.yaml")

    def bug(argv):
        raise KeyError("oops")

    def stopped(argv):
        from interpeq.interrupts import Interrupted

        raise Interrupted(signal.SIGTERM)

    assert run_command("x", bad_value, [], debug=False) == 2
    lines = short(capsys.readouterr().err)
    assert lines[0] == "interpeq x: error: config.yaml: key 'x' is wrong; set it to 1"
    assert "--debug" in lines[1]
    assert run_command("x", missing, [], debug=False) == 2
    assert "nowhere.yaml: No such file or directory" in short(capsys.readouterr().err)[0]
    assert run_command("x", bad_value, [], debug=True) == 2
    assert "Traceback" in capsys.readouterr().err
    assert run_command("x", bug, [], debug=False) == 1  # a bug keeps its traceback
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError" in err and "a bug in interpeq" in err
    assert run_command("x", stopped, [], debug=False) == 143
    assert "stopped by SIGTERM" in capsys.readouterr().err


def test_debug_is_accepted_anywhere_and_stripped(capsys):
    assert main(["--debug", "tasks"]) == 0
    assert main(["tasks", "--debug"]) == 0
    assert "Tasks (11)" in capsys.readouterr().out


def test_noise_filters_leafspec_warning_and_wandb_notes(tmp_path):
    from interpeq.report import make_logger
    from interpeq.training.fit import quiet_lightning_warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_lightning_warnings()
        warnings.warn(
            "`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning, stacklevel=1
        )
        warnings.warn("something else", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something else"]
    logger = make_logger("wandb", run_name="r", group="g", save_dir=tmp_path)
    assert "anonymous" not in logger._wandb_init  # W&B: "The anonymous setting has no effect"
    assert logger._wandb_init["settings"].disable_git  # W&B: "git root ... does not exist"


def test_group_table_aligns_long_group_names():
    from interpeq.compare.result import CompareResult

    groups = [
        {
            "group_a": a,
            "group_b": b,
            "mean_congruity": 0.5,
            "ci_low": 0.4,
            "ci_high": 0.6,
            "n_equivalent": 1,
            "n_pairs": 2,
        }
        for a, b in [("algorithm_1/stage0", "algorithm_6/stage2_long_name"), ("a", "b")]
    ]
    summary = {"n_units": 4, "n_groups": 3, "n_pairs": 6, "m": 8, "alpha": 0.05, "n_probes": 64}
    text = CompareResult(Path("x"), {}, [], groups, summary, [], [], None).summary_text()
    rows = [ln for ln in text.splitlines() if " ~ " in ln]
    header = next(ln for ln in text.splitlines() if "group pair" in ln)
    assert len(rows) == 2 and len({ln.index("0.500") for ln in rows}) == 1  # aligned
    assert len({ln.index("1 / 2") for ln in rows}) == 1
    longest = len("  algorithm_1/stage0 ~ algorithm_6/stage2_long_name")
    second_column = len(header) - len(header[len("  group pair") :].lstrip())
    assert second_column > longest  # the header's columns start after the longest name


def test_a_standard_library_value_error_on_our_data_is_a_bug_not_a_user_error(capsys):
    import statistics

    from interpeq.cli import run_command

    def broken(argv):
        return statistics.median([])

    def bad_value(argv):
        raise ValueError("compare.m must be an int >= 1, got 0")

    assert run_command("reproduce", broken, [], debug=False) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error (StatisticsError), a bug in interpeq" in err
    assert run_command("reproduce", bad_value, [], debug=False) == 2
    err = capsys.readouterr().err
    assert err.startswith("interpeq reproduce: error: compare.m must be") and "Traceback" not in err
