"""Composed algorithms: chaining, stage inputs, whole-chain interventions, vocab checks."""

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from tasks_reference import SETTINGS, ref_run_chain, rows_strategy, with_bos

from interpeq.tasks import Algorithm, get_algorithm, get_task, list_algorithms

ALGS = list_algorithms()
SPEC = {
    "algorithm_1": ["sort_descending", "next_minus_current"],
    "algorithm_2": ["sort_descending", "add_index", "all_equal"],
    "algorithm_3": ["sort_ascending", "interleave_reverse", "add_next", "all_equal"],
    "algorithm_4": ["sort_ascending", "alternating_parity"],
    "algorithm_5": ["any_duplicate", "add_next", "all_equal"],
    "algorithm_6": ["rank", "any_duplicate"],
}


def test_presets_match_spec():
    assert ALGS == list(SPEC)
    for name, stages in SPEC.items():
        alg = get_algorithm(name)
        assert [s.name for s in alg.stages] == stages
        assert alg.family == ("sorting" if int(name[-1]) <= 4 else "counting")


@pytest.mark.parametrize("name", ALGS)
def test_labels_equal_chained_stages(name):
    alg = get_algorithm(name)
    tokens = alg.sample(300, seed=2)
    cur = tokens
    inputs = alg.stage_inputs(tokens)
    stage_labels = alg.stage_labels(tokens)
    for k, stage in enumerate(alg.stages):
        assert torch.equal(inputs[k], cur)
        labels = stage.labels(cur)
        assert torch.equal(stage_labels[k], labels)
        cur = stage.add_bos(labels[:, 1:])
    assert torch.equal(alg.labels(tokens), labels)
    last = len(alg.stages) - 1
    assert torch.equal(alg.stage_task_inputs(last, 300, seed=2), inputs[last])


@pytest.mark.parametrize("name", ALGS)
def test_whole_chain_interventions(name):
    alg = get_algorithm(name)
    choices = [(v,) for v in alg.model.intermediate]
    choices += list(itertools.combinations(alg.model.intermediate, 2))

    @SETTINGS
    @given(rows_strategy(alg, 3), rows_strategy(alg, 3), st.sampled_from(choices))
    def check(base, source, variables):
        n = min(len(base), len(source))
        cf = alg.intervene(with_bos(base[:n]), with_bos(source[:n]), list(variables))
        for r in range(n):
            src = ref_run_chain(SPEC[name], source[r], 11)
            patch = {v: src[v] for v in variables}
            expected = ref_run_chain(SPEC[name], base[r], 11, patch)["output"]
            assert cf[r, 1:].tolist() == expected

    check()


def test_prefixed_variables():
    model = get_algorithm("algorithm_6").model
    assert model.intermediate == ("s0.n_leq", "s0.n_eq", "s0.output", "s1.dup")
    assert model.depth("output") == 4
    assert model["s1.dup"].parents == ("s0.output",)


def test_vocab_and_length_mismatch_raise():
    with pytest.raises(ValueError, match=r"stage 0 \(sort_ascending\).*stage 1 \(add_index\)"):
        Algorithm("bad", [get_task("sort_ascending"), get_task("add_index", n_values=5)])
    with pytest.raises(ValueError, match="seq_len"):
        Algorithm("bad", [get_task("sort_ascending"), get_task("add_index", seq_len=6)])
    with pytest.raises(ValueError, match="at least one stage"):
        Algorithm("empty", [])
    with pytest.raises(ValueError, match="out of range"):
        get_algorithm("algorithm_1").stage_task_inputs(2, 4, seed=0)


def test_custom_algorithm_and_seq_len():
    alg = Algorithm("mine", [get_task("rank", seq_len=6), get_task("add_index", seq_len=6)])
    tokens = alg.sample(20, seed=0)
    assert tokens.shape == (20, 6)
    mid = get_task("rank", seq_len=6).labels(tokens)[:, 1:]
    expected = get_task("add_index", seq_len=6).labels(alg.stages[1].add_bos(mid))
    assert torch.equal(alg.labels(tokens), expected)
    assert get_algorithm("algorithm_3", seq_len=6).labels(
        get_algorithm("algorithm_3", 6).sample(4, 0)
    ).shape == (4, 6)
