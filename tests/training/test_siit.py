"""SIIT training: configs, data stream, reproducibility, resumption, and a trained member."""

import json

import pytest
import torch

from interpeq.models import MLP, AttnHead, patch_components
from interpeq.training import (
    SIITDataModule,
    TrainConfig,
    default_correspondence,
    fit_member,
    resolve_task,
)
from interpeq.training.fit_cli import main as fit_cli

from .conftest import TINY


def test_train_config_round_trip_and_errors():
    cfg = TrainConfig(lr=1e-3, strict_mode="subset")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(
        ValueError, match=r"unknown train config keys \['learning_rate'\]; valid keys: .*'lr'"
    ):
        TrainConfig.from_dict({"learning_rate": 1e-3})
    with pytest.raises(ValueError, match="strict_mode"):
        TrainConfig(strict_mode="all")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)


def test_resolve_task_names():
    stage = resolve_task("algorithm_3/stage2")
    assert stage.task.name == "add_next" and stage.stage == 2
    tokens = stage.sample(8, torch.Generator().manual_seed(0))
    assert tokens.shape == (8, 10) and (tokens[:, 0] == 11).all()
    assert resolve_task("add_index").task.name == "add_index"
    with pytest.raises(ValueError, match="stages 0..3"):
        resolve_task("algorithm_3/stage4")
    with pytest.raises(ValueError, match="unknown task 'sorting'.*valid: tasks"):
        resolve_task("sorting")


def test_data_stream_is_seeded_and_consistent():
    corr = default_correspondence(resolve_task("rank").task, TINY)
    train = TrainConfig(batch_size=16)
    dm = SIITDataModule("rank", TINY, train, corr.to_dict())
    a, b = dm.train_batch(3), dm.train_batch(3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["base"], dm.train_batch(4)["base"])
    other = SIITDataModule("rank", TINY, train.replace(seed=1), corr.to_dict())
    assert not torch.equal(a["base"], other.train_batch(3)["base"])
    task = resolve_task("rank").task
    assert torch.equal(a["labels"], task.labels(a["base"]))
    comps = dm.sampler.components
    for row in range(16):
        var = dm.sampler.variables[int(a["iit_var"][row])]
        chosen = {c for c, s in zip(comps, a["iit_select"][row], strict=True) if s}
        assert chosen == set(corr.components_of(var))
        expected = (
            task.labels(a["source"][row : row + 1])
            if var == "output"
            else task.intervene(a["base"][row : row + 1], a["source"][row : row + 1], [var])
        )
        assert torch.equal(a["iit_labels"][row : row + 1], expected)
        strict = [c for c, s in zip(comps, a["strict_select"][row], strict=True) if s]
        assert len(strict) == 1 and strict[0] not in corr.circuit


def _fit(task, train, path, **kw):
    corr = default_correspondence(resolve_task(task).task, TINY)
    return fit_member(task=task, model=TINY, correspondence=corr, train=train, ckpt_dir=path, **kw)


def test_same_seed_same_metrics_and_resume(tmp_path, tiny_train):
    a = _fit("sort_ascending", tiny_train, tmp_path / "a")
    b = _fit("sort_ascending", tiny_train, tmp_path / "b")
    keys = ["acc", "iia", "strict_acc", "steps"]
    assert {k: a.metrics[k] for k in keys} == {k: b.metrics[k] for k in keys}
    assert a.metrics["steps"] == tiny_train.max_steps
    for (n, p), (_, q) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert torch.equal(p, q), n
    # interrupted after 3 steps, then resumed from last.ckpt: same weights as straight through
    part = _fit("sort_ascending", tiny_train, tmp_path / "c", trainer_kwargs={"max_steps": 3})
    assert part.metrics["steps"] == 3
    resumed = _fit("sort_ascending", tiny_train, tmp_path / "c")
    assert resumed.metrics["steps"] == tiny_train.max_steps
    for (n, p), (_, q) in zip(
        a.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(p, q, msg=n)
    # a finished run is loaded, not retrained
    again = _fit("sort_ascending", tiny_train, tmp_path / "c")
    assert again.metrics["acc"] == resumed.metrics["acc"]
    other = _fit("sort_ascending", tiny_train.replace(seed=1), tmp_path / "d")
    assert other.metrics["acc"] != a.metrics["acc"]


def test_trained_member_implements_its_correspondence(tmp_path):
    train = TrainConfig(
        batch_size=64, lr=3e-3, max_steps=400, val_every=50, val_size=256, test_size=256
    )
    result = _fit("add_index", train, tmp_path)
    m = result.metrics
    assert m["acc"] >= 0.95 and m["iia"] >= 0.9 and m["strict_acc"] >= 0.9, m
    model, task = result.model, resolve_task("add_index").task
    base, source = task.sample_pairs(512, 123)
    labels = task.labels(base)[:, 1:]
    with torch.no_grad():
        # interchange on the aligned MLP (shifted -> L0MLP) follows the interpretation
        patched = patch_components(model, base, source, [MLP(0)]).argmax(-1)[:, 1:]
        cf = task.intervene(base, source, ["shifted"])[:, 1:]
        iia = (patched == cf).float().mean()
        changed = (cf != labels).float().mean()
        # resampling a non-circuit head leaves the output unchanged
        kept = patch_components(model, base, source, [AttnHead(1, 1)]).argmax(-1)[:, 1:]
        strict = (kept == labels).float().mean()
    assert changed > 0.5 and iia > 0.9, (changed, iia)
    assert strict > 0.95


def test_fit_cli(tmp_path, capsys):
    common = [
        "--config",
        "configs/trainer/fit_example.yaml",
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.logger",
        "false",
        "--model.d_model",
        "32",
        "--model.d_head",
        "8",
        "--model.d_mlp",
        "64",
        "--train.max_steps=2",
        "--train.val_size",
        "32",
        "--train.test_size",
        "32",
        "--train.batch_size",
        "16",
    ]
    with pytest.raises(SystemExit) as exit_info:
        fit_cli([*common, "--print_config"])
    assert exit_info.value.code == 0
    assert "strict_weight: 0.4" in capsys.readouterr().out
    assert fit_cli(common) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{") :])
    assert report["metrics"]["steps"] == 2
    assert (tmp_path / "model.safetensors").exists()
    assert list(tmp_path.glob("**/last.ckpt"))
