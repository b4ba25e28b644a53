"""The paper code's construction: circuit-patched copies and the fraction statistic."""

import torch

from interpeq.equivalence import Unit
from interpeq.equivalence.reference import circuit_draws, reference_fraction
from interpeq.equivalence.units import ModelUnit
from interpeq.models import MLP, AttnHead, HookedTransformer, HookedTransformerConfig


def test_fraction_is_high_for_a_model_that_shares_the_patched_part_and_chance_otherwise():
    gen = torch.Generator().manual_seed(0)
    n, d = 300, 6
    circuit = torch.randn(n, d, generator=gen)  # what a's circuit computes
    rest = torch.randn(n, d, generator=gen)
    a = torch.cat([circuit, rest], 1)
    sharing = circuit @ torch.randn(d, d, generator=gen) + 0.05 * torch.randn(n, d, generator=gen)
    other = torch.randn(n, d, generator=gen)  # unrelated to a's circuit
    # copies of a whose circuit part is replaced by another input's (rows permuted)
    draws = torch.stack(
        [torch.cat([circuit[torch.randperm(n, generator=gen)], rest], 1) for _ in range(8)]
    )
    ua, ub, uc = (
        Unit(k, "g", r, torch.zeros(1, n, r.shape[1]))
        for k, r in (("a", a), ("b", sharing), ("c", other))
    )
    self_b = torch.stack([sharing[torch.randperm(n, generator=gen)] for _ in range(8)])
    self_c = torch.stack([other[torch.randperm(n, generator=gen)] for _ in range(8)])
    high = reference_fraction(ua, ub, draws, self_b)["reference_fraction_a"]
    low = reference_fraction(ua, uc, draws, self_c)["reference_fraction_a"]
    assert high == 1.0 and low < 0.75


def test_circuit_draws_of_a_chain_patch_only_the_last_stage():
    cfg = HookedTransformerConfig(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, seed=0)
    m1, m2 = HookedTransformer(cfg), HookedTransformer(cfg.replace(seed=1))
    tokens = torch.randint(0, 10, (24, 10))
    tokens[:, 0] = 11
    unit = ModelUnit(
        "c", "algo", [m1, m2], [[AttnHead(0, 0)], [MLP(1), AttnHead(1, 1)]], ["t0", "t1"]
    )
    draws = circuit_draws(unit, tokens, m=5, seed=0)
    width = 3 * 16
    assert draws.shape == (5, 24, 2 * width)
    first = draws[:, :, :width]
    assert torch.allclose(first, first[0].expand_as(first))  # stage 0 unchanged in every draw
    assert not torch.allclose(draws[0, :, width:], draws[1, :, width:])  # stage 1 patched
    again = circuit_draws(unit, tokens, m=5, seed=0)
    assert torch.equal(draws, again)  # seeded
