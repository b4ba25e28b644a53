"""interpeq calibrate on a tiny trained zoo (2 tasks x 4 seeds): files, rates that agree
with the pairs, the QQ plot, the group permutation test, the training null, errors."""

import csv
import json
import logging
import math

import pytest
import torch

from interpeq.compare.calibrate import calibrate_zoo, main
from interpeq.equivalence.groups import auroc
from tests.conftest import EVERY_MEMBER_COUNTS


@pytest.fixture(scope="module")
def zoo4(tmp_path_factory):
    from interpeq.zoo import ZooSpec, run_zoo

    for name in ("lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(1)
    spec = ZooSpec.from_dict(
        {
            "name": "cal",
            "tasks": ["add_next", "all_equal"],
            "seeds": [0, 1, 2, 3],
            "settings": ["D"],
            "model": {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32},
            "train": {
                "max_steps": 30,
                "batch_size": 32,
                "val_every": 30,
                "val_size": 32,
                "test_size": 32,
                "warmup_steps": 3,
            },
        }
    )
    return run_zoo(spec, tmp_path_factory.mktemp("root"), progress=False, retry=EVERY_MEMBER_COUNTS)


def test_calibrate_cli_files_and_rates(zoo4, capsys):
    root = zoo4.path.parent
    argv = ["cal", "--root", str(root), "--m", "20", "--alpha", "0.1", "--n-probes", "96"]
    assert main([*argv, "--logger", "csv", "--no-progress"]) == 0
    out = capsys.readouterr().out
    cal = zoo4.path / "calibration"
    for name in ("calibration.json", "calibration.csv", "qq.png"):
        assert (cal / name).is_file(), name
    assert (cal / "comparison" / "results.json").is_file()
    assert (cal / "qq.png").stat().st_size > 10_000
    assert (zoo4.path / "cal" / "cal-calibrate").is_dir()  # the CSV logger's run

    data = json.loads((cal / "calibration.json").read_text())
    pairs, overall = data["pairs"], data["overall"]
    assert len(pairs) == 28 and data["settings"]["n_groups"] == 2
    same = [p for p in pairs if p["group_a"] == p["group_b"]]
    diff = [p for p in pairs if p["group_a"] != p["group_b"]]
    assert (overall["n_same"], overall["n_different"]) == (12, 16)
    for p in pairs:
        assert p["reject"] == (p["p_value"] <= 0.1) and p["same"] == (p["group_a"] == p["group_b"])
    # the rates are numbers in [0, 1], recomputed from the pairs
    for k in ("false_rejection_rate", "power", "auroc", "fr_ci_low", "fr_ci_high"):
        assert 0 <= overall[k] <= 1, k
    assert overall["false_rejection_rate"] == pytest.approx(sum(p["reject"] for p in same) / 12)
    assert overall["power"] == pytest.approx(sum(p["reject"] for p in diff) / 16)
    assert overall["fr_ci_low"] <= overall["false_rejection_rate"] <= overall["fr_ci_high"]
    assert overall["auroc"] == pytest.approx(
        auroc([-p["p_value"] for p in diff], [-p["p_value"] for p in same])
    )
    groups = {g["group"]: g for g in data["groups"]}
    g = groups["add_next"]
    mine = [p for p in same if p["group_a"] == "add_next"]
    assert (g["n_same"], g["n_different"], g["n_members"]) == (6, 16, 4)
    assert g["false_rejection_rate"] == pytest.approx(sum(p["reject"] for p in mine) / 6)
    ns = g["null_spread"]
    assert ns["n_members"] == 4 and ns["n_draws"] == 80 and isinstance(ns["narrow"], bool)
    # the group permutation test: 4 + 4 members, exact, smallest p-value 1/35
    (t,) = data["group_tests"]
    assert (t["n_a"], t["n_b"], t["n_relabelings"]) == (4, 4, 35) and t["exact"]
    assert t["min_p_value"] == pytest.approx(1 / 35)
    assert t["p_value"] * 35 == pytest.approx(round(t["p_value"] * 35))

    with open(cal / "calibration.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["scope"] for r in rows] == ["overall", "group", "group", "group_pair"]
    assert float(rows[0]["power"]) == pytest.approx(overall["power"])
    assert float(rows[3]["perm_p_value"]) == pytest.approx(t["p_value"])

    # the printed table: aligned columns
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("scope"))
    table = lines[start : start + 4]
    assert [line.split()[0] for line in table[1:]] == ["overall", "add_next", "all_equal"]
    assert len({len(line) for line in table}) == 1
    assert "add_next ~ all_equal" in out and "calibration.json" in out


def test_calibrate_training_null_and_errors(zoo4, tmp_path, capsys):
    res = calibrate_zoo(
        zoo4, impls="training", n_probes=96, out_dir=tmp_path / "c", progress=False, m=20
    )
    assert res.out_dir == tmp_path / "c" and (tmp_path / "c" / "qq.png").is_file()
    # 2/(1 + 2) > alpha: nothing could be rejected, so every pair is undecidable
    o = res.overall
    assert (
        o["n_same_undecidable"] == o["n_same"] and o["n_different_undecidable"] == o["n_different"]
    )
    assert o["false_rejections"] == o["rejections"] == 0 and o["power"] == 0.0
    assert math.isnan(o["false_rejection_rate"])  # no decidable same-group pair
    assert all(not g["null_spread"]["narrow"] for g in res.groups)  # no draws: no verdict
    assert "every pair is undecidable" in res.summary_text()
    root = str(zoo4.path.parent)
    assert main(["nope", "--root", root, "--logger", "none"]) == 2
    assert main(["cal", "--root", root, "--logger", "none", "--alpha", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not found" in err[0] and "alpha must be in (0, 1)" in err[1]


def test_split_half_checks_groups_of_at_least_8():
    from interpeq.compare.calibrate import _split_half

    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 4, generator=g)
    dist = torch.cdist(x, x).numpy()
    labels = ["big"] * 8 + ["small"] * 4
    (t,) = _split_half(dist, labels, ["big", "small"], seed=0, alpha=0.05)
    assert (t["group_a"], t["group_b"], t["n_a"], t["n_b"]) == ("big[even]", "big[odd]", 4, 4)
    assert t["split_half"] and t["min_p_value"] == pytest.approx(1 / 35)
