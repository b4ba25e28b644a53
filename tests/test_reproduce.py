"""`interpeq reproduce`: one command trains, compares and writes a complete report; reruns reuse."""

import csv
import json

import pytest
import yaml

from interpeq.cli import main as cli
from interpeq.reproduce import ExperimentConfig, experiment_path

TINY_TRAIN = {
    "batch_size": 32,
    "max_steps": 12,
    "warmup_steps": 2,
    "val_every": 6,
    "val_size": 64,
    "test_size": 128,
}
ANY = {"retry": {"thresholds": {"acc": 0.0, "iia": 0.0, "strict_acc": 0.0}}}
TINY_MODEL = {"n_layers": 2, "d_model": 16, "n_heads": 4, "d_head": 4, "d_mlp": 32}


def _write(tmp_path, experiment, zoo, **compare):
    cfg = {
        "experiment": experiment,
        # tiny members never learn: they count as converged, so that the comparisons run
        "zoo": {"model": TINY_MODEL, "train": TINY_TRAIN, "stacked": False, **ANY, **zoo},
        "compare": {"n_probes": 48, "m": 6, "impls": ["intervention", "training"], **compare},
        "paper": {"within_sorting": 0.43, "across_families": 0.01, "min_accuracy": 0.96},
    }
    path = tmp_path / f"{experiment}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_toy_report_is_complete_and_rerun_reuses(tmp_path, capsys):
    path = _write(
        tmp_path,
        "toy",
        {"name": "toy_t", "algorithms": ["algorithm_1", "algorithm_6"], "seeds": [0, 1, 2]},
    )
    args = [
        "reproduce",
        "toy",
        "--config",
        str(path),
        "--root",
        str(tmp_path),
        "--logger",
        "csv",
        "--no-progress",
    ]
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert "intervention/two_sided: " in out and "within sorting " in out and "report: " in out
    report = tmp_path / "toy_t" / "report"
    for name in (
        "report.md",
        "summary.json",
        "members.csv",
        "chains.csv",
        "config.yaml",
        *(
            f"algorithm_matrix_{i}_{f}.{ext}"
            for i in ("intervention", "training")
            for f in ("two_sided", "one_sided")
            for ext in ("csv", "png")
        ),
    ):
        assert (report / name).stat().st_size > 0, name
    members = list(csv.DictReader(open(report / "members.csv")))
    assert len(members) == 12  # 2 + 2 stages x 3 seeds
    assert all(0 <= float(r["acc"]) <= 1 and int(r["steps"]) == 12 for r in members)
    chains = list(csv.DictReader(open(report / "chains.csv")))
    assert sorted((r["algorithm"], r["seed"]) for r in chains) == [
        (a, str(s)) for a in ("algorithm_1", "algorithm_6") for s in range(3)
    ]
    summary = json.loads((report / "summary.json").read_text())
    assert summary["labels"] == ["algorithm_1", "algorithm_6"]
    assert summary["families"] == {"sorting": ["algorithm_1"], "counting": ["algorithm_6"]}
    assert (summary["trained"], summary["reused"]) == (12, 0)
    # the group permutation test per algorithm pair: 3 + 3 chains cannot reach alpha 0.05
    (test,) = list(csv.DictReader(open(report / "group_tests.csv")))
    assert (test["group_a"], test["group_b"], test["n_a"], test["n_b"]) == (
        "algorithm_1", "algorithm_6", "3", "3",
    )  # fmt: skip
    assert float(test["min_p_value"]) == pytest.approx(0.1) and test["decision"] == "undecidable"
    # every algorithm pair with a chain pair the headline did not reject is explained
    head = json.loads((report / "equivalence-intervention" / "results.json").read_text())
    kept = any(r["decision"] != "rejected" for r in head["pairs"] if r["group_a"] != r["group_b"])
    explained = list(csv.DictReader(open(report / "explanations.csv")))
    assert [(r["row"], r["col"]) for r in explained] == ([("algorithm_1", "algorithm_6")] * kept)
    for r in explained:
        assert int(r["n_pairs"]) == 9 and r["why"]
        assert int(r["rejected"]) + int(r["not_rejected"]) + int(r["undecidable"]) == 9
        assert 0 < float(r["pair_distance"]) and 0 < float(r["null_a"])
        assert -1 <= float(r["embedding"]) <= 1.0 + 1e-9
        assert (report / "explanations.png").stat().st_size > 0
    for key in ("intervention/two_sided", "intervention/one_sided", "training/two_sided"):
        impls, form = key.split("/")
        res = summary["results"][key]
        fam = res["family_means"]
        # 3 same-algorithm pairs per algorithm, 9 across
        assert (fam["n_within_sorting"], fam["n_within_counting"], fam["n_across_families"]) == (
            3,
            3,
            9,
        )
        m = res["matrix"]
        assert m["algorithm_1"][1] == m["algorithm_6"][0]  # symmetric
        assert all(0 <= x <= 1 for row in m.values() for x in row)
        gap = res["checks"]["within_sorting_minus_across"]
        assert gap == pytest.approx(fam["within_sorting"] - fam["across_families"])
        rows = list(csv.DictReader(open(report / f"algorithm_matrix_{impls}_{form}.csv")))
        assert len(rows) == 4 and {int(r["n_pairs"]) for r in rows} == {3, 9}
    dumped = yaml.safe_load((report / "config.yaml").read_text())
    assert len(dumped["members"]) == 12 and all("train_seed" in m for m in dumped["members"])
    # the two forms agree where p >= 1/2 and differ only where the pair is closer than p = 1/2
    two, one = (
        summary["results"][f"intervention/{f}"]["matrix"] for f in ("two_sided", "one_sided")
    )
    assert all(o >= t - 1e-12 for a in two for t, o in zip(two[a], one[a], strict=True))
    first = summary["results"]["intervention/two_sided"]["matrix"]

    # a chain with an unconverged stage is left out of the explanations, not an error
    from interpeq.compare import compare_zoo
    from interpeq.reproduce.config import CompareSettings
    from interpeq.reproduce.toy_explain import explain_algorithms
    from interpeq.zoo import Zoo

    zoo = Zoo.load(tmp_path / "toy_t")
    zoo["algorithm_1.stage0-D-s2"].metrics["converged"] = False
    res = compare_zoo(zoo, n_probes=48, m=6, impls="intervention", units="chains",
                      out_dir=tmp_path / "cmp", progress=False)  # fmt: skip
    assert len({r["a"] for r in res.pairs} | {r["b"] for r in res.pairs}) == 5  # 6 chains - 1
    settings = CompareSettings(n_probes=48, m=6, impls=["intervention"])
    explain_algorithms(zoo, res.pairs, ["algorithm_1", "algorithm_6"], settings)

    assert cli(args) == 0  # rerun: nothing retrained, same numbers
    again = json.loads((report / "summary.json").read_text())
    assert (again["trained"], again["reused"]) == (0, 12)
    assert again["results"]["intervention/two_sided"]["matrix"] == first
    assert again["train_seconds"] < summary["train_seconds"]


