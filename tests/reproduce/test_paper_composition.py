"""The paper code's composition on a tiny per-task zoo: k models per stage, every
stage-2 model on every stage-1 model's outputs (k^2 paths), path representations
concatenated, deterministic under the seed, and comparable by the pairwise test."""

import pytest
import torch
import yaml

from interpeq.cli import main
from interpeq.compare import probe_tokens
from interpeq.equivalence import pairwise_congruity, representations
from interpeq.reproduce.paper_composition import (
    algorithm_tasks,
    composition_units,
    paper_units,
    sample_composition,
    task_pools,
)
from interpeq.zoo import Zoo

D_MODEL, N_LAYERS = 16, 2


@pytest.fixture(scope="module")
def task_zoo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paperzoo")
    cfg = {
        "name": "tasks",
        "tasks": algorithm_tasks(["algorithm_1"]),  # sort_descending, next_minus_current
        "seeds": [0, 1, 2],
        "stacked": False,
        "model": {"n_layers": N_LAYERS, "d_model": D_MODEL, "n_heads": 2, "d_head": 8, "d_mlp": 32},
        "train": {
            "max_steps": 8,
            "batch_size": 32,
            "val_every": 4,
            "val_size": 64,
            "test_size": 64,
        },
        "retry": {"thresholds": {"acc": 0.0, "iia": 0.0, "strict_acc": 0.0}},
    }
    path = tmp / "tasks.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "disabled")
        assert main(["zoo", "--config", str(path), "--root", str(tmp), "--no-progress"]) == 0
    return list(Zoo.load(tmp / "tasks"))


def test_branching_shapes_and_path_slices(task_zoo):
    tokens = probe_tokens(["algorithm_1"], 24, seed=0)
    units = paper_units(task_zoo, ["algorithm_1"], tokens, k=2, m=3, seed=0)
    assert len(units) == 2**2  # k ** depth root-to-leaf paths
    d = (N_LAYERS + 1) * D_MODEL
    for u in units:
        assert u.group == "algorithm_1"
        assert u.reprs.shape == (24, 2 * d) and u.impls.shape == (3, 24, 2 * d)
        assert u.meta["stage_dims"] == [d, d]
    assert len({u.id for u in units}) == 4
    assert {tuple(u.meta["path"]) for u in units} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    # a path's stage-2 slice is its stage-2 model run on its own stage-1 model's outputs
    comp = sample_composition("algorithm_1", task_pools(task_zoo), 2, seed=0)
    by_path = {tuple(u.meta["path"]): u for u in units}
    for (i, j), u in by_path.items():
        first, second = comp.stages[0][i].model, comp.stages[1][j].model
        assert torch.allclose(u.reprs[:, :d], representations(first, tokens), atol=1e-5)
        chain = representations([first, second], tokens)
        assert torch.allclose(u.reprs, chain, atol=1e-5)
    assert torch.equal(by_path[0, 0].reprs[:, :d], by_path[0, 1].reprs[:, :d])  # shared prefix


def test_deterministic_under_the_seed_and_comparable(task_zoo):
    tokens = probe_tokens(["algorithm_1"], 24, seed=0)
    a = paper_units(task_zoo, ["algorithm_1"], tokens, k=2, m=3, seed=5)
    b = paper_units(task_zoo, ["algorithm_1"], tokens, k=2, m=3, seed=5)
    assert [u.meta["members"] for u in a] == [u.meta["members"] for u in b]
    assert all(
        torch.equal(x.reprs, y.reprs) and torch.equal(x.impls, y.impls)
        for x, y in zip(a, b, strict=True)
    )
    pools = task_pools(task_zoo)
    samples = {
        tuple(
            m.id for stage in sample_composition("algorithm_1", pools, 2, s).stages for m in stage
        )
        for s in range(8)
    }
    assert len(samples) > 1  # the seed picks the sample
    rows = pairwise_congruity(a, impls="intervention", seed=0)
    assert len(rows) == 6 and all(0 <= r["p"] <= 1 for r in rows)


def test_max_paths_and_too_small_pools(task_zoo):
    tokens = probe_tokens(["algorithm_1"], 16, seed=0)
    comp = sample_composition("algorithm_1", task_pools(task_zoo), 3, seed=0)
    assert comp.n_paths == 9
    units = composition_units(comp, tokens, m=0, seed=0, max_paths=4)
    assert len(units) == 4 and units[0].impls.shape[0] == 0
    with pytest.raises(ValueError, match="needs 4 converged members"):
        sample_composition("algorithm_1", task_pools(task_zoo), 4, seed=0)


