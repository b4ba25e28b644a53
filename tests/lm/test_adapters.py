"""LMAdapter on tiny random GPT-2 and GPT-NeoX models: representations and patching."""

import pytest
import torch

from interpeq.lm import LMAdapter, ioi_prompts, tokenize
from interpeq.models import MLP, AttnHead


@pytest.fixture(scope="module")
def batch(tokenizer):
    return tokenize(ioi_prompts(12, seed=1, tokenizers=[tokenizer]), tokenizer)


def _direct_states(adapter, batch):
    """hidden_states at the last real token, straight from HF's output_hidden_states."""
    out = adapter.model(input_ids=batch.clean, attention_mask=batch.mask, output_hidden_states=True)
    idx = batch.mask.sum(1) - 1
    ar = torch.arange(len(idx))
    return [h[ar, idx] for h in out.hidden_states]


def test_representations_equal_output_hidden_states(adapter, batch):
    L, d = adapter.n_layers, adapter.d_model
    states = _direct_states(adapter, batch)
    assert len(states) == L + 1
    assert batch.mask.sum(1).unique().numel() > 1  # padded rows are exercised
    ln = adapter._ln_final()
    with torch.no_grad():
        hf = torch.cat(states, -1)
        every = torch.cat([*(ln(s) for s in states[:L]), states[L]], -1)
    got_hf = adapter.representations(batch.clean, batch.mask, apply_ln="last", batch_size=5)
    got = adapter.representations(batch.clean, batch.mask, batch_size=5)
    raw = adapter.representations(batch.clean, batch.mask, apply_ln=False, batch_size=5)
    assert got.shape == got_hf.shape == raw.shape == (12, (L + 1) * d)
    torch.testing.assert_close(got_hf, hf, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got, every, atol=1e-5, rtol=1e-5)
    # raw: the same states before the final norm; HF's last state is ln_f(raw last)
    torch.testing.assert_close(raw[:, : L * d], hf[:, : L * d], atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(ln(raw[:, L * d :]), states[L], atol=1e-5, rtol=1e-5)
    # layers subset and one unpadded row agree with the padded batch
    sub = adapter.representations(batch.clean, batch.mask, layers=[0, L])
    torch.testing.assert_close(sub, torch.cat([got[:, :d], got[:, L * d :]], -1))
    n0 = int(batch.mask[0].sum())
    one = adapter.representations(batch.clean[:1, :n0])
    torch.testing.assert_close(one, got[:1], atol=1e-5, rtol=1e-5)


def _no_hooks(adapter):
    for layer in range(adapter.n_layers):
        assert not adapter._out_proj(layer)._forward_pre_hooks
        assert not adapter._mlp(layer)._forward_hooks
    assert not adapter._ln_final()._forward_pre_hooks


def test_patching_own_activations_is_a_no_op(adapter, batch):
    comps = [AttnHead(0, 1), AttnHead(1, 2), AttnHead(1, 3), MLP(0)]
    own = adapter.activations(batch.clean, batch.mask, comps, batch_size=5)
    assert own[AttnHead(0, 1)].shape == (*batch.clean.shape, adapter.d_head)
    assert own[MLP(0)].shape == (*batch.clean.shape, adapter.d_model)
    clean = adapter.logits(batch.clean, batch.mask)
    patched = adapter.patched_logits(batch.clean, batch.mask, comps, own, batch_size=5)
    torch.testing.assert_close(patched, clean, atol=1e-5, rtol=1e-5)
    _no_hooks(adapter)


def test_patching_from_corrupted_run_changes_logits(adapter, batch):
    clean = adapter.logits(batch.clean, batch.mask)
    for comp in (AttnHead(0, 1), MLP(1)):
        corr = adapter.activations(batch.corrupt, batch.mask, [comp])
        patched = adapter.patched_logits(batch.clean, batch.mask, [comp], corr)
        assert (patched - clean).abs().max() > 1e-4
    _no_hooks(adapter)


def test_set_of_heads_equals_sequential_hooks(adapter, batch):
    comps = [AttnHead(0, 1), AttnHead(1, 2), AttnHead(1, 3), MLP(0)]
    src = adapter.activations(batch.corrupt, batch.mask, comps)
    together = adapter.patched_logits(batch.clean, batch.mask, comps, src)
    with adapter.patching(comps[:1], src):
        with adapter.patching(comps[1:2], src):
            with adapter.patching(comps[2:3], src):
                with adapter.patching(comps[3:], src):
                    one_by_one = adapter.logits(batch.clean, batch.mask)
    torch.testing.assert_close(one_by_one, together, atol=1e-6, rtol=1e-6)
    _no_hooks(adapter)


def test_hooks_are_removed_after_an_error(adapter, batch):
    src = adapter.activations(batch.clean, batch.mask, [AttnHead(0, 0)])
    with pytest.raises(RuntimeError, match="boom"):
        with adapter.patching([AttnHead(0, 0)], src):
            raise RuntimeError("boom")
    _no_hooks(adapter)
    with pytest.raises(ValueError, match="not a component"):
        adapter.activations(batch.clean, batch.mask, [AttnHead(0, adapter.n_heads)])


def test_dimensions_and_device(adapter):
    assert (adapter.n_layers, adapter.n_heads, adapter.d_head, adapter.d_model) == (2, 4, 8, 32)
    assert adapter.device == torch.device("cpu")
    assert len(adapter.components()) == 2 * (4 + 1)


def test_from_pretrained_local_folder_and_offline_error(saved_models, monkeypatch):
    a = LMAdapter.from_pretrained(saved_models["neox_a"], device="cpu")
    assert a.family.name == "pythia" and a.tokenizer is not None
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError) as err:
        LMAdapter.from_pretrained("gpt2", device="cpu")
    text = str(err.value)
    assert "'gpt2'" in text and "save_pretrained" in text and "\n" not in text
