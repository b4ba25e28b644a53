"""Member-level data parallelism: ``devices=2, strategy="ddp"`` on CPU (gloo) trains the
same member as one process (same global batches, same random SIIT choices), logs once,
checkpoints once; the sharding itself is checked in-process."""

import csv
import json
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import torch

from interpeq.seeds import generator
from interpeq.training import SIITDataModule, TrainConfig, default_correspondence, resolve_task
from interpeq.training.datamodule import shard_batch

from .conftest import TINY

THRESHOLDS = {"acc": 0.97, "iia": 0.95, "strict_acc": 0.95}  # fit_member_ddp.py's


def _dm(train, world=1, rank=0):
    corr = default_correspondence(resolve_task("rank").task, TINY)
    dm = SIITDataModule("rank", TINY, train, corr.to_dict())
    if world > 1:
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=world)
    return dm


def test_ranks_shard_the_one_process_batch():
    train = TrainConfig(batch_size=16, val_size=40)
    one = _dm(train)
    # one process: the stream is unchanged (rank-0 generator of the seed, full batch)
    ref = one.sampler.batch(16, generator(train.seed, "train", 0, 7))
    batch = one.train_batch(7)
    assert all(torch.equal(batch[k], ref[k]) for k in ref)
    # two processes: rows 0::2 and 1::2 of that batch, every random choice included
    shards = [_dm(train, 2, r).train_batch(7) for r in range(2)]
    for key, value in batch.items():
        assert shards[0][key].shape[0] == shards[1][key].shape[0] == 8
        assert torch.equal(torch.stack([shards[0][key], shards[1][key]], 1).flatten(0, 1), value)
    # validation: every rank sees every batch, with its rows (40 rows -> 20 + 20)
    vals = [list(_dm(train, 2, r).val_dataloader()) for r in range(2)]
    full = list(one.val_dataloader())
    assert [len(b["base"]) for b in full] == [40]
    assert [len(b["base"]) for v in vals for b in v] == [20, 20]
    assert torch.equal(shard_batch(full[0], 1, 2)["labels"], vals[1][0]["labels"])
    with pytest.raises(ValueError, match="batch_size 16 .* not divisible by the 3 processes"):
        _dm(train, 3, 0).train_dataloader()
    with pytest.raises(ValueError, match="rank 2 is outside world size 2"):
        shard_batch(batch, 2, 2)


def _csv_rows(out):
    files = sorted(out.glob("**/metrics.csv"))
    assert len(files) == 1, files  # one CSV logger writes, not one per rank
    with open(files[0]) as fh:
        return list(csv.DictReader(fh))


