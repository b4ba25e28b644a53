"""LMAdapter over a TransformerLens HookedTransformer (interpeq.lm.tl_adapter): reached
through the hook points TransformerLens names, with the same numbers as a run with
hooks; the same GPT-2 through either door gives the same representations and head
importance (where TransformerLens is installed); anything else is one clear error."""

import pytest
import torch
from conftest import gpt2

from interpeq.lm import LMAdapter
from interpeq.lm.tl_adapter import TLAdapter
from interpeq.models import MLP, AttnHead, HookedTransformer, HookedTransformerConfig
from tests.conftest import transformer_lens_or_skip


@pytest.fixture(scope="module")
def hooked():
    """interpeq's own model: it has TransformerLens's hook names, so it goes through the
    same door as a TransformerLens model (causal, like a language model)."""
    torch.manual_seed(0)
    cfg = HookedTransformerConfig(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64,
                                  n_ctx=12, d_vocab=20, d_vocab_out=20, attention="causal")  # fmt: skip
    return HookedTransformer(cfg).eval()


def _tokens(n=5, t=12, v=20, seed=1):
    return torch.randint(0, v, (n, t), generator=torch.Generator().manual_seed(seed))


def _check_against_hooks(model):
    adapter = LMAdapter(model, name="tl", device="cpu")
    assert isinstance(adapter, TLAdapter)
    x, src = _tokens(), _tokens(seed=2)
    _, cache = model.run_with_cache(x)
    L = adapter.n_layers
    states = [cache[f"blocks.{k}.hook_resid_pre"] for k in range(L)]
    states.append(cache[f"blocks.{L - 1}.hook_resid_post"])
    want = torch.cat([s[:, -1] for s in states], dim=-1)
    assert torch.allclose(adapter.representations(x, apply_ln=False), want, atol=1e-6)
    # patch head (1, 2) and MLP 0 with their values on other prompts
    comps = [AttnHead(1, 2), MLP(0)]
    acts = adapter.activations(src, components=comps)
    _, src_cache = model.run_with_cache(src)
    assert torch.allclose(acts[AttnHead(1, 2)], src_cache["blocks.1.attn.hook_z"][:, :, 2])

    def head(z, hook):
        z[:, :, 2] = src_cache["blocks.1.attn.hook_z"][:, :, 2]
        return z

    hooks = [("blocks.1.attn.hook_z", head),
             ("blocks.0.hook_mlp_out", lambda y, hook: src_cache["blocks.0.hook_mlp_out"])]  # fmt: skip
    want = model.run_with_hooks(x, fwd_hooks=hooks)
    got = adapter.patched_logits(x, None, comps, acts, position=None)
    assert torch.allclose(got, want, atol=1e-5)
    return adapter


def test_a_model_with_transformer_lens_hook_names_goes_through_the_same_door(hooked):
    adapter = _check_against_hooks(hooked)
    assert adapter.components()[:2] == [AttnHead(0, 0), AttnHead(0, 1)]


def test_other_objects_are_one_clear_error():
    with pytest.raises(ValueError, match="unsupported model Linear"):
        LMAdapter(torch.nn.Linear(2, 2))

    class TransformerBridge(torch.nn.Module):
        pass

    with pytest.raises(ValueError, match="pass that model and its tokenizer to LMAdapter"):
        LMAdapter(TransformerBridge())


def test_transformer_lens_gpt2_gives_the_hugging_face_numbers(tokenizer):
    tl = transformer_lens_or_skip()
    from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights

    from interpeq.lm.circuits import head_importance
    from interpeq.lm.ioi import ioi_prompts, tokenize

    hf = gpt2(len(tokenizer))
    cfg = tl.HookedTransformerConfig(
        n_layers=2, d_model=32, n_ctx=64, d_head=8, n_heads=4, d_mlp=128,
        d_vocab=len(tokenizer), act_fn="gelu_new", normalization_type="LN",
        original_architecture="GPT2LMHeadModel",
    )  # fmt: skip
    model = tl.HookedTransformer(cfg)
    model.load_state_dict(convert_gpt2_weights(hf, cfg), strict=False)
    _check_against_hooks(model)
    batch = tokenize(ioi_prompts(16, seed=0), tokenizer)
    a_hf = LMAdapter(hf, tokenizer, name="hf", device="cpu")
    a_tl = LMAdapter(model.eval(), tokenizer, name="tl", device="cpu")
    r_hf = a_hf.representations(batch.clean, batch.mask)
    r_tl = a_tl.representations(batch.clean, batch.mask)
    assert (r_hf - r_tl).abs().max() < 1e-4
    i_hf, i_tl = head_importance(a_hf, batch), head_importance(a_tl, batch)
    assert (i_hf.importance - i_tl.importance).abs().max() < 1e-4
