"""Behaviour-matched pairs: same outputs everywhere, different intermediate variables."""

import pytest
import torch
from hypothesis import given
from tasks_reference import SETTINGS, rows_strategy, with_bos

from interpeq.tasks import get_task, list_matched_pairs, list_tasks

PAIRS = list_matched_pairs()


def test_at_least_two_pairs_registered():
    assert len(PAIRS) >= 2
    for a, b in PAIRS:
        assert a in list_tasks() and b in list_tasks("matched")


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}~{p[1]}")
def test_identical_behaviour(pair):
    a, b = (get_task(n) for n in pair)
    assert torch.equal(a.sample(64, 5), b.sample(64, 5)), "pair members share the sampler"

    @SETTINGS
    @given(rows_strategy(a, 8))
    def check(rows):
        tokens = with_bos(rows)
        assert torch.equal(a.labels(tokens), b.labels(tokens))

    check()


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}~{p[1]}")
def test_different_intermediates(pair):
    """No intermediate of one member agrees with one of the other on all values and interventions."""
    a, b = (get_task(n) for n in pair)
    assert set(a.model.intermediate) != set(b.model.intermediate)
    base, source = a.sample_pairs(512, seed=11)
    va, vb = a.run(base), b.run(base)
    for v in a.model.intermediate:
        for w in b.model.intermediate:
            same_values = torch.equal(va[v], vb[w])
            same_cf = torch.equal(a.intervene(base, source, v), b.intervene(base, source, w))
            assert not (same_values and same_cf), (v, w)