def test_settings_and_matched_studies(tmp_path):
    path = _write(
        tmp_path,
        "settings",
        {
            "name": "set_t",
            "tasks": ["interleave_reverse"],
            "seeds": [0, 1, 2],
            "settings": ["D", "C"],
        },
    )
    assert (
        cli(
            [
                "reproduce",
                "settings",
                "--config",
                str(path),
                "--root",
                str(tmp_path),
                "--logger",
                "none",
                "--no-progress",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "set_t" / "report" / "summary.json").read_text())
    rows = {(r["a"], r["b"]): r for r in summary["results"]["intervention"]["rows"]}
    assert rows["interleave_reverse", "D"]["n_pairs"] == 3
    assert rows["interleave_reverse", "C"]["n_pairs"] == 3
    assert rows["interleave_reverse", "across settings"]["n_pairs"] == 9
    assert (tmp_path / "set_t" / "report" / "settings_training_by_setting.png").exists()

    path = _write(
        tmp_path,
        "matched",
        {
            "name": "mat_t",
            "tasks": ["alternating_parity", "alternating_parity_sum"],
            "seeds": [0, 1, 2],
        },
        readings=["no-embedding", "cka"],
    )
    assert (
        cli(
            [
                "reproduce",
                "matched",
                "--config",
                str(path),
                "--root",
                str(tmp_path),
                "--logger",
                "none",
                "--no-progress",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "mat_t" / "report" / "summary.json").read_text())
    rows = summary["results"]["training"]["rows"]
    assert [(r["a"], r["b"], r["n_pairs"]) for r in rows] == [
        ("alternating_parity", "alternating_parity", 3),
        ("alternating_parity_sum", "alternating_parity_sum", 3),
        ("alternating_parity", "alternating_parity_sum", 9),
    ]
    # the mechanism study: the default reading and the two others, under both nulls
    report = tmp_path / "mat_t" / "report"
    mech = [
        r for r in summary["mechanisms"]["rows"] if r["pair"].startswith("alternating_parity vs")
    ]
    assert [(r["reading"], r["impls"]) for r in mech] == [
        (reading, impls)
        for reading in ("residual", "no-embedding", "cka")
        for impls in ("intervention", "training")
    ]
    assert all(r["same_task_pairs"] == 6 and r["cross_pairs"] == 9 for r in mech)
    assert len({r["similarity_cross"] for r in mech}) == 3  # three readings, three numbers
    assert (report / "mechanisms.png").exists() and (report / "mechanisms.csv").exists()
    assert "## Mechanism study" in (report / "report.md").read_text()

    # a member flagged unconverged leaves its group with 2: the training null cannot be
    # computed there; the rerun (training reused) says so and still writes the rest
    metrics = tmp_path / "mat_t" / "alternating_parity-D-s0" / "metrics.json"
    metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "converged": False}))
    args = ["--root", str(tmp_path), "--logger", "none", "--no-progress"]
    with pytest.warns(RuntimeWarning, match="Co-implementations by training: not computed"):
        assert cli(["reproduce", "matched", "--config", str(path), *args]) == 0
    summary = json.loads((report / "summary.json").read_text())
    assert list(summary["results"]) == ["intervention"]
    assert "at least 3 units per group" in summary["not_computed"]["training"]
    assert "Co-implementations by training: not computed" in (report / "report.md").read_text()
    assert {r["impls"] for r in summary["mechanisms"]["rows"]} == {"intervention"}


