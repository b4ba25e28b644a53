"""The Ray zoo launcher: same members as the local runner, resumption after real kills
(of a Ray worker, and of the whole run), and placement on a simulated GPU cluster.

Ray is in the ``dev`` extra, so these run in CI; without it the Ray tests are skipped
(``pip install 'interpeq[ray]'``) and only the launcher's argument checks run.
"""

from __future__ import annotations

import importlib.util
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
from interpeq.zoo.cli import main as zoo_main

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(
    not HAVE_RAY, reason="Ray is not installed: pip install 'interpeq[ray]' (the dev extra has it)"
)

TINY_MODEL = {"n_layers": 2, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32}


def tiny_zoo(tmp_path: Path, name: str, *, steps: int = 30, **changes) -> Path:
    data = {
        "name": name,
        "tasks": ["add_next"],
        "seeds": [0, 1],
        "settings": ["D"],
        "model": TINY_MODEL,
        "train": {
            "max_steps": steps,
            "batch_size": 32,
            "val_every": 10,
            "val_size": 64,
            "test_size": 128,
            "warmup_steps": 5,
        },
        "stacked": False,
        **changes,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def read_events(zoo_dir: Path) -> list[dict]:
    path = zoo_dir / "events.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def without_time(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "seconds"}  # wall time differs


# conftest's local_ray: a local Ray 'cluster' of 4 CPUs and 4 fake GPUs (CUDA is never touched)
RAY_RESOURCES = {"num_cpus": 4, "num_gpus": 4}


def zoo_cmd(config: Path, root: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "interpeq.cli",
        "zoo",
        "--config",
        str(config),
        "--root",
        str(root),
        "--no-progress",
        "--launcher",
        "ray",
        "--workers",
        "2",
        *extra,
    ]


def subprocess_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    return {**env, "WANDB_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def wait_for(proc, predicate, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if predicate():
            return
        time.sleep(0.1)


# ----------------------------------------------------------------------------- checks (no Ray)


@pytest.mark.parametrize(
    "args, match",
    [
        (["--workers", "2"], "need.*the Ray launcher"),
        (["--gpus-per-member", "1"], "need.*the Ray launcher"),
        (["--launcher", "ray", "--workers", "0"], "workers must be a positive int"),
        (["--launcher", "ray", "--gpus-per-member", "-1"], "gpus_per_member must be"),
    ],
)
def test_bad_launcher_arguments_are_clear_errors(tmp_path, capsys, args, match):
    config = tiny_zoo(tmp_path, "bad")
    assert zoo_main(["--config", str(config), "--root", str(tmp_path), *args]) == 2
    import re

    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "bad").exists()  # nothing was started


def test_ray_launcher_without_ray_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    spec = ZooSpec.from_yaml(tiny_zoo(tmp_path, "noray"))
    with pytest.raises(ValueError, match=r"pip install 'interpeq\[ray\]'"):
        run_zoo(spec, tmp_path, progress=False, launcher="ray", workers=2)


# ----------------------------------------------------------------------------- Ray


@needs_ray
def test_killed_ray_worker_is_retried_and_loses_nothing(tmp_path):
    """SIGKILL the Ray worker training a member: Ray retries the task, which resumes
    the member; the run completes and every member finishes exactly once."""
    config = tiny_zoo(tmp_path, "wkill", seeds=[0, 1, 2, 3], steps=60)
    root = tmp_path / "ckpt"
    zdir = root / "wkill"
    proc = subprocess.Popen(
        zoo_cmd(config, root),
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    victim: dict = {}

    def training_unfinished_member() -> bool:
        events = read_events(zdir)
        done = {e["member"] for e in events if e["event"] == "finished"}
        busy = [e for e in events if e["event"] == "started" and e["member"] not in done]
        if done and busy:
            victim.update(busy[-1], done=done)
            return True
        return False

    try:
        wait_for(proc, training_unfinished_member, 80)
        assert victim and proc.poll() is None, "no member was training when expected"
        os.kill(victim["pid"], signal.SIGKILL)
        out, _ = proc.communicate(timeout=80)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:]
    zoo = Zoo.load(zdir)
    assert len(zoo) == 4
    events = read_events(zdir)
    finished = [e["member"] for e in events if e["event"] == "finished"]
    assert sorted(finished) == sorted(m.id for m in zoo)  # each exactly once
    attempts = [e for e in events if e["event"] == "placed" and e["member"] == victim["member"]]
    assert len(attempts) == 2 and attempts[1]["pid"] != victim["pid"]  # retried elsewhere
    for m in victim["done"]:  # finished before the kill: never touched again
        assert [e["event"] for e in events if e["member"] == m][-1] == "finished"
        assert sum(e["member"] == m for e in events) == 3  # placed, started, finished


@needs_ray
def test_killed_ray_run_resumes_without_retraining(tmp_path):
    """SIGKILL the whole run (driver, Ray and its workers) after a member finished;
    the rerun completes and never retrains what was finished."""
    # six members on two workers: after the first finishes, at least two more rounds
    # remain, so the kill lands mid-run even when one round is fast
    config = tiny_zoo(tmp_path, "rkill", seeds=[0, 1, 2, 3, 4, 5], steps=40)
    root = tmp_path / "ckpt"
    zdir = root / "rkill"
    cmd = zoo_cmd(config, root)
    proc = subprocess.Popen(
        cmd,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def one_finished_one_running() -> bool:
        events = read_events(zdir)
        done = {e["member"] for e in events if e["event"] == "finished"}
        return bool(done) and any(
            e["event"] == "started" and e["member"] not in done for e in events
        )

    try:
        wait_for(proc, one_finished_one_running, 80)
        assert proc.poll() is None, "the run ended before it could be killed; make it slower"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and every Ray process it started
        proc.wait()
    time.sleep(1)
    first = read_events(zdir)
    finished_first = {e["member"] for e in first if e["event"] == "finished"}
    assert 1 <= len(finished_first) < 6

    done = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    log = read_events(zdir)
    assert log[: len(first)] == first
    second = log[len(first) :]
    zoo = Zoo.load(zdir)
    assert len(zoo) == 6
    finished = [e["member"] for e in log if e["event"] == "finished"]
    assert sorted(finished) == sorted(m.id for m in zoo)  # every member finished exactly once
    assert not {e["member"] for e in second} & finished_first  # finished work untouched
    index = json.loads((zdir / "index.json").read_text())["members"]
    assert sorted(index) == sorted(m.id for m in zoo)


@needs_ray
@pytest.mark.parametrize("stacked", [False, True], ids=["members", "stacked"])
def test_ray_zoo_equals_local_zoo(tmp_path, local_ray, stacked):
    """Same members, metrics and weights as the local runner (same seeds); stacked
    groups are the same groups, one Ray task each."""
    changes = {"settings": ["D", "C"]} if stacked else {"seeds": [0, 1, 2]}
    spec = ZooSpec.from_yaml(tiny_zoo(tmp_path, "par", stacked=stacked, **changes))
    local = run_zoo(spec, tmp_path / "local", progress=False)
    remote = run_zoo(spec, tmp_path / "ray", progress=False, launcher="ray", workers=2)
    assert (
        sorted(m.id for m in remote)
        == sorted(m.id for m in local)
        == sorted(m.id for m in spec.members())
    )
    for member in local:
        other = remote[member.id]
        assert without_time(other.metrics) == without_time(member.metrics), member.id
        assert other.spec == member.spec
        for (name, p), (_, q) in zip(
            member.model.named_parameters(), other.model.named_parameters(), strict=True
        ):
            assert torch.equal(p, q), (member.id, name)
    index = json.loads((remote.path / "index.json").read_text())["members"]
    assert {k: without_time(v["metrics"]) for k, v in index.items()} == {
        m.id: without_time(m.metrics) for m in local
    }
    events = read_events(remote.path)
    placed = [e for e in events if e["event"] == "placed"]
    assert sorted(e["member"] for e in placed) == sorted(m.id for m in local)
    assert all(e["resources"] == {"CPU": 1.0} and e["accelerator"] == "cpu" for e in placed)
    if stacked:
        assert all(e.get("stacked") == 4 for e in events if e["event"] != "placed")
    else:
        assert len({e["pid"] for e in placed}) >= 2  # several workers shared the members
    # a rerun trains nothing and does not even start Ray tasks
    run_zoo(spec, tmp_path / "ray", progress=False, launcher="ray", workers=2)
    assert read_events(remote.path) == events


@needs_ray
def test_index_is_repaired_from_finished_members(tmp_path, local_ray):
    """A driver killed between a member's atomic rename and its index entry: the next
    launch indexes the finished member from its own files, without retraining it."""
    spec = ZooSpec.from_yaml(tiny_zoo(tmp_path, "repair", seeds=[0]))
    zoo = run_zoo(spec, tmp_path, progress=False, launcher="ray", workers=1)
    index_path = zoo.path / "index.json"
    full = json.loads(index_path.read_text())
    index_path.write_text(json.dumps({"zoo": "repair", "members": {}}))
    events = read_events(zoo.path)
    again = run_zoo(spec, tmp_path, progress=False, launcher="ray", workers=1)
    assert json.loads(index_path.read_text()) == full
    assert len(again) == 1 and read_events(zoo.path) == events


@needs_ray
def test_simulated_gpu_cluster_honours_resource_requests(tmp_path, local_ray):
    """4 CPUs and 4 fake GPUs: with 2 GPUs per member at most 2 members train at once
    (4 would fit the CPUs), each on 2 GPUs of its own, on CPU since CUDA is absent."""
    spec = ZooSpec.from_yaml(tiny_zoo(tmp_path, "gpus", seeds=[0, 1, 2, 3], steps=40))
    with pytest.raises(ValueError, match="asks for 8 GPU.*has 4"):
        run_zoo(spec, tmp_path, progress=False, launcher="ray", workers=4, gpus_per_member=8)
    zoo = run_zoo(spec, tmp_path, progress=False, launcher="ray", workers=4, gpus_per_member=2)
    assert len(zoo) == 4
    events = read_events(zoo.path)
    placed = {e["member"]: e for e in events if e["event"] == "placed"}
    finished = {e["member"]: e["time"] for e in events if e["event"] == "finished"}
    assert sorted(placed) == sorted(finished) == sorted(m.id for m in zoo)
    for e in placed.values():
        assert e["resources"] == {"CPU": 1.0, "GPU": 2.0}
        assert len(e["gpu_ids"]) == 2 and set(e["gpu_ids"]) <= {"0", "1", "2", "3"}
        assert e["accelerator"] == "cpu"  # fake GPUs: no CUDA, Lightning on CPU
    spans = {m: (placed[m]["time"], finished[m]) for m in placed}
    most = 0
    for start, _ in spans.values():
        running = [o for o, (s, f) in spans.items() if s <= start < f]
        most = max(most, len(running))
        gpus = [g for o in running for g in placed[o]["gpu_ids"]]
        assert len(gpus) == len(set(gpus)), f"members {running} share GPUs {gpus}"
    assert most == 2, spans  # the GPUs, not the 4 CPUs, bounded concurrency


@needs_ray
def test_ray_zoo_cli_logs_one_csv_run_per_member(tmp_path, local_ray):
    """The per-member logger is built inside the member's Ray task."""
    config = tiny_zoo(tmp_path, "logged", seeds=[0, 1])
    args = ["--config", str(config), "--root", str(tmp_path), "--no-progress"]
    assert zoo_main([*args, "--logger", "csv", "--launcher", "ray", "--workers", "2"]) == 0
    for seed in (0, 1):
        csv = tmp_path / "logged" / "logged" / f"add_next-D-s{seed}" / "metrics.csv"
        header = csv.read_text().splitlines()[0].split(",")
        assert {"val/acc", "val/iia", "val/strict_acc"} <= set(header)


# ----------------------------------------------------------------------------- GPUs, OOM (no Ray)


def test_gpus_per_member_defaults_to_one_gpu_where_cuda_is(monkeypatch):
    from interpeq.zoo.launchers import member_gpus

    said = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert member_gpus(None, said.append) == 0.0 and said == []  # a CPU machine: unchanged
    assert member_gpus(0.25, said.append) == 0.25
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert member_gpus(None, said.append) == 1.0
    assert len(said) == 1 and "one GPU per member task" in said[0] and "4 GPU" in said[0]
    assert member_gpus(0.5, said.append) == 0.5 and len(said) == 1  # the user's fraction


def _oom_setup(tmp_path, monkeypatch, fits):
    """A fake ``train_group`` that raises CUDA OOM for stacks wider than ``fits`` and
    otherwise marks its members finished (writes their files through the store)."""
    from interpeq.zoo import launchers
    from interpeq.zoo.launchers import WorkerStore

    spec = ZooSpec.from_yaml(tiny_zoo(tmp_path, "oom", steps=4, seeds=[0, 1, 2]))
    members = spec.members()[:3]
    store = WorkerStore(tmp_path, "oom")
    calls = []

    def fake_train_group(group, store, run=None):
        calls.append([m.id for m in group])
        if len(group) > fits:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        for m in group:
            store.finish(m.to_dict(), {"acc": 1.0}, torch.nn.Linear(1, 1))

    monkeypatch.setattr(launchers, "train_group", fake_train_group)
    monkeypatch.setattr(
        "interpeq.training.io.save_model", lambda model, path: path.write_bytes(b"")
    )
    return members, store, calls


def test_cuda_oom_retries_once_with_a_smaller_stack(tmp_path, monkeypatch):
    from interpeq.zoo.launchers import train_or_split
    from interpeq.zoo.train import GroupRun

    members, store, calls = _oom_setup(tmp_path, monkeypatch, fits=2)
    assert train_or_split(members, store, GroupRun()) == {}
    ids = [m.id for m in members]
    assert calls == [ids, ids[:2], ids[2:]]  # 3 stacked -> OOM -> stacks of 2 and 1
    assert all(store.is_finished(i) for i in ids)
    events = [e["event"] for e in read_events(store.dir)]
    assert events.count("oom_retry") == 2 and "failed" not in events


def test_cuda_oom_twice_fails_those_members_not_the_launch(tmp_path, monkeypatch):
    from interpeq.zoo.launchers import train_or_split
    from interpeq.zoo.train import GroupRun

    members, store, calls = _oom_setup(tmp_path, monkeypatch, fits=1)
    ids = [m.id for m in members]
    failed = train_or_split(members, store, GroupRun())
    assert calls == [ids, ids[:2], ids[2:]]  # retried once, not split further
    assert sorted(failed) == sorted(ids[:2]) and "CUDA out of memory" in failed[ids[0]]
    assert store.is_finished(ids[2])  # the member that fit alone was kept
    failed_events = [e["member"] for e in read_events(store.dir) if e["event"] == "failed"]
    assert sorted(failed_events) == sorted(ids[:2])
    # an error that is not an OOM is not swallowed
    from interpeq.zoo import launchers

    monkeypatch.setattr(launchers, "train_group", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        train_or_split(members[:2], store, GroupRun())