def tiny_toy(name: str, **zoo):
    """A toy experiment config of algorithm_1 with 2 seeds of tiny members (all counted
    converged) and the paper code's composition with 2 models per stage."""
    from interpeq.reproduce import ExperimentConfig

    tiny = {"max_steps": 6, "batch_size": 32, "val_every": 3, "val_size": 64, "test_size": 64}
    model = {"n_layers": 2, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32}
    return ExperimentConfig.from_dict(
        {
            "experiment": "toy",
            "zoo": {"name": name, "algorithms": ["algorithm_1"], "seeds": [0, 1],
                    "stacked": False, "model": model, "train": tiny,
                    "retry": {"thresholds": {"acc": 0.0, "iia": 0.0, "strict_acc": 0.0}},
                    **zoo},
            "compare": {"n_probes": 24, "m": 3, "impls": ["intervention"],
                        "compose": "paper", "paper_k": 2},
        }
    )  # fmt: skip


def test_compare_paper_trains_the_task_zoo_and_tests_the_paths(tmp_path, monkeypatch):
    from interpeq.reproduce import ExperimentConfig
    from interpeq.reproduce.paper_composition import compare_paper

    monkeypatch.setenv("WANDB_MODE", "disabled")
    cfg = tiny_toy("alg", task_model={"algorithm_1/stage0": {"d_mlp": 16}})
    rows = compare_paper(cfg, tmp_path, ["algorithm_1"], logger="none", progress=False)
    assert (tmp_path / "alg_tasks").is_dir() and len(rows) == 6  # 4 paths, all pairs
    with pytest.raises(ValueError, match="compare.compose must be one of"):
        ExperimentConfig.from_dict({"experiment": "toy", "zoo": cfg.raw["zoo"],
                                    "compare": {"compose": "tree"}})  # fmt: skip


def test_only_stage_models_trained_on_their_tasks_own_inputs_are_shared():
    from interpeq.reproduce.paper_composition import faithful_task, task_zoo_config

    shared = {f"algorithm_{a}/stage0": faithful_task(f"algorithm_{a}/stage0") for a in range(1, 7)}
    assert shared == {
        "algorithm_1/stage0": "sort_descending",  # its own sampler
        "algorithm_2/stage0": None,  # mixes in descending runs
        "algorithm_3/stage0": None,  # mixes in zeros
        "algorithm_4/stage0": "sort_ascending",
        "algorithm_5/stage0": "any_duplicate",
        "algorithm_6/stage0": None,  # duplicate-balanced inputs
    }
    assert faithful_task("algorithm_1/stage1") is None and faithful_task("rank") is None
    cfg = task_zoo_config({"name": "z", "task_train": {"rank": {"lr": 0.001}}},
                          ["algorithm_1", "algorithm_6"], shared=["sort_descending"])  # fmt: skip
    assert cfg["tasks"] == ["next_minus_current", "rank", "any_duplicate"]
    assert cfg["name"] == "z_tasks" and cfg["task_train"] == {"rank": {"lr": 0.001}}


def test_the_toy_report_draws_the_paper_composition_beside_ours(tmp_path, monkeypatch):
    import json

    from interpeq.reproduce.toy import run_toy

    monkeypatch.setenv("WANDB_MODE", "disabled")
    cfg = tiny_toy("t")
    summary = run_toy(cfg, tmp_path, logger="none", progress=False)
    report = tmp_path / "t" / "report"
    for form in ("two_sided", "one_sided"):
        res = summary["results"][f"paper/{form}"]
        assert res["source"] == "paper" and res["n_pairs"] == 6  # 2 x 2 paths, all pairs
        assert res["n_pairs_matrix"]["algorithm_1"] == [6.0]
        assert (report / f"algorithm_matrix_paper_{form}.png").stat().st_size > 0
    assert "intervention/two_sided" in summary["results"]  # ours stays the headline
    assert summary["headline"] == "intervention/two_sided"
    assert summary["paper_composition_seconds"] > 0
    # algorithm_1/stage0 is sort_descending on its own inputs: taken from the algorithm
    # zoo; only next_minus_current is trained for the per-task zoo
    trained = sorted(p.name for p in (tmp_path / "t_tasks").iterdir() if "-D-s" in p.name)
    assert trained == ["next_minus_current-D-s0", "next_minus_current-D-s1"]
    md = (report / "report.md").read_text()
    assert "the paper code's composition" in md and "not independent chains" in md
    assert (
        json.loads((report / "summary.json").read_text())["results"].keys()
        == summary["results"].keys()
    )
