"""Representations of hooked transformers and co-implementations by resample patching."""

import pytest
import torch

from interpeq.equivalence import (
    circuit_of,
    circuit_patches,
    co_implementations,
    representations,
)
from interpeq.models import MLP, AttnHead, HookedTransformer, HookedTransformerConfig

CFG = HookedTransformerConfig(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, init_std=0.3)
CIRCUIT = [AttnHead(0, 0), MLP(1)]


def probe_tokens(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, 11, (n, 10), generator=g)
    t[:, 0] = 11
    return t


@pytest.fixture(scope="module")
def model():
    return HookedTransformer(CFG)


def test_default_representation(model):
    tok = probe_tokens()
    rep = representations(model, tok, batch_size=16)
    assert rep.shape == (64, 3 * 16) and rep.dtype == torch.float32
    _, cache = model.run_with_cache(tok, names_filter=model.residual_hook_names())
    manual = torch.cat(
        [model.ln_final(cache[n])[:, 1:].mean(1) for n in model.residual_hook_names()], 1
    )
    assert torch.allclose(rep, manual, atol=1e-6)
    assert model.training  # mode restored


def test_representation_options(model):
    tok = probe_tokens()
    assert representations(model, tok, layers=[2]).shape == (64, 16)
    last = representations(model, tok, positions="last", apply_ln=False, layers=[0])
    _, cache = model.run_with_cache(tok, names_filter=["blocks.0.hook_resid_pre"])
    assert torch.allclose(last, cache["blocks.0.hook_resid_pre"][:, -1])
    assert representations(model, tok, positions=3).shape == (64, 48)
    assert not torch.allclose(
        representations(model, tok, include_bos=True), representations(model, tok)
    )
    with pytest.raises(ValueError, match="positions"):
        representations(model, tok, positions="first")
    with pytest.raises(ValueError, match="out of range"):
        representations(model, tok, layers=[3])
    with pytest.raises(ValueError, match="tokens must be an integer tensor"):
        representations(model, tok.float())


def test_chain_feeds_predictions(model):
    tok = probe_tokens()
    second = HookedTransformer(CFG.replace(seed=1))
    chain = representations([model, second], tok)
    assert chain.shape == (64, 96)
    assert torch.allclose(chain[:, :48], representations(model, tok))
    stage2 = torch.cat([tok[:, :1], model(tok)[:, 1:].argmax(-1)], 1)
    assert torch.allclose(chain[:, 48:], representations(second, stage2))


class Corr:
    circuit = frozenset(CIRCUIT)


def test_co_implementations(model):
    tok = probe_tokens()
    impls = co_implementations(model, CIRCUIT, tok, m=5, seed=0, batch_size=100)
    assert impls.shape == (5, 64, 48)
    assert torch.equal(impls, co_implementations(model, Corr(), tok, m=5, seed=0))  # batching-free
    assert not torch.equal(impls, co_implementations(model, CIRCUIT, tok, m=5, seed=1))
    base = representations(model, tok)
    assert all(not torch.allclose(impls[j], base) for j in range(5))  # patching moved them
    patched = circuit_patches(model, Corr(), tok, m=3, seed=0)
    assert patched.shape == (3, 64, 48)


def test_co_implementations_bad_input(model):
    tok = probe_tokens()
    with pytest.raises(ValueError, match="no non-circuit components"):
        co_implementations(model, model.components(), tok, m=2)
    with pytest.raises(ValueError, match="do not exist"):
        co_implementations(model, [AttnHead(5, 0)], tok, m=2)
    with pytest.raises(ValueError, match="m must be a positive int"):
        co_implementations(model, CIRCUIT, tok, m=0)
    with pytest.raises(ValueError, match="correspondence"):
        co_implementations(model, 3, tok)
    assert circuit_of(["L0H0", MLP(1)]) == CIRCUIT


def test_co_implementations_match_per_draw_patching(model):
    """The sources come from one clean pass over the probes: the same numbers as
    patching each draw from a forward over its own permuted source rows."""
    from interpeq.models.components import patch_hooks, required_hooks

    tok = probe_tokens(24)
    impls = co_implementations(model, CIRCUIT, tok, m=4, seed=3, batch_size=10)
    pool = [c for c in model.components() if c not in set(CIRCUIT)]
    gen = torch.Generator().manual_seed(3)
    for j in range(4):
        mask = torch.zeros(len(pool), dtype=torch.bool)
        while not mask.any():
            mask = torch.rand(len(pool), generator=gen) < 0.5
        perm = torch.randperm(24, generator=gen)
        _, src = model.run_with_cache(tok[perm], names_filter=required_hooks(pool))
        with model.hooks(patch_hooks(src, pool, mask.expand(24, -1))):
            expected = representations(model, tok)
        assert torch.allclose(impls[j], expected, atol=1e-6)
