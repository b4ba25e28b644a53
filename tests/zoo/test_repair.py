"""A damaged member: listed as damaged, a plain run refuses (exit 2, the folder and
--repair named), --repair retrains exactly it and leaves every other file as it was."""

import json
from pathlib import Path

import pytest
import yaml

from interpeq.cli import main
from interpeq.zoo import ZooStore

TINY = {
    "name": "rep",
    "tasks": ["add_next"],
    "seeds": [0, 1, 2],
    "settings": ["D"],
    "stacked": False,
    "model": {"n_layers": 2, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32},
    "train": {"max_steps": 20, "batch_size": 32, "val_every": 10, "val_size": 64},
}


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("INTERPEQ_DEBUG", "")
    monkeypatch.setenv("WANDB_MODE", "disabled")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def finished(zoo_dir: Path) -> list[str]:
    events = [json.loads(x) for x in (zoo_dir / "events.jsonl").read_text().splitlines()]
    return [e["member"] for e in events if e["event"] == "finished"]


def test_damaged_member_is_listed_refused_and_repaired_alone(tmp_path, capsys):
    config = tmp_path / "rep.yaml"
    config.write_text(yaml.safe_dump(TINY))
    root = tmp_path / "ck"
    run = ["zoo", "--config", str(config), "--root", str(root), "--no-progress"]
    assert main(run) == 0
    zoo_dir = root / "rep"
    ids = ["add_next-D-s0", "add_next-D-s1", "add_next-D-s2"]
    bad = ids[1]
    weights = zoo_dir / bad / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # one flipped byte in the tensors: only the checksum can tell
    weights.write_bytes(bytes(data))
    (zoo_dir / ids[2] / "metrics.json").write_text('{"acc": 0.')  # truncated JSON
    bad_json = ids[2]
    before = {m: snapshot(zoo_dir / m) for m in [ids[0]]}
    capsys.readouterr()

    store = ZooStore(root, "rep")
    assert store.member_state(ids[0]) == ("done", "")
    state, why = store.member_state(bad)
    assert state == "damaged" and "checksum mismatch" in why
    assert store.member_state(bad_json)[0] == "damaged"
    assert main([*run, "--list"]) == 0
    listing = {ln.split()[1]: ln for ln in capsys.readouterr().out.splitlines()}
    assert listing[ids[0]].startswith("done ")
    assert listing[bad].startswith("damaged") and "checksum mismatch" in listing[bad]
    assert "--repair" in listing[bad] and listing[bad_json].startswith("damaged")

    assert main(run) == 2  # without --repair: refused, nothing touched
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 3
    assert str(zoo_dir / bad) in err[0] and "--repair" in err[0]
    assert snapshot(zoo_dir / ids[0]) == before[ids[0]]

    n_finished = len(finished(zoo_dir))
    assert main([*run, "--repair"]) == 0
    out = capsys.readouterr().out
    assert f"repair: {bad} was damaged" in out and f"repair: {bad_json} was damaged" in out
    assert sorted(finished(zoo_dir)[n_finished:]) == sorted([bad, bad_json])  # only those
    assert snapshot(zoo_dir / ids[0]) == before[ids[0]]  # byte-identical
    assert all(store.member_state(m) == ("done", "") for m in ids)
    moved = sorted(p.name for p in (zoo_dir / ".damaged").iterdir())
    assert [m.rsplit("-", 1)[0] for m in moved] == sorted([bad, bad_json])
    index = json.loads((zoo_dir / "index.json").read_text())["members"]
    assert sorted(index) == ids
    assert main(run) == 0  # a normal run now trains nothing
    assert len(finished(zoo_dir)) == n_finished + 2
