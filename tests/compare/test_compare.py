"""interpeq compare: files, consistency between them, the PNG, against-mode, the shared pairwise core."""

import csv
import json
import logging
from types import SimpleNamespace

import pytest
import torch

from interpeq.compare import compare_zoo, main, member_units
from interpeq.equivalence import Unit, congruity, pairwise_congruity
from tests.conftest import EVERY_MEMBER_COUNTS


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    from interpeq.zoo import ZooSpec, run_zoo

    for name in ("lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(1)
    spec = ZooSpec.from_dict(
        {
            "name": "tiny",
            "tasks": ["add_next", "all_equal"],
            "seeds": [0, 1, 2, 3],  # four: the calibrated null decides
            "settings": ["D"],
            "model": {"n_layers": 2, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32},
            "train": {
                "max_steps": 50,
                "batch_size": 64,
                "val_every": 25,
                "val_size": 64,
                "test_size": 64,
                "warmup_steps": 5,
            },
        }
    )
    return run_zoo(spec, tmp_path_factory.mktemp("root"), progress=False, retry=EVERY_MEMBER_COUNTS)


def test_compare_cli_writes_consistent_files(tiny_zoo, capsys):
    root = tiny_zoo.path.parent
    assert (
        main(
            [
                "tiny",
                "--root",
                str(root),
                "--logger",
                "none",
                "--m",
                "20",
                "--alpha",
                "0.1",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "within-group mean congruity" in out and "add_next ~ all_equal" in out
    eq = tiny_zoo.path / "equivalence"
    results = json.loads((eq / "results.json").read_text())
    with open(eq / "matrix.csv") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert header[:2] == ["id", "group"] and len(body) == 8 == len(header) - 2
    ids = header[2:]
    assert [r[0] for r in body] == ids
    assert [r[1] for r in body] == ["add_next"] * 4 + ["all_equal"] * 4
    assert len(results["pairs"]) == 28
    for p in results["pairs"]:
        i, j = ids.index(p["a"]), ids.index(p["b"])
        assert float(body[i][2 + j]) == pytest.approx(p["congruity"], abs=1e-5)
        assert float(body[j][2 + i]) == pytest.approx(p["congruity"], abs=1e-5)
        assert p["reject"] == (p["p_value"] <= 0.1)
        assert set(p) >= {"congruity", "p", "p_value", "reject", "similarity"}
    assert all(body[i][2 + i] == "" for i in range(8))
    groups = {(g["group_a"], g["group_b"]): g for g in results["group_pairs"]}
    assert set(groups) == {
        ("add_next", "add_next"),
        ("add_next", "all_equal"),
        ("all_equal", "all_equal"),
    }
    across = groups[("add_next", "all_equal")]
    assert (
        across["n_pairs"] == 16
        and across["ci_low"] <= across["mean_congruity"] <= across["ci_high"]
    )
    pairs = [p for p in results["pairs"] if p["group_a"] != p["group_b"]]
    assert all(p["decision"] != "undecidable" and p["min_p_value"] <= 0.1 for p in pairs)
    assert across["rejection_rate"] == pytest.approx(sum(p["reject"] for p in pairs) / 16)
    s = results["summary"]
    assert s["within_mean"] > s["across_mean"]
    import matplotlib.image

    img = matplotlib.image.imread(eq / "matrix.png")
    assert img.shape[0] > 400 and img.shape[1] > 800


def test_compare_against_and_wandb_disabled(tiny_zoo, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    from interpeq.report import make_logger

    logger = make_logger(
        "wandb", run_name="c", group="tiny", job_type="compare", save_dir=tiny_zoo.path
    )
    res = compare_zoo(
        tiny_zoo, tiny_zoo, m=10, alpha=0.2, n_probes=96, progress=False, logger=logger
    )
    assert res.out_dir.name == "against-tiny" and res.matrix.shape == (8, 8)
    assert len(res.pairs) == 64 and all(c.startswith("tiny/") for c in res.col_ids)
    assert {(g["group_a"], g["group_b"]) for g in res.groups} >= {
        ("add_next", "all_equal"),
        ("all_equal", "add_next"),
    }


def test_pairwise_core_matches_congruity():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(60, 6, generator=g)
    units = [
        Unit(
            f"u{k}",
            "g",
            base @ torch.randn(6, 8, generator=g),
            base @ torch.randn(6, 8, generator=g) + 0.3 * torch.randn(5, 60, 8, generator=g),
        )
        for k in range(3)
    ]
    rows = pairwise_congruity(units, alpha=0.4, seed=3, impls="intervention")  # congruity's null
    assert [(r["a"], r["b"]) for r in rows] == [("u0", "u1"), ("u0", "u2"), ("u1", "u2")]
    ref = congruity(
        units[1].reprs, units[1].impls, units[2].reprs, units[2].impls, alpha=0.4, seed=3
    )
    assert rows[2]["congruity"] == pytest.approx(ref.congruity)
    assert rows[2]["p_value"] == pytest.approx(ref.p_value)
    assert rows[2]["similarity"] == pytest.approx(1 - ref.d_ab)


def test_chain_units_and_bad_input(tmp_path, capsys):
    def member(task, seed):
        return SimpleNamespace(
            id=f"{task}-D-s{seed}",
            task_name=task,
            setting="D",
            seed=seed,
            model=None,
            correspondence=None,
        )

    ms = [member(f"algorithm_4/stage{k}", s) for k in (1, 0) for s in (0, 1)]
    units = member_units(ms)
    assert [(u.id, u.group, u.tasks) for u in units][0] == (
        "algorithm_4-D-s0",
        "algorithm_4",
        ["algorithm_4/stage0", "algorithm_4/stage1"],
    )
    with pytest.raises(ValueError, match="incomplete"):
        member_units(ms[:3])
    with pytest.raises(ValueError, match="choose one of"):
        member_units(ms, "pairs")
    assert main(["no_such_zoo", "--root", str(tmp_path), "--logger", "none"]) == 2
    assert "not found" in capsys.readouterr().err


def _narrow_null_zoo(k=6, n=120, d=16, seed=0):
    """Two groups of ``k`` trained-like units (group B from another latent) whose
    intervention co-implementations barely move them (silent non-circuit part)."""
    g = torch.Generator().manual_seed(seed)
    units = []
    for group in ("A", "B"):
        z, w = torch.randn(n, 6, generator=g), torch.randn(6, d, generator=g)
        for u in range(k):
            other = torch.randn(n, 4, generator=g) @ torch.randn(4, d, generator=g)
            x = z @ w + 0.7 * other + 0.1 * torch.randn(n, d, generator=g)
            impls = x + 0.01 * torch.randn(40, n, d, generator=g)
            units.append(Unit(f"{group}{u}", group, x, impls))
    return units


@pytest.mark.parametrize("impls", ["intervention", "training", "auto"])
def test_a_narrow_null_by_each_source(impls):
    units = _narrow_null_zoo()
    rows = pairwise_congruity(units, alpha=0.05, seed=1, impls=impls)
    within = [r for r in rows if r["group_a"] == r["group_b"]]
    across = [r for r in rows if r["group_a"] != r["group_b"]]
    mean_within = sum(r["congruity"] for r in within) / len(within)
    assert max(r["congruity"] for r in across) == 0.0
    if impls == "intervention":
        # every other implementation looks farther than the near-copies: all rejected
        assert mean_within == 0.0 and all(r["reject"] for r in within)
    elif impls == "training":
        # exchangeable peers: congruity of equivalent pairs is a rank, mean about 0.5
        assert 0.3 < mean_within < 0.7
        assert all(r["m"] == 4 for r in within)  # the group's other units, minus the pair
        # p-value resolution 2/5 > alpha: nothing could be rejected, so nothing is decided
        assert all(r["min_p_value"] == pytest.approx(2 / 5) for r in within)
        assert {r["decision"] for r in rows} == {"undecidable"}
    else:
        # the draws rescaled to the members' spread: decidable, and equivalent members kept
        assert all(r["min_p_value"] == pytest.approx(2 / 41) for r in rows)
        assert sum(r["reject"] for r in within) <= 4 and 0.3 < mean_within  # raw: 30 / 30
        assert all(r["decision"] == "rejected" for r in across)


def test_impls_by_training_needs_three_per_group():
    units = _narrow_null_zoo(k=2)
    with pytest.raises(ValueError, match="at least 3 units per group"):
        pairwise_congruity(units, impls="training")
    with pytest.raises(ValueError, match="unknown impls"):
        pairwise_congruity(units, impls="peers")


def test_reference_construction_beside_the_test(tiny_zoo, tmp_path):
    res = compare_zoo(
        tiny_zoo, n_probes=64, m=4, alpha=0.45, reference=True, out_dir=tmp_path, progress=False
    )
    for r in res.pairs:
        assert 0.0 <= r["reference_fraction"] <= 1.0
        assert (
            r["reference_fraction"] == (r["reference_fraction_a"] + r["reference_fraction_b"]) / 2
        )
    assert all("mean_reference_fraction" in g for g in res.groups)
    assert json.loads((tmp_path / "results.json").read_text())["summary"]["reference"] is True
