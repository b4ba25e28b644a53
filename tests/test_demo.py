"""`interpeq demo` end to end on a tiny zoo (the real demo runs the same code with configs/zoo/demo.yaml)."""

import logging

import torch

from interpeq.demo import DEFAULT_TRACKING, DEFAULT_ZOO, main


def test_demo_end_to_end_tiny(tmp_path, monkeypatch, capsys):
    for name in ("lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(1)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text(
        "name: demo\ntasks: [add_next, all_equal]\nseeds: [0, 1]\nsettings: [D]\n"
        "model: {n_layers: 2, d_model: 16, n_heads: 2, d_head: 8, d_mlp: 32}\n"
        "train: {max_steps: 20, batch_size: 32, val_every: 10, val_size: 32, test_size: 32, warmup_steps: 2}\n"
    )
    track = tmp_path / "tracking.yaml"
    track.write_text("capture: {every_n_steps: 10, n_probes: 64}\ntracker: {m: 6, alpha: 0.3}\n")
    argv = [
        "--config",
        str(zoo),
        "--tracking",
        str(track),
        "--root",
        str(tmp_path / "ck"),
        "--logger",
        "csv",
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    demo = tmp_path / "ck" / "demo"
    assert (demo / "equivalence" / "matrix.png").is_file()
    assert str(demo / "equivalence" / "matrix.png") in out
    curves = sorted((demo / "tracking").glob("*/equivalence_curve.png"))
    assert [c.parent.name for c in curves] == ["add_next-D-s1", "all_equal-D-s1"]
    assert (demo / "tracking" / "add_next-D-s1" / "captures").is_dir()
    assert (
        demo / "demo" / "add_next-D-s1" / "metrics.csv"
    ).is_file()  # CSV logger: <zoo>/<group>/<run>


def test_demo_configs_exist_and_bad_config_is_clear(tmp_path, capsys):
    assert DEFAULT_ZOO.is_file() and DEFAULT_TRACKING.is_file()
    assert main(["--tracking", str(tmp_path / "nope.yaml"), "--root", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
