"""The hooked transformer: hook names, caching, hooks, patching, bad input."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call, stack_module_state, vmap

from interpeq.models import (
    MLP,
    AttnHead,
    Component,
    HookedTransformer,
    HookedTransformerConfig,
    patch_components,
    patch_hooks,
)

CFG = HookedTransformerConfig(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64)


def tokens(batch=4, seed=0, cfg=CFG):
    gen = torch.Generator().manual_seed(seed)
    t = torch.randint(0, cfg.d_vocab - 1, (batch, cfg.n_ctx), generator=gen)
    t[:, 0] = cfg.d_vocab - 1
    return t


@pytest.fixture(scope="module")
def model():
    return HookedTransformer(CFG)


def test_logits_shape_and_seeded_init(model):
    out = model(tokens())
    assert out.shape == (4, CFG.n_ctx, CFG.d_vocab_out)
    assert torch.equal(out, HookedTransformer(CFG)(tokens()))
    assert not torch.equal(out, HookedTransformer(CFG.replace(seed=1))(tokens()))


def test_hook_names_follow_transformer_lens(model):
    names = set(model.hook_names)
    for name in [
        "hook_embed",
        "hook_pos_embed",
        "blocks.0.hook_resid_pre",
        "blocks.0.hook_resid_mid",
        "blocks.1.hook_resid_post",
        "blocks.0.attn.hook_q",
        "blocks.0.attn.hook_k",
        "blocks.0.attn.hook_v",
        "blocks.0.attn.hook_z",
        "blocks.0.attn.hook_pattern",
        "blocks.0.attn.hook_attn_scores",
        "blocks.0.attn.hook_result",
        "blocks.0.hook_attn_out",
        "blocks.1.mlp.hook_pre",
        "blocks.1.mlp.hook_post",
        "blocks.1.hook_mlp_out",
        "ln_final.hook_normalized",
    ]:
        assert name in names, name
    attn_only = HookedTransformer(CFG.replace(d_mlp=0))
    assert not [n for n in attn_only.hook_names if "mlp" in n]
    assert all(c.kind == "attn" for c in attn_only.components())


def test_run_with_cache_caches_only_requested(model):
    _, cache = model.run_with_cache(tokens(), names_filter=["blocks.0.attn.hook_z"])
    assert list(cache) == ["blocks.0.attn.hook_z"]
    assert cache["blocks.0.attn.hook_z"].shape == (4, CFG.n_ctx, CFG.n_heads, CFG.d_head)
    _, cache = model.run_with_cache(tokens(), names_filter=lambda n: n.endswith("pattern"))
    assert sorted(cache) == ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"]
    torch.testing.assert_close(
        cache["blocks.0.attn.hook_pattern"].sum(-1), torch.ones(4, 4, CFG.n_ctx)
    )
    # hooks are gone afterwards
    assert not any(hp.active for hp in model.hook_dict.values())


def test_unknown_hook_name_lists_valid_ones(model):
    with pytest.raises(ValueError, match="valid names.*hook_embed"):
        model.run_with_cache(tokens(), names_filter=["blocks.0.attn.hook_nope"])


def test_per_head_result_is_consistent_and_optional(model):
    plain = model(tokens())
    out, cache = model.run_with_cache(
        tokens(), names_filter=["blocks.0.attn.hook_result", "blocks.0.hook_attn_out"]
    )
    torch.testing.assert_close(out, plain)
    b_O = model.blocks[0].attn.b_O
    torch.testing.assert_close(
        cache["blocks.0.attn.hook_result"].sum(-2) + b_O, cache["blocks.0.hook_attn_out"]
    )
    assert not model.blocks[0].attn.hook_result.active


def test_run_with_hooks_replaces_and_cleans_up(model):
    zero_attn = [("blocks.0.hook_attn_out", lambda a, hook: torch.zeros_like(a))]
    changed = model.run_with_hooks(tokens(), fwd_hooks=zero_attn)
    assert not torch.allclose(changed, model(tokens()))
    with pytest.raises(RuntimeError), model.hooks(zero_attn):
        raise RuntimeError("boom")
    assert not any(hp.active for hp in model.hook_dict.values())


def test_causal_vs_bidirectional():
    t = tokens()
    t2 = t.clone()
    t2[:, -1] = (t2[:, -1] + 1) % 10
    causal = HookedTransformer(CFG.replace(attention="causal"))
    assert torch.allclose(causal(t)[:, :-1], causal(t2)[:, :-1], atol=1e-6)
    bidi = HookedTransformer(CFG)
    assert not torch.allclose(bidi(t)[:, :-1], bidi(t2)[:, :-1])


def test_no_layer_norm_keeps_hooks():
    m = HookedTransformer(CFG.replace(normalization=False))
    _, cache = m.run_with_cache(
        tokens(), names_filter=["ln_final.hook_normalized", "blocks.1.hook_resid_post"]
    )
    torch.testing.assert_close(cache["ln_final.hook_normalized"], cache["blocks.1.hook_resid_post"])


component_lists = st.lists(
    st.one_of(
        st.builds(AttnHead, st.integers(0, CFG.n_layers - 1), st.integers(0, CFG.n_heads - 1)),
        st.builds(MLP, st.integers(0, CFG.n_layers - 1)),
    ),
    min_size=1,
    max_size=5,
    unique=True,
)


@settings(max_examples=25, deadline=None)
@given(comps=component_lists, seed=st.integers(0, 100))
def test_patching_same_input_is_identity_other_input_changes(model, comps, seed):
    base, source = tokens(seed=seed), tokens(seed=seed + 1000)
    clean = model(base)
    torch.testing.assert_close(patch_components(model, base, base, comps), clean, rtol=0, atol=1e-6)
    patched = patch_components(model, base, source, comps)
    assert (patched - clean).abs().amax() > 1e-4


def test_patching_matches_manual_replacement(model):
    base, source = tokens(seed=1), tokens(seed=2)
    _, src = model.run_with_cache(source, names_filter=["blocks.1.attn.hook_z"])

    def manual(z, hook):
        z = z.clone()
        z[:, :, 2] = src["blocks.1.attn.hook_z"][:, :, 2]
        return z

    expected = model.run_with_hooks(base, fwd_hooks=[("blocks.1.attn.hook_z", manual)])
    torch.testing.assert_close(patch_components(model, base, source, [AttnHead(1, 2)]), expected)


def test_per_sample_selection(model):
    base, source = tokens(seed=3), tokens(seed=4)
    comps = [AttnHead(0, 1), MLP(1)]
    select = torch.tensor([[True, False], [False, True], [True, True], [False, False]])
    out = patch_components(model, base, source, comps, select=select)
    for row, chosen in enumerate(select.tolist()):
        subset = [c for c, s in zip(comps, chosen, strict=True) if s]
        expected = patch_components(model, base[row : row + 1], source[row : row + 1], subset)
        torch.testing.assert_close(out[row : row + 1], expected)


def test_patching_is_differentiable_and_vmappable():
    models = [HookedTransformer(CFG.replace(seed=s)) for s in range(3)]
    comps = [AttnHead(0, 0), MLP(0)]
    params, buffers = stack_module_state(models)
    net = models[0]
    base, source = tokens(seed=5), tokens(seed=6)

    def patched_functional(p, b, x, s):
        cache = {}
        with net.hooks(
            [(c.hook_name, lambda a, hook: cache.__setitem__(hook.name, a)) for c in comps]
        ):
            functional_call(net, (p, b), (s,))
        with net.hooks(patch_hooks(cache, comps)):
            return functional_call(net, (p, b), (x,))

    out = vmap(patched_functional, in_dims=(0, 0, None, None))(params, buffers, base, source)
    for i, m in enumerate(models):
        torch.testing.assert_close(
            out[i], patch_components(m, base, source, comps), atol=1e-5, rtol=1e-5
        )
    loss = patch_components(models[0], base, source, comps).sum()
    loss.backward()
    assert models[0].W_E.grad is not None


def test_component_addresses():
    assert str(AttnHead(1, 2)) == "L1H2" and str(MLP(0)) == "L0MLP"
    assert Component.parse("L1H2") == AttnHead(1, 2) and Component.parse("L0MLP") == MLP(0)
    with pytest.raises(ValueError, match="L<layer>H<head>"):
        Component.parse("layer1")


def test_missing_component_is_clear_error(model):
    with pytest.raises(ValueError, match=r"\['L5H0'\] do not exist"):
        patch_components(model, tokens(), tokens(seed=1), [AttnHead(5, 0)])


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.full((2, 10), 12), "outside the vocabulary"),
        (torch.full((2, 10), -1), "outside the vocabulary"),
        (torch.zeros(2, 11, dtype=torch.long), "exceeds n_ctx"),
        (torch.zeros(10, dtype=torch.long), r"shape \[batch, pos\]"),
        (torch.zeros(2, 10), "integer tensor"),
    ],
)
def test_bad_tokens(model, bad, match):
    with pytest.raises(ValueError, match=match):
        model(bad)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"act_fn": "tanh"}, "act_fn"),
        ({"d_mlp": -1}, "d_mlp"),
        ({"attention": "sparse"}, "attention"),
    ],
)
def test_bad_config(changes, match):
    with pytest.raises(ValueError, match=match):
        CFG.replace(**changes)
    with pytest.raises(ValueError, match="unknown model config keys"):
        HookedTransformerConfig.from_dict({"n_layer": 2})


def test_config_round_trip():
    assert HookedTransformerConfig.from_dict(CFG.to_dict()) == CFG
    assert CFG.same_architecture(CFG.replace(seed=7))
    assert not CFG.same_architecture(CFG.replace(n_heads=2))
