"""The experiment pipeline: one zoo YAML trains stacked, tracks, logs one run per member,
flags unconverged members, and compares."""

from __future__ import annotations

import ast
import csv
import json
import logging
from pathlib import Path

import pytest
import torch

from interpeq.zoo.cli import main as zoo_main

TINY = (
    "model: {n_layers: 2, d_model: 16, n_heads: 2, d_head: 8, d_mlp: 32}\n"
    "train: {max_steps: 30, batch_size: 32, val_every: 10, val_size: 32, test_size: 32, "
    "warmup_steps: 2, acc_threshold: 1.1}\n"
)
EVERY_STEP = "trainer: {log_every_n_steps: 1}\n"  # Lightning logs every 50 steps by default
TRACK = (
    "tracking: {references: ['self:seed=0'], every_n_steps: 10, n_probes: 32, m: 4, "
    "alpha: 0.45, include_unconverged: true}\n"
)


@pytest.fixture(autouse=True)
def _quiet():
    for name in ("lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(1)


def zoo_yaml(tmp_path: Path, text: str, name: str = "pipe") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\n{text}")
    return path


def events(zoo_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (zoo_dir / "events.jsonl").read_text().splitlines()]


def csv_rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("kind", ["wandb", "csv"])
def test_stacked_zoo_logs_one_run_per_member_with_tracking(tmp_path, monkeypatch, kind):
    from interpeq.report import offline_runs, read_offline_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    text = "tasks: [add_next]\nseeds: [0, 1, 2, 3, 4]\nsettings: [D]\n" + TINY + TRACK + EVERY_STEP
    config = zoo_yaml(tmp_path, text + f"logger: {kind}\n")
    root = tmp_path / "ck"
    assert zoo_main(["--config", str(config), "--root", str(root), "--no-progress"]) == 0
    zoo_dir = root / "pipe"
    tracked = [f"add_next-D-s{s}" for s in (1, 2, 3, 4)]
    started = [e for e in events(zoo_dir) if e["event"] == "started"]
    assert {e["member"] for e in started if e.get("stacked") == 4} == set(tracked)  # ONE group
    if kind == "wandb":
        runs = {r["name"]: r for r in map(read_offline_run, offline_runs(zoo_dir))}
        assert set(runs) == {"add_next-D-s0", *tracked}  # one run per member, nothing shared
        for member in tracked:
            run = runs[member]
            stored = json.loads((zoo_dir / member / "member.json").read_text())
            assert run["group"] == "pipe" and run["job_type"] == "fit"
            assert run["config"]["id"] == member
            assert run["config"]["train"]["seed"] == stored["train"]["seed"]
            assert "task:add_next" in run["tags"] and "zoo:pipe" in run["tags"]
            steps = [h for h in run["history"] if "equivalence/add_next/congruity" in h]
            assert len(steps) >= 3
            assert any("val/acc" in h for h in run["history"])
            assert not any(k.startswith("stack/") for h in run["history"] for k in h)
    else:
        for member in tracked:
            rows = csv_rows(zoo_dir / "pipe" / member / "metrics.csv")
            steps = [r for r in rows if r.get("equivalence/add_next/congruity")]
            assert len(steps) >= 3
            assert any(r.get("val/acc") for r in rows) and any(r.get("train/loss") for r in rows)
            hparams = (zoo_dir / "pipe" / member / "hparams.yaml").read_text()
            assert f"id: {member}" in hparams


def test_member_curves_match_alone_and_stacked(tmp_path):
    body = "tasks: [add_next]\nseeds: [0, 1, 2]\nsettings: [D]\n" + TINY + TRACK + EVERY_STEP
    body += "logger: csv\n"
    root = tmp_path / "ck"
    for name, stacked in (("stack", "true"), ("alone", "false")):
        config = zoo_yaml(tmp_path, body + f"stacked: {stacked}\n", name)
        assert zoo_main(["--config", str(config), "--root", str(root), "--no-progress"]) == 0
    stacked_starts = [e for e in events(root / "stack") if e.get("stacked")]
    assert stacked_starts and not [e for e in events(root / "alone") if e.get("stacked")]
    for member in ("add_next-D-s1", "add_next-D-s2"):
        curves = {}
        for name in ("stack", "alone"):
            rows = csv_rows(root / name / name / member / "metrics.csv")
            loss = {int(r["step"]): float(r["train/loss"]) for r in rows if r.get("train/loss")}
            track = json.loads(
                (root / name / "tracking" / member / "equivalence_curve.json").read_text()
            )
            curves[name] = (
                loss,
                track[member]["add_next"] if member in track else track["add_next"],
            )
        (la, ta), (lb, tb) = curves["stack"], curves["alone"]
        assert sorted(la) == sorted(lb) and len(la) >= 20
        assert max(abs(la[s] - lb[s]) / max(1e-6, abs(lb[s])) for s in la) < 1e-4
        assert [r["step"] for r in ta] == [r["step"] for r in tb] and len(ta) >= 3
        for ra, rb in zip(ta, tb, strict=True):
            assert ra["similarity"] == pytest.approx(rb["similarity"], abs=1e-5)
            # one reference per group: no calibrated null, so congruity is NaN in both
            assert ra["congruity"] == pytest.approx(rb["congruity"], abs=1e-6, nan_ok=True)
            assert ra.get("decision") == rb.get("decision")


def test_unconverged_members_are_flagged_and_left_out(tmp_path, capsys):
    from interpeq.compare.cli import main as compare_main

    text = "tasks: [add_next]\nseeds: [0, 1, 2]\nsettings: [D]\n" + TINY.replace("30", "5")
    config = zoo_yaml(tmp_path, text, "raw")
    root = tmp_path / "ck"
    assert zoo_main(["--config", str(config), "--root", str(root), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert out.count("  NO") == 3 and "0 / 3" in out and "did not converge" in err
    zoo_dir = root / "raw"
    index = json.loads((zoo_dir / "index.json").read_text())["members"]
    for member in ("add_next-D-s0", "add_next-D-s1", "add_next-D-s2"):
        assert json.loads((zoo_dir / member / "metrics.json").read_text())["converged"] is False
        assert index[member]["metrics"]["converged"] is False
    args = ["raw", "--root", str(root), "--logger", "none", "--no-progress", "--m", "4"]
    assert compare_main([*args, "--alpha", "0.45"]) == 2
    assert "--include-unconverged" in capsys.readouterr().err
    for member in ("add_next-D-s0", "add_next-D-s1"):  # as if these two had converged
        path = zoo_dir / member / "metrics.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "converged": True}))
    with pytest.warns(RuntimeWarning, match="add_next-D-s2"):
        assert compare_main([*args, "--alpha", "0.45"]) == 0
    results = json.loads((zoo_dir / "equivalence" / "results.json").read_text())
    assert [u["id"] for u in results["units"]] == ["add_next-D-s0", "add_next-D-s1"]
    assert (
        compare_main(
            [*args, "--alpha", "0.45", "--include-unconverged", "--out", str(tmp_path / "all")]
        )
        == 0
    )
    results = json.loads((tmp_path / "all" / "results.json").read_text())
    assert len(results["units"]) == 3


def test_retry_reseeds_until_the_tries_run_out(tmp_path):
    text = (
        "tasks: [add_next]\nseeds: [0]\nsettings: [D]\n"
        + TINY.replace("30", "5")
        + "retry: {mode: reseed, max_tries: 2, thresholds: {acc: 0.99}}\n"
    )
    root = tmp_path / "ck"
    assert (
        zoo_main(
            ["--config", str(zoo_yaml(tmp_path, text, "re")), "--root", str(root), "--no-progress"]
        )
        == 0
    )
    member = root / "re" / "add_next-D-s0"
    info = json.loads((member / "member.json").read_text())["retry"]
    assert info["mode"] == "reseed" and info["attempts"] == 2 and len(info["history"]) == 3
    assert [e["attempt"] for e in events(root / "re") if e["event"] == "retry"] == [1, 2]
    assert json.loads((member / "metrics.json").read_text())["converged"] is False
    # the rerun keeps the retried member: its stored spec is still the YAML's
    assert (
        zoo_main(
            ["--config", str(zoo_yaml(tmp_path, text, "re")), "--root", str(root), "--no-progress"]
        )
        == 0
    )
    assert sum(e["event"] == "finished" for e in events(root / "re")) == 1


def test_retry_continue_adds_steps(tmp_path):
    text = (
        "tasks: [add_next]\nseeds: [0]\nsettings: [D]\n"
        + TINY.replace("30", "5")
        + "retry: {mode: continue, steps: 5, max_tries: 1, thresholds: {acc: 0.99}}\n"
    )
    root = tmp_path / "ck"
    assert (
        zoo_main(
            ["--config", str(zoo_yaml(tmp_path, text, "co")), "--root", str(root), "--no-progress"]
        )
        == 0
    )
    metrics = json.loads((root / "co" / "add_next-D-s0" / "metrics.json").read_text())
    info = json.loads((root / "co" / "add_next-D-s0" / "member.json").read_text())["retry"]
    assert [h["steps"] for h in info["history"]] == [5.0, 10.0]
    assert metrics["steps"] == (10.0 if info["kept"] == 1 else 5.0)


@pytest.mark.parametrize("name", ["../x", "/abs", "a/b", "..", ".hidden"])
def test_zoo_name_must_be_plain(tmp_path, capsys, name):
    config = tmp_path / "z.yaml"
    config.write_text(f"name: '{name}'\ntasks: [add_next]\nseeds: [0]\n" + TINY)
    root = tmp_path / "root"
    assert zoo_main(["--config", str(config), "--root", str(root), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not a plain name" in err and len(err.strip().splitlines()) == 1
    assert not root.exists() and not (tmp_path / "x").exists() and not Path("/abs").exists()


def test_seeds_do_not_depend_on_the_zoo_name(tmp_path):
    from interpeq.experiment import ExperimentSpec

    text = "tasks: [add_next]\nseeds: [0, 1]\nsettings: [D, C]\n" + TINY
    a = ExperimentSpec.from_yaml(zoo_yaml(tmp_path, text, "one")).zoo.members()
    b = ExperimentSpec.from_yaml(zoo_yaml(tmp_path, text, "two")).zoo.members()
    assert [m.to_dict() | {"zoo": 0} for m in a] == [m.to_dict() | {"zoo": 0} for m in b]
    legacy = ExperimentSpec.from_yaml(zoo_yaml(tmp_path, text + "seed_namespace: one\n", "one"))
    assert legacy.zoo.members()[0].train.seed != a[0].train.seed


def test_a_changed_config_is_refused_then_retrained_with_retrain_stale(tmp_path, capsys):
    text = "tasks: [add_next, add_index]\nseeds: [0]\nsettings: [D]\n" + TINY.replace("30", "5")
    root = tmp_path / "ck"
    args = ["--config", str(zoo_yaml(tmp_path, text)), "--root", str(root), "--no-progress"]
    assert zoo_main([*args, "--logger", "none"]) == 0
    zoo = root / "pipe"
    kept = (zoo / "add_index-D-s0" / "model.safetensors").read_bytes()
    changed = text + "task_train: {add_next: {max_steps: 7}}\n"
    args[1] = str(zoo_yaml(tmp_path, changed))
    capsys.readouterr()
    assert zoo_main([*args, "--logger", "none"]) == 2
    err = capsys.readouterr().err
    assert "add_next-D-s0 (train.max_steps: trained 5, now 7)" in err and "--retrain-stale" in err
    assert len(err.strip().splitlines()) == 1
    assert zoo_main([*args, "--logger", "none", "--retrain-stale"]) == 0
    out = capsys.readouterr().out
    assert "retrain-stale: add_next-D-s0 (train.max_steps: trained 5, now 7) moved aside" in out
    assert (
        json.loads((zoo / "add_next-D-s0" / "member.json").read_text())["train"]["max_steps"] == 7
    )
    assert (zoo / "add_index-D-s0" / "model.safetensors").read_bytes() == kept  # untouched
    (aside,) = (zoo / ".stale").iterdir()
    assert json.loads((aside / "member.json").read_text())["train"]["max_steps"] == 5  # kept


def test_print_config_and_bad_sections(tmp_path, capsys):
    text = "tasks: [add_next]\nseeds: [0]\n" + TINY + TRACK + "trainer: {precision: 32-true}\n"
    config = zoo_yaml(tmp_path, text)
    assert zoo_main(["--config", str(config), "--print-config", "--set", "trainer.devices=1"]) == 0
    out = capsys.readouterr().out
    assert "accelerator: auto" in out and "devices: 1" in out and "self:seed=0" in out
    assert "background: true" in out  # the tracker's analysis runs beside training
    assert "compile: false" in out  # the fused step runs eagerly unless asked
    assert (
        zoo_main(["--config", str(config), "--print-config", "--set", "compile=reduce-overhead"])
        == 0
    )
    assert "compile: reduce-overhead" in capsys.readouterr().out
    for bad, match in (
        ("trainer: {max_step: 3}\n", "unknown trainer keys"),
        ("trainer: {max_steps: 3}\n", "unknown trainer keys"),
        ("logger: {kind: tensorboard}\n", "unknown logger"),
        ("tracking: {every_n_steps: 5}\n", "tracking needs 'references'"),
        ("tracking: {references: [x], background: yes-please}\n", "tracking.background must be"),
        ("retry: {mode: again}\n", "unknown retry.mode"),
        ("compare: {alpha: 2}\n", "compare.alpha"),
        ("compile: turbo\n", "'compile' must be false, true or a torch.compile mode"),
    ):
        config = zoo_yaml(tmp_path, "tasks: [add_next]\n" + TINY + bad, "bad")
        assert zoo_main(["--config", str(config), "--print-config"]) == 2
        assert match in capsys.readouterr().err


def test_trainer_uses_the_best_device(tmp_path, monkeypatch):
    import lightning as L

    import interpeq.training.fit as fit

    built = []

    class Recording(L.Trainer):
        def __init__(self, **kwargs):
            built.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(fit.L, "Trainer", Recording)
    text = "tasks: [add_next]\nseeds: [0, 1]\nsettings: [D]\n" + TINY.replace("30", "3")
    assert (
        zoo_main(
            [
                "--config",
                str(zoo_yaml(tmp_path, text)),
                "--root",
                str(tmp_path / "ck"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert built and all(k["accelerator"] == "auto" and k["devices"] == 1 for k in built)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    trainer = fit.trainer_for(fit.TrainConfig(), tmp_path / "t")
    assert trainer.strategy.root_device.type == expected


ALLOWED_CPU = {  # (file, why): the only "cpu" literals on training / comparison paths
    "training/fit.py",  # torch.load(map_location="cpu"): checkpoints are read to host memory
    "equivalence/ridge.py",  # a non-tensor input (a list) lives on the CPU
    "equivalence/impls.py",  # reads the probes' device: smaller patch batches on a CPU
    "zoo/launchers.py",  # a Ray task with no GPU assigned stays on the CPU (fake GPU resources)
    "equivalence/loo.py",  # autocast is turned off for the CPU device type too (exact float32)
    "compare/manifest.py",  # torch.load(map_location="cpu"): a probe file is read to host memory
}


def test_no_hard_coded_cpu_on_training_or_comparison_paths():
    repo = Path(__file__).resolve().parents[2]
    found = set()
    folders = ["training", "zoo", "compare", "equivalence", "experiment", "metrics"]
    files = [p for f in folders for p in (repo / "interpeq" / f).glob("*.py")]
    for path in [*files, *(repo / "callbacks").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value == "cpu":
                found.add(
                    str(path.relative_to(repo / "interpeq"))
                    if "interpeq" in path.parts
                    else path.name
                )
    assert found <= ALLOWED_CPU, found - ALLOWED_CPU