def test_shipped_configs_load_and_bad_configs_are_clear(tmp_path, capsys):
    for experiment in ("toy", "matched", "settings"):
        for scale in ("cpu", "paper"):
            cfg = ExperimentConfig.from_yaml(experiment_path(experiment, scale))
            assert cfg.experiment == experiment and cfg.zoo.members()
    with pytest.raises(ValueError, match="unknown scale"):
        experiment_path("toy", "huge")
    with pytest.raises(ValueError, match="unknown experiment config keys"):
        ExperimentConfig.from_dict({"experiment": "toy", "zoo": {}, "extra": 1})
    with pytest.raises(ValueError, match="unknown reading 'mean'; choose representations"):
        ExperimentConfig.from_dict(
            {
                "experiment": "matched",
                "zoo": {"tasks": ["add_index"]},
                "compare": {"readings": ["mean"]},
            }
        )
    with pytest.raises(ValueError, match="compare.impls"):
        ExperimentConfig.from_dict(
            {"experiment": "toy", "zoo": {"tasks": ["add_index"]}, "compare": {"impls": ["peers"]}}
        )
    path = _write(tmp_path, "matched", {"name": "x", "tasks": ["add_index"]})
    assert cli(["reproduce", "toy", "--config", str(path), "--root", str(tmp_path)]) == 2
    assert "is a 'matched' experiment" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment: toy\nzoo: [unclosed\n")
    assert cli(["reproduce", "toy", "--config", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
