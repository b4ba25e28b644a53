"""Seeded determinism, balanced samplers, datasets export, describe()."""

import pytest
import torch

from interpeq.tasks import (
    BOS,
    describe,
    get_algorithm,
    get_task,
    list_algorithms,
    list_matched_pairs,
    list_tasks,
    to_dataset,
)

BOOLEAN = ["any_duplicate", "all_equal", "alternating_parity"]
BOOLEAN += [b for a, b in list_matched_pairs() if a in BOOLEAN]
BOOLEAN_ALGS = ["algorithm_2", "algorithm_3", "algorithm_5", "algorithm_6"]


@pytest.mark.parametrize("name", list_tasks() + list_algorithms())
def test_sampling_is_seeded(name):
    task = get_algorithm(name) if name.startswith("algorithm") else get_task(name)
    a = task.sample(200, seed=7)
    assert a.dtype == torch.long and a.shape == (200, task.seq_len)
    assert (a[:, 0] == BOS).all() and (a[:, 1:] < BOS).all() and (a[:, 1:] >= 0).all()
    assert torch.equal(a, task.sample(200, seed=7))
    assert not torch.equal(a, task.sample(200, seed=8))
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(task.sample_pairs(50, g1)[1], task.sample_pairs(50, g2)[1])
    base, source = task.sample_pairs(50, seed=1)
    assert not torch.equal(base, source)


@pytest.mark.parametrize("name", BOOLEAN + BOOLEAN_ALGS)
def test_boolean_classes_balanced(name):
    task = get_algorithm(name) if name.startswith("algorithm") else get_task(name)
    labels = task.labels(task.sample(4000, seed=0))[:, 1:]
    assert set(labels.unique().tolist()) <= {0, 1}
    frac = labels.float().mean().item()
    assert 0.2 < frac < 0.8, frac


def test_any_duplicate_sampler_has_hard_negatives():
    x = get_task("any_duplicate").sample_content(4000, seed=0)
    n_distinct = torch.tensor([len(set(r)) for r in x.tolist()])
    assert (n_distinct == 8).float().mean() > 0.1  # exactly one duplicate pair


@pytest.mark.parametrize("name", ["rank", "algorithm_5"])
def test_dataset_export_is_deterministic(name):
    task = get_algorithm(name) if name.startswith("algorithm") else get_task(name)
    a, b = to_dataset(task, 64, seed=3), to_dataset(task, 64, seed=3)
    assert a.column_names == ["tokens", "labels", "source_tokens"]
    assert a._fingerprint == b._fingerprint
    assert a.to_dict() == b.to_dict()
    tokens = torch.tensor(a["tokens"])
    assert torch.equal(torch.tensor(a["labels"]), task.labels(tokens))
    assert torch.tensor(a["source_tokens"]).shape == tokens.shape
    test = to_dataset(task, 64, seed=3, split="test")
    assert test["tokens"] != a["tokens"]
    assert to_dataset(task, 64, seed=4)["tokens"] != a["tokens"]


def test_describe_rows():
    rows = {r["name"]: r for r in describe()}
    assert set(rows) == set(list_tasks()) | set(list_algorithms())
    assert rows["algorithm_6"]["stages"] == ("rank", "any_duplicate")
    assert rows["all_equal_minmax"]["kind"] == "matched"
    assert ("dup", "attn", 1) in rows["any_duplicate"]["variables"]
    assert all(r["doc"] for r in rows.values())