def test_ddp_member_equals_one_process(tmp_path):
    """2 gloo processes vs 1: same stopping step and held-out accuracy (thresholds met),
    captured representations and tracked congruity equal to 1e-5, synced validation
    metrics, one W&B run, one CSV file, the same checkpoints."""
    from ddp_scripts import launch

    from interpeq.report import offline_runs, read_offline_run

    script = str(launch.HERE / "fit_member_ddp.py")
    outs = {n: tmp_path / f"p{n}" for n in (1, 2)}
    with ThreadPoolExecutor(2) as pool:
        jobs = [
            pool.submit(
                launch.run, [script, str(outs[n]), str(n)], timeout=115, WANDB_MODE="offline"
            )
            for n in (1, 2)
        ]
        for job in jobs:
            job.result()
    res = {n: json.loads((out / "result.json").read_text()) for n, out in outs.items()}
    pts = {n: torch.load(out / "result.pt") for n, out in outs.items()}

    assert [res[n]["world_size"] for n in (1, 2)] == [1, 2]
    # accuracy: both stop by ThresholdStopping at the same step, above the thresholds
    assert res[1]["stopping"] == res[2]["stopping"]
    assert res[1]["stopping"]["stopped"] and res[1]["stopping"]["stopped_at"] >= 100
    for n in (1, 2):
        for key, threshold in THRESHOLDS.items():
            assert res[n]["metrics"][key] >= threshold, (n, key, res[n]["metrics"])
    for key in ("acc", "iia", "strict_acc", "steps"):
        assert res[2]["metrics"][key] == pytest.approx(res[1]["metrics"][key], abs=2e-3), key

    # captures (rank 0) and the equivalence curve: equal to 1e-5 at every capture
    caps = {n: pts[n]["captures"] for n in (1, 2)}
    assert sorted(caps[1]) == sorted(caps[2]) == list(range(0, caps[1].__len__() * 50, 50))
    diff = max(float((caps[1][s] - caps[2][s]).abs().max()) for s in caps[1])
    assert diff <= 1e-5, diff
    print(f"\nDDP member: max |captures 1-proc - 2-proc| = {diff:.2e}")
    h1, h2 = res[1]["history"]["run"], res[2]["history"]["run"]  # id: the run folder
    assert sorted(h1) == sorted(h2) == ["ref11", "ref12", "ref13"]
    for group in h1:
        assert len(h1[group]) == len(caps[1])
        for r1, r2 in zip(h1[group], h2[group], strict=True):
            assert r1.keys() == r2.keys()
            for key in r1:
                if isinstance(r1[key], str):  # the decision and the null used
                    assert r2[key] == r1[key], (group, key)
                else:
                    assert r2[key] == pytest.approx(r1[key], abs=1e-5, nan_ok=True), (group, key)
    tracked = max(
        abs(r1[k] - r2[k])
        for g in h1
        for r1, r2 in zip(h1[g], h2[g], strict=True)
        for k in r1
        if not isinstance(r1[k], str) and r1[k] == r1[k]
    )
    print(f"DDP member: max |tracked 1-proc - 2-proc| = {tracked:.2e}")
    for n in (1, 2):
        m = res[n]["metrics"]
        print(f"DDP member, {n} proc:", {k: m[k] for k in ("acc", "iia", "strict_acc", "steps")})

    # validation metrics are synced over the ranks: the 2-process values equal the
    # 1-process ones (rank 0 alone has half the rows and would differ)
    vals = {}
    for n in (1, 2):
        rows = [r for r in _csv_rows(outs[n]) if r.get("val/acc")]
        vals[n] = [(int(r["step"]), float(r["val/acc"]), float(r["val/iia"])) for r in rows]
    assert [v[0] for v in vals[2]] == [v[0] for v in vals[1]]  # each logged once
    for (_, a1, i1), (_, a2, i2) in zip(vals[1], vals[2], strict=True):
        assert (a2, i2) == pytest.approx((a1, i1), abs=1e-5)

    # one W&B run (rank 0's), with the equivalence keys; checkpoints written once
    for n in (1, 2):
        runs = offline_runs(outs[n])
        assert len(runs) == 1, runs
        assert len(list((outs[n] / "wandb").glob("*run-*"))) == 1
    run = read_offline_run(offline_runs(outs[2])[0])
    assert run["name"] == "m" and run["config"]["devices"] == 2
    steps = [h["trainer/global_step"] for h in run["history"] if "equivalence/ref11/congruity" in h]
    assert steps == sorted(caps[2])
    names = {n: sorted(p.name for p in (outs[n] / "run").glob("*.ckpt")) for n in (1, 2)}
    assert names[1] == names[2] and "last.ckpt" in names[2]


def test_fit_cli_ddp(tmp_path, capsys):
    """``interpeq fit --trainer.devices 2 --trainer.strategy ddp``: same weights as 1 process."""
    from ddp_scripts import launch

    from interpeq.training.fit_cli import main as fit_cli
    from interpeq.training.io import load_model

    args = [
        "--config",
        "configs/trainer/fit_example.yaml",
        "--trainer.logger",
        "false",
        "--model.task",
        "interleave_reverse",
        "--model.correspondence",
        "null",
        "--model.model.d_model",
        "32",
        "--model.model.d_head",
        "8",
        "--model.model.d_mlp",
        "64",
        "--model.siit.max_steps",
        "12",
        "--model.siit.val_every",
        "6",
        "--model.siit.val_size",
        "32",
        "--model.siit.test_size",
        "32",
        "--model.siit.batch_size",
        "16",
    ]
    two = launch.run(
        ["-m", "interpeq.cli", "fit", *args]
        + ["--trainer.default_root_dir", str(tmp_path / "two")]
        + ["--trainer.devices", "2", "--trainer.strategy", "ddp"],
        timeout=100,
        INTERPEQ_VERBOSE="1",  # keep Lightning's banners: they show the two ranks
    )
    assert "distributed_backend=gloo" in two.stderr
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in two.stderr
    assert two.stdout.count('"weights"') == 1  # rank 0 reports once
    report = json.loads(two.stdout[two.stdout.index("{") :])
    assert report["metrics"]["steps"] == 12
    assert fit_cli([*args, "--trainer.default_root_dir", str(tmp_path / "one")]) == 0
    capsys.readouterr()
    a, b = (load_model(tmp_path / d / "model.safetensors") for d in ("one", "two"))
    diff = max(
        float((p - q).abs().max())
        for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    assert 0 <= diff <= 1e-5, diff
    assert len(list((tmp_path / "two").glob("**/last.ckpt"))) == 1
