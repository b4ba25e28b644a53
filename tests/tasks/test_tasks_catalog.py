"""Every task against plain-Python references, and interventions recomputed by hand."""

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from tasks_reference import DIRECT, SETTINGS, STAGED, ref_run, rows_strategy, with_bos

from interpeq.tasks import IGNORE_INDEX, get_task, list_tasks

TASKS = list_tasks()


def test_catalogue_covers_the_spec():
    assert len(list_tasks("task")) >= 10
    assert set(STAGED) == set(TASKS)
    for name in TASKS:
        model = get_task(name).model
        assert [n for n, _ in STAGED[name](9, 11)] == [*model.intermediate, "output"]
        assert model.intermediate, f"{name} has no intermediate variable"


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("seq_len", [10, 6])
def test_outputs_match_definition(name, seq_len):
    task = get_task(name, seq_len=seq_len)

    @SETTINGS
    @given(rows_strategy(task))
    def check(rows):
        tokens = with_bos(rows)
        labels = task.labels(tokens)
        values = task.run(tokens)
        assert labels.shape == tokens.shape
        assert (labels[:, 0] == IGNORE_INDEX).all()
        for r, row in enumerate(rows):
            assert labels[r, 1:].tolist() == DIRECT[name](row, 11)
            ref = ref_run(name, row, 11)
            for var in values:
                assert values[var][r].tolist() == ref[var], var

    check()


@pytest.mark.parametrize("name", TASKS)
def test_interventions_equal_recomputation(name):
    task = get_task(name)
    choices = [(v,) for v in task.model.intermediate]
    choices += list(itertools.combinations(task.model.intermediate, 2))

    @SETTINGS
    @given(rows_strategy(task, 4), rows_strategy(task, 4), st.sampled_from(choices))
    def check(base, source, variables):
        n = min(len(base), len(source))
        base, source = base[:n], source[:n]
        cf = task.intervene(with_bos(base), with_bos(source), list(variables))
        assert (cf[:, 0] == IGNORE_INDEX).all()
        for r in range(n):
            src = ref_run(name, source[r], 11)
            expected = ref_run(name, base[r], 11, {v: src[v] for v in variables})["output"]
            assert cf[r, 1:].tolist() == expected
        assert ((cf[:, 1:] >= 0) & (cf[:, 1:] < task.d_vocab_out)).all()

    check()


@pytest.mark.parametrize("name", TASKS)
def test_counterfactual_labels_stay_in_vocab(name):
    task = get_task(name)
    base, source = task.sample_pairs(256, seed=3)
    for var in task.model.intermediate:
        cf = task.intervene(base, source, var)
        assert ((cf[:, 1:] >= 0) & (cf[:, 1:] < task.d_vocab_out)).all(), var
    # intervening on nothing reproduces the labels
    assert torch.equal(task.intervene(base, source, []), task.labels(base))


def test_depths_and_kinds():
    model = get_task("any_duplicate").model
    assert [model.depth(v) for v in model.names] == [0, 1, 2]
    assert model["dup"].kind == "attn" and model["output"].kind == "attn"
    assert model["dup"].heads == 4
    model = get_task("all_equal").model
    assert model["n_diff"].kind == "attn" and model["output"].kind == "mlp"
    for name in TASKS:
        for v in get_task(name).model.variables:
            assert v.kind in ("attn", "mlp", "any")
