"""Zoo specs, training, resumption after a real kill, loading, tampering."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from interpeq.zoo import Zoo, ZooSpec, run_zoo

REPO = Path(__file__).resolve().parents[2]
TINY_TRAIN = {
    "max_steps": 30,
    "batch_size": 32,
    "val_every": 10,
    "val_size": 64,
    "test_size": 128,
    "warmup_steps": 5,
}
TINY_MODEL = {"n_layers": 2, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32}


def tiny_zoo(tmp_path: Path, name: str = "tiny", **changes) -> Path:
    data = {
        "name": name,
        "tasks": ["add_next"],
        "seeds": [0, 1],
        "settings": ["D", "C"],
        "model": TINY_MODEL,
        "train": TINY_TRAIN,
        **changes,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_smoke_config_covers_all_settings_and_varies_what_it_says():
    spec = ZooSpec.from_yaml(REPO / "configs/zoo/smoke.yaml")
    members = spec.members()
    assert {m.setting for m in members} == {"D", "A", "C", "B"}
    assert [m.to_dict() for m in members] == [m.to_dict() for m in spec.members()]  # deterministic
    base = spec.base_model()
    for task in spec.tasks:
        by = {(m.setting, m.seed): m for m in members if m.task == task}
        d0, d1 = by["D", 0], by["D", 1]
        # D: only the seed varies
        assert d0.model.same_architecture(base) and d1.model.same_architecture(base)
        assert d0.model.seed != d1.model.seed
        assert d0.correspondence == d1.correspondence
        for seed in spec.seeds:
            a, b, c = by["A", seed], by["B", seed], by["C", seed]
            assert not a.model.same_architecture(base)  # A: architecture varies
            assert a.correspondence.to_dict().keys() == d0.correspondence.to_dict().keys()
            assert c.model.same_architecture(base)  # C: correspondence varies within a layer
            assert c.correspondence != d0.correspondence
            for var, comps in c.correspondence.to_dict().items():
                assert [x[:2] for x in comps] == [x[:2] for x in d0.correspondence.to_dict()[var]]
            assert not b.model.same_architecture(base)  # B: both vary
    b_corrs = {
        json.dumps(m.correspondence.to_dict(), sort_keys=True) for m in members if m.setting == "B"
    }
    assert len(b_corrs) > 1


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"tasks": ["sort_sideways"]}, "unknown task 'sort_sideways'.*add_index"),
        ({"settings": ["D", "X"]}, r"unknown zoo setting\(s\) \['X'\].*A = architecture varies"),
        ({"modle": {}}, r"unknown zoo config keys \['modle'\]"),
        ({"settings": ["A"]}, "give 'architectures' ranges"),
        ({"model": {"n_layer": 2}}, "unknown model config keys"),
        ({"train": {"max_step": 2}}, "unknown train config keys"),
        ({"task_train": {"rank": {"lr": 0.1}}}, "'rank', which is not a task of this zoo"),
        ({"task_train": {"add_next": 0.1}}, r"task_train\['add_next'\] must be a mapping"),
        ({"task_train": ["add_next"]}, "'task_train' must map task names"),
        (
            {"task_train": {"add_next": {"lr_": 0.1}}},
            r"unknown task_train\[.add_next.\] keys \[.lr_.\]",
        ),
        (
            {"compile": "fast"},
            r"'compile' must be false, true or a torch.compile mode.*reduce-overhead",
        ),
        ({"compile": 1}, r"'compile' must be false, true"),
    ],
)
def test_bad_zoo_config_is_clear_error(tmp_path, changes, match):
    with pytest.raises(ValueError, match=match):
        ZooSpec.from_yaml(tiny_zoo(tmp_path, **changes))


def test_task_train_overrides_by_task_then_by_stage(tmp_path):
    spec = ZooSpec.from_yaml(
        tiny_zoo(
            tmp_path,
            tasks=["add_next", "algorithm_5/stage0", "algorithm_6/stage1"],
            task_train={
                "any_duplicate": {"lr": 0.001, "max_steps": 50},
                "algorithm_6/stage1": {"max_steps": 7},
            },
        )
    )
    train = {(m.task, m.setting, m.seed): m.train for m in spec.members()}
    assert len(train) == 12
    for (task, _, _), cfg in train.items():
        if task == "add_next":  # untouched: the zoo-wide train block
            assert (cfg.lr, cfg.max_steps) == (3e-3, TINY_TRAIN["max_steps"])
        elif task == "algorithm_5/stage0":  # the any_duplicate stage: by catalogue name
            assert (cfg.lr, cfg.max_steps) == (0.001, 50)
        else:  # the exact entry wins over the catalogue name
            assert (cfg.lr, cfg.max_steps) == (0.001, 7)
        assert cfg.batch_size == TINY_TRAIN["batch_size"]
    # members with other hyper-parameters never share a stacked group
    from interpeq.zoo.store import ZooStore
    from interpeq.zoo.train import stack_groups

    groups = stack_groups(spec.members(), ZooStore(tmp_path, spec.name))
    for group in groups:
        assert len({m.train.replace(seed=0) for m in group}) == 1
    assert len(groups) == 3  # one architecture; three sets of hyper-parameters


def test_finished_member_with_another_config_is_an_error_not_kept(tmp_path):
    spec = ZooSpec.from_yaml(tiny_zoo(tmp_path, seeds=[0, 1], settings=["D"]))
    zoo = run_zoo(spec, tmp_path / "ckpt", progress=False)
    weights = (zoo.path / "add_next-D-s0" / "model.safetensors").read_bytes()
    changed = ZooSpec.from_yaml(
        tiny_zoo(tmp_path, seeds=[0, 1], settings=["D"], task_train={"add_next": {"lr": 0.01}})
    )
    with pytest.raises(ValueError, match=r"2 finished member\(s\).*add_next-D-s0 \(train.lr: "):
        run_zoo(changed, tmp_path / "ckpt", progress=False)
    # nothing was touched; deleting one member retrains exactly that one
    assert (zoo.path / "add_next-D-s0" / "model.safetensors").read_bytes() == weights
    import shutil

    shutil.rmtree(zoo.path / "add_next-D-s1")
    with pytest.raises(ValueError, match="1 finished member"):
        run_zoo(changed, tmp_path / "ckpt", progress=False)
    shutil.rmtree(zoo.path / "add_next-D-s0")
    again = run_zoo(changed, tmp_path / "ckpt", progress=False)
    assert {m.id for m in again} == {"add_next-D-s0", "add_next-D-s1"}
    assert again["add_next-D-s0"].spec["train"]["lr"] == 0.01


def test_missing_or_invalid_yaml(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        ZooSpec.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ValueError, match="not valid YAML"):
        ZooSpec.from_yaml(bad)


def test_stacked_zoo_trains_loads_and_skips_finished(tmp_path):
    spec = ZooSpec.from_yaml(tiny_zoo(tmp_path))
    zoo = run_zoo(spec, tmp_path / "ckpt", progress=False)
    assert sorted(m.id for m in zoo) == sorted(m.id for m in spec.members())
    events = [json.loads(x) for x in (zoo.path / "events.jsonl").read_text().splitlines()]
    assert all(e.get("stacked") == 4 for e in events)  # one architecture -> one stacked group
    member = zoo["add_next-C-s1"]
    assert (
        member.correspondence == next(m for m in spec.members() if m.id == member.id).correspondence
    )
    assert member.metrics["steps"] == TINY_TRAIN["max_steps"]
    tokens = member.task.sample(8, seed=0)
    assert member.model(tokens).shape == (8, 10, 11)
    # a second run trains nothing
    run_zoo(spec, tmp_path / "ckpt", progress=False)
    events_after = (zoo.path / "events.jsonl").read_text().splitlines()
    assert len(events_after) == len(events)
    assert not (zoo.path / ".partial").exists() or not any((zoo.path / ".partial").iterdir())


def test_killed_zoo_run_resumes_without_retraining(tmp_path):
    config = tiny_zoo(tmp_path, name="killme", seeds=[0, 1, 2], settings=["D"], stacked=False)
    root = tmp_path / "ckpt"
    events = root / "killme" / "events.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "interpeq.cli",
        "zoo",
        "--config",
        str(config),
        "--root",
        str(root),
        "--no-progress",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (
            events.exists()
            and '"finished"' in events.read_text()
            and events.read_text().count('"started"') >= 2
        ):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed; make the zoo slower"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = [json.loads(x) for x in events.read_text().splitlines()]
    finished_first = {e["member"] for e in first if e["event"] == "finished"}
    assert 1 <= len(finished_first) < 3

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    log = [json.loads(x) for x in events.read_text().splitlines()]
    second = log[len(first) :]
    zoo = Zoo.load(root / "killme")
    assert len(zoo) == 3
    finished = [e["member"] for e in log if e["event"] == "finished"]
    assert sorted(finished) == sorted(m.id for m in zoo)  # every member finished exactly once
    assert not {e["member"] for e in second} & finished_first  # finished work untouched


def test_tampered_zoo_files_are_clear_errors(tmp_path):
    spec = ZooSpec.from_yaml(tiny_zoo(tmp_path, seeds=[0], settings=["D"], stacked=False))
    zoo = run_zoo(spec, tmp_path / "ckpt", progress=False)
    member = next(iter(zoo))
    weights = member.path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match="safetensors"):
        _ = Zoo.load(zoo.path)[member.id].model
    (member.path / "member.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Zoo.load(zoo.path)
    with pytest.raises(ValueError, match="does not exist"):
        Zoo.load(tmp_path / "no-such-zoo")
    with pytest.raises(ValueError, match="no member 'x'"):
        zoo["x"]


def test_loaded_member_matches_trained_weights(tmp_path):
    spec = ZooSpec.from_yaml(tiny_zoo(tmp_path, seeds=[0], settings=["D"], stacked=False))
    zoo = run_zoo(spec, tmp_path / "ckpt", progress=False)
    member = next(iter(zoo))
    again = Zoo.load(zoo.path)[member.id].model
    for (name, p), (_, q) in zip(
        member.model.named_parameters(), again.named_parameters(), strict=True
    ):
        assert torch.equal(p, q), name


def test_zoo_cli_logs_one_csv_run_per_member(tmp_path):
    from interpeq.zoo.cli import main

    config = tiny_zoo(tmp_path, name="logged", seeds=[0, 1], settings=["D"])
    assert (
        main(["--config", str(config), "--root", str(tmp_path), "--logger", "csv", "--no-progress"])
        == 0
    )
    for seed in (0, 1):
        csv = tmp_path / "logged" / "logged" / f"add_next-D-s{seed}" / "metrics.csv"
        header = csv.read_text().splitlines()[0].split(",")
        assert {"val/acc", "val/iia", "val/strict_acc"} <= set(header)
    assert main(["--config", str(tmp_path / "missing.yaml")]) == 2


def test_compiled_zoo_trains_the_members_eager_training_would(tmp_path):
    """compile: true changes how fast a stacked group steps, not what its members become:
    same held-out numbers as the eager zoo (float rounding aside), and members that train
    alone are named once in a warning, since they run eagerly."""
    eager = run_zoo(
        ZooSpec.from_yaml(tiny_zoo(tmp_path, name="eager")), tmp_path / "ckpt", progress=False
    )
    spec = ZooSpec.from_yaml(tiny_zoo(tmp_path, name="compiled", compile=True))
    assert spec.compile == "default"
    compiled = run_zoo(spec, tmp_path / "ckpt", progress=False)
    for member in eager:
        for key in ("acc", "iia", "strict_acc"):
            assert compiled[member.id].metrics[key] == pytest.approx(member.metrics[key], abs=0.02)
        for (n, p), (_, q) in zip(
            member.model.state_dict().items(),
            compiled[member.id].model.state_dict().items(),
            strict=True,
        ):
            torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4, msg=n)
    alone = ZooSpec.from_yaml(
        tiny_zoo(tmp_path, name="alone", compile=True, stacked=False, seeds=[0])
    )
    with pytest.warns(RuntimeWarning, match=r"2 member\(s\) of alone train alone .* run eagerly"):
        run_zoo(alone, tmp_path / "ckpt", progress=False)
