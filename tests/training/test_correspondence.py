"""Correspondences: JSON round trip, validation errors, default and sampled correspondences."""

import pytest

from interpeq.models import MLP, AttnHead, HookedTransformerConfig
from interpeq.tasks import get_task, list_tasks
from interpeq.training import Correspondence, default_correspondence, sample_correspondence

CFG = HookedTransformerConfig()
SORT = get_task("sort_ascending")
PARITY = get_task("alternating_parity")


def test_json_round_trip_and_circuit():
    corr = Correspondence({"rank": ["L0H1"], "output": [AttnHead(1, 0), "L1H3"]})
    assert Correspondence.from_json(corr.to_json()) == corr
    assert corr.to_dict() == {"rank": ["L0H1"], "output": ["L1H0", "L1H3"]}
    assert corr.circuit == frozenset({AttnHead(0, 1), AttnHead(1, 0), AttnHead(1, 3)})
    assert corr.components_of("output") == (AttnHead(1, 0), AttnHead(1, 3))
    non = corr.non_circuit(CFG)
    assert len(non) == 2 * 4 + 2 - 3 and MLP(0) in non and AttnHead(0, 1) not in non
    assert non == sorted(non, key=lambda c: c.sort_key())
    corr.validate(SORT, CFG)


@pytest.mark.parametrize(
    "mapping, match",
    [
        ({"rank": ["L0H7"], "output": ["L1H0"]}, r"\['L0H7'\] do not exist.*valid: \['L0H0'"),
        ({"rank": ["L2H0"], "output": ["L1H0"]}, "do not exist"),
        (
            {"rnak": ["L0H0"], "output": ["L1H0"]},
            r"unknown variable\(s\) \['rnak'\].*valid variables: \['rank', 'output'\]",
        ),
        ({"output": ["L1H0"]}, r"\['rank'\] .* not aligned"),
        ({"rank": ["L0MLP"], "output": ["L1H0"]}, "kind 'attn' but is aligned to \\['L0MLP'\\]"),
        ({"rank": ["L1H0"], "output": ["L1H1"]}, "do not run strictly after"),
        ({"rank": ["L0H0"], "output": ["L0H1"]}, "do not run strictly after"),
    ],
)
def test_invalid_correspondences(mapping, match):
    with pytest.raises(ValueError, match=match):
        Correspondence(mapping).validate(SORT, CFG)


def test_claimed_twice_and_parse_errors():
    with pytest.raises(ValueError, match="L0H0 is claimed twice"):
        Correspondence({"rank": ["L0H0"], "output": ["L0H0"]})
    with pytest.raises(ValueError, match="L<layer>H<head>"):
        Correspondence({"rank": ["head0"]})
    with pytest.raises(ValueError, match="not valid JSON"):
        Correspondence.from_json("{rank")


def test_mlp_may_read_a_head_of_its_own_layer_but_not_vice_versa():
    Correspondence({"parity": ["L0MLP"], "prev_parity": ["L1H0"], "output": ["L1MLP"]}).validate(
        PARITY, CFG
    )
    with pytest.raises(ValueError, match="strictly after"):
        Correspondence(
            {"parity": ["L0MLP"], "prev_parity": ["L0H0"], "output": ["L1MLP"]}
        ).validate(PARITY, CFG)


@pytest.mark.parametrize("name", list_tasks(kind="task"))
def test_default_and_sampled_correspondences_are_valid(name):
    task = get_task(name)
    default = default_correspondence(task, CFG)
    assert default == default_correspondence(task, CFG)
    assert set(default.variables) == {*task.model.intermediate, "output"}
    for seed in range(3):
        a = sample_correspondence(task, CFG, seed)
        assert a == sample_correspondence(task, CFG, seed)
        a.validate(task, CFG)
        within = sample_correspondence(task, CFG, seed, within_layer=True)
        for var, comps in default.items():
            assert sorted((c.layer, c.kind) for c in comps) == sorted(
                (c.layer, c.kind) for c in within.components_of(var)
            )


def test_within_layer_varies_heads_and_heads_per_variable():
    draws = {sample_correspondence(SORT, CFG, s, within_layer=True) for s in range(20)}
    assert len(draws) > 3
    two = default_correspondence(SORT, CFG, heads_per_variable=2)
    assert two.components_of("rank") == (AttnHead(0, 0), AttnHead(0, 1))
    assert len(sample_correspondence(SORT, CFG, 1, heads_per_variable=2).components_of("rank")) == 2


def test_declared_heads_per_variable():
    # a sort's rank declares 4 heads, its output 2 (Variable.heads); capped at the layer's head count
    assert (SORT.model["rank"].heads, SORT.model["output"].heads) == (4, 2)
    assert default_correspondence(SORT, CFG).components_of("rank") == tuple(
        AttnHead(0, h) for h in range(4)
    )
    narrow = CFG.replace(n_heads=2, d_head=32)
    assert len(default_correspondence(SORT, narrow).components_of("rank")) == 2
    for seed in range(5):
        assert len(sample_correspondence(SORT, CFG, seed).components_of("rank")) == 4
        assert (
            len(sample_correspondence(SORT, CFG, seed, within_layer=True).components_of("rank"))
            == 4
        )
    # overrides: an int for every variable, a mapping for the variables it names
    assert default_correspondence(SORT, CFG).to_dict()["output"] == ["L1H0", "L1H1"]
    one = default_correspondence(SORT, CFG, heads_per_variable={"rank": 1})
    assert one.to_dict() == {"rank": ["L0H0"], "output": ["L1H0", "L1H1"]}
    assert default_correspondence(SORT, CFG, heads_per_variable=1).to_dict() == {
        "rank": ["L0H0"],
        "output": ["L1H0"],
    }
    with pytest.raises(ValueError, match="head count"):
        default_correspondence(SORT, CFG, heads_per_variable={"rank": 0})
    # a layer without enough free heads is skipped, not half-filled
    three = default_correspondence(get_task("rank"), CFG.replace(n_layers=3), heads_per_variable=3)
    assert {c.layer for c in three.components_of("n_eq")} == {1}


def test_does_not_fit_is_clear():
    with pytest.raises(ValueError, match="does not fit"):
        default_correspondence(get_task("any_duplicate"), CFG.replace(n_layers=1))
    with pytest.raises(ValueError, match="does not fit"):
        default_correspondence(PARITY, CFG.replace(d_mlp=0))
