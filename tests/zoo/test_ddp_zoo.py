"""A zoo trained data-parallel (``trainer.devices=2``, ``trainer.strategy=ddp``, gloo on
CPU): rank 0 alone writes the zoo (each member once, no leftovers in ``.partial``), a
stacked group shards one global batch across the ranks, and the held-out metrics equal
a 1-process run of the same zoo; combinations that cannot work are refused in one line."""

import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import yaml

from interpeq.zoo import ddp
from interpeq.zoo.cli import main as zoo_cli

DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK")
ZOO_ENV = (ddp.PLAN_ENV, ddp.GROUP_ENV, ddp.CALL_ENV)
HEADLINE = ("acc", "iia", "strict_acc", "acc_seq", "iia_seq", "steps")


@pytest.fixture(autouse=True)
def clean_ddp_env(monkeypatch):
    """No test inherits (or leaves) a rank's environment or a process group."""
    for key in (*DDP_ENV, *ZOO_ENV):
        monkeypatch.delenv(key, raising=False)
    yield
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _zoo_yaml(tmp_path):
    """3 members: seeds 0 and 1 stack (max_stack 2), seed 2 trains alone."""
    data = {
        "name": "ddpz",
        "tasks": ["interleave_reverse"],
        "seeds": [0, 1, 2],
        "settings": ["D"],
        "model": {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32},
        "train": {
            "max_steps": 16,
            "batch_size": 16,
            "val_every": 8,
            "val_size": 32,
            "test_size": 64,
            "warmup_steps": 2,
        },
        "stacked": True,
        "max_stack": 2,
    }
    path = tmp_path / "ddpz.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _zoo_args(config, root):
    return ["--config", str(config), "--root", str(root), "--no-progress"]


def test_ddp_zoo_writes_once_and_equals_one_process(tmp_path, capsys):
    from ddp_scripts import launch

    config = _zoo_yaml(tmp_path)
    cpu = ["--set", "trainer.accelerator=cpu"]
    two = ["--set", "trainer.devices=2", "--set", "trainer.strategy=ddp"]
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(
            launch.run,
            ["-m", "interpeq.cli", "zoo", *_zoo_args(config, tmp_path / "two"), *cpu, *two],
            timeout=110,
            INTERPEQ_VERBOSE="1",  # keep Lightning's banners: they show the two ranks
        )
        assert zoo_cli([*_zoo_args(config, tmp_path / "one"), *cpu]) == 0
        out = job.result()
    capsys.readouterr()
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in out.stderr
    assert out.stdout.count("zoo ddpz: 3 members") == 1  # rank 0 reports, once

    ids = [f"interleave_reverse-D-s{s}" for s in (0, 1, 2)]
    zdir = tmp_path / "two" / "ddpz"
    index = json.loads((zdir / "index.json").read_text())["members"]
    assert sorted(index) == ids
    assert sorted(p.name for p in zdir.iterdir() if not p.name.startswith(".")) == sorted(
        [*ids, "events.jsonl", "index.json"]
    )
    assert list((zdir / ".partial").iterdir()) == []  # no stage, checkpoint or plan left
    events = [json.loads(line) for line in (zdir / "events.jsonl").read_text().splitlines()]
    finished = [e["member"] for e in events if e["event"] == "finished"]
    assert sorted(finished) == ids  # each member written exactly once
    assert len({e["pid"] for e in events}) == 1  # by one process (rank 0)
    stacked = {e["member"]: e.get("stacked") for e in events if e["event"] == "finished"}
    assert stacked == {ids[0]: 2, ids[1]: 2, ids[2]: None}

    one = json.loads((tmp_path / "one" / "ddpz" / "index.json").read_text())["members"]
    diffs = {}
    for member in ids:
        m1, m2 = one[member]["metrics"], index[member]["metrics"]
        for key in HEADLINE:
            diffs[(member, key)] = abs(m1[key] - m2[key])
            assert m2[key] == pytest.approx(m1[key], abs=1e-5), (member, key, m1[key], m2[key])
    weights = max(_weight_diff(tmp_path / "one" / "ddpz" / m, zdir / m) for m in ids)
    assert weights <= 5e-5, weights  # float rounding: one batch mean vs two shard means
    print(f"\nDDP zoo: max |held-out metric 1-proc - 2-proc| = {max(diffs.values()):.2e}")
    print(f"DDP zoo: max |weights 1-proc - 2-proc| = {weights:.2e}")


def _weight_diff(a, b) -> float:
    from safetensors.torch import load_file

    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)


def test_stacked_ranks_shard_one_global_batch():
    """Each rank of a stacked group gets rows ``rank::2`` of every member's 1-process
    batch (not a batch of its own seeded by the rank)."""
    from types import SimpleNamespace

    from interpeq.models import HookedTransformerConfig
    from interpeq.training import TrainConfig, default_correspondence, resolve_task
    from interpeq.training.stacked import StackedSIITModule

    cfg = HookedTransformerConfig(n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32)
    corr = default_correspondence(resolve_task("interleave_reverse").task, cfg)
    members = [("interleave_reverse", corr, TrainConfig(seed=s, batch_size=8)) for s in (0, 1)]

    def batch(world, rank):
        module = StackedSIITModule(members, cfg)
        if world > 1:
            module._trainer = SimpleNamespace(global_rank=rank, world_size=world)
        return module.train_batch(5)

    full, shards = batch(1, 0), [batch(2, r) for r in range(2)]
    for key, value in full.items():  # [members, rows, ...]
        assert shards[0][key].shape[1] == shards[1][key].shape[1] == 4, key
        both = torch.stack([shards[0][key], shards[1][key]], 2).flatten(1, 2)
        assert torch.equal(both, value), key


@pytest.mark.parametrize(
    ("sets", "launcher", "message"),
    [
        (
            ["trainer.devices=2", "trainer.strategy=ddp_spawn"],
            "local",
            "trainer.strategy=ddp_spawn",
        ),
        (
            ["trainer.devices=2", "trainer.strategy=ddp"],
            "ray",
            "trainer.devices=2 with --launcher ray",
        ),
        (["trainer.num_nodes=2"], "local", "trainer.num_nodes=2"),
    ],
)
def test_ddp_zoo_refusals_are_one_line(tmp_path, capsys, sets, launcher, message):
    config = _zoo_yaml(tmp_path)
    args = [*_zoo_args(config, tmp_path), "--launcher", launcher]
    for item in sets:
        args += ["--set", item]
    assert zoo_cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err
    assert not (tmp_path / "ddpz").exists()  # refused before anything was written


def test_other_rank_without_a_plan_is_one_line(tmp_path, capsys, monkeypatch):
    """A rank > 0 not started by rank 0's Lightning (no plan) says so, in one line."""
    monkeypatch.setenv("LOCAL_RANK", "1")
    config = _zoo_yaml(tmp_path)
    sets = ["--set", "trainer.devices=2", "--set", "trainer.strategy=ddp"]
    assert zoo_cli([*_zoo_args(config, tmp_path), *sets]) == 2
    err = capsys.readouterr().err.strip()
    assert "no zoo plan" in err and err.count("\n") == 0, err
    assert os.environ.get(ddp.PLAN_ENV) is None
