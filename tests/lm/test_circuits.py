"""Head importance, circuit rules, the GPT-2 reference set and co-implementations."""

import pytest
import torch

from interpeq.lm import (
    GPT2_IOI_CIRCUIT,
    co_implementations,
    compare_with_reference,
    head_importance,
    ioi_prompts,
    select_circuit,
    tokenize,
)
from interpeq.models import AttnHead


@pytest.fixture(scope="module")
def batch(tokenizer):
    return tokenize(ioi_prompts(10, seed=5, tokenizers=[tokenizer]), tokenizer)


def _kl(clean, other):
    lp, lq = clean.double().log_softmax(-1), other.double().log_softmax(-1)
    return float((lp.exp() * (lp - lq)).sum(-1).mean())


def test_head_importance_kl_batched_equals_one_at_a_time(adapter, batch):
    L, H = adapter.n_layers, adapter.n_heads
    imp = head_importance(adapter, batch, batch_size=16)
    assert imp.scores.shape == imp.importance.shape == (L, H)
    assert (imp.scores >= 0).all() and (imp.importance >= 0).all()
    for per in (1, 3, L * H):
        other = head_importance(adapter, batch, batch_size=7, heads_per_forward=per)
        torch.testing.assert_close(other.scores, imp.scores, atol=1e-7, rtol=1e-4)
    # one head by hand: clean activation into the corrupted run, KL(clean || patched)
    clean = adapter.logits(batch.clean, batch.mask)
    head = AttnHead(1, 2)
    src = adapter.activations(batch.clean, batch.mask, [head])
    patched = adapter.patched_logits(batch.corrupt, batch.mask, [head], src)
    assert imp.scores[1, 2].item() == pytest.approx(_kl(clean, patched), rel=1e-4, abs=1e-8)
    corr = adapter.logits(batch.corrupt, batch.mask)
    assert imp.baseline == pytest.approx(_kl(clean, corr), rel=1e-6)


def test_head_importance_logit_diff(adapter, batch):
    imp = head_importance(adapter, batch, "logit_diff", batch_size=16)
    one = head_importance(adapter, batch, "logit_diff", batch_size=4, heads_per_forward=1)
    torch.testing.assert_close(one.scores, imp.scores, atol=1e-5, rtol=1e-5)
    clean = adapter.logits(batch.clean, batch.mask)
    ar = torch.arange(len(batch.io_ids))
    ld = (clean[ar, batch.io_ids] - clean[ar, batch.s_ids]).mean()
    assert imp.clean == pytest.approx(float(ld), rel=1e-4)
    assert (imp.importance >= 0).all()


def test_select_circuit_rules():
    imp = torch.tensor([[5.0, 1.0, 0.0], [3.0, 1.0, 0.0]])
    assert select_circuit(imp, "top_k", k=2) == [AttnHead(0, 0), AttnHead(1, 0)]
    assert select_circuit(imp, "fraction", fraction=0.5) == [AttnHead(0, 0)]
    assert select_circuit(imp, "fraction", fraction=0.8) == [AttnHead(0, 0), AttnHead(1, 0)]
    assert len(select_circuit(imp, "fraction", fraction=1.0)) == 4
    with pytest.raises(ValueError, match="rule"):
        select_circuit(imp, "best")


def test_gpt2_reference_circuit_comparison():
    ref = {AttnHead(a, b) for heads in GPT2_IOI_CIRCUIT.values() for a, b in heads}
    assert len(ref) == 26 and AttnHead(9, 9) in ref and AttnHead(11, 10) in ref
    found = [AttnHead(9, 9), AttnHead(9, 6), AttnHead(10, 0), AttnHead(0, 0)]
    cmp = compare_with_reference(found)
    assert cmp["overlap"] == 3 and cmp["precision"] == 0.75 and cmp["recall"] == 3 / 26
    assert cmp["classes"]["name mover"]["missing"] == [] and cmp["extra"] == ["0.0"]
    assert compare_with_reference(ref)["recall"] == 1.0


def test_co_implementations_patch_only_non_circuit_heads(adapter, batch):
    L, H = adapter.n_layers, adapter.n_heads
    reprs = adapter.representations(batch.clean, batch.mask)
    impls = co_implementations(adapter, batch, [AttnHead(0, 0)], m=3, seed=1, batch_size=4)
    assert impls.shape == (3, 10, reprs.shape[1])
    again = co_implementations(adapter, batch, [AttnHead(0, 0)], m=3, seed=1, batch_size=10)
    torch.testing.assert_close(again, impls)
    assert not torch.allclose(impls[0], reprs)
    # all heads but one in the circuit: every draw patches exactly that head, from the
    # corrupted prompts (all positions)
    free = AttnHead(1, 3)
    circuit = [AttnHead(a, b) for a in range(L) for b in range(H) if AttnHead(a, b) != free]
    impls = co_implementations(adapter, batch, circuit, m=2, seed=0, batch_size=4)
    src = adapter.activations(batch.corrupt, batch.mask, [free])
    with adapter.patching([free], src):
        want = adapter.representations(batch.clean, batch.mask, batch_size=10)
    torch.testing.assert_close(impls[0], want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(impls[1], want, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="every head"):
        co_implementations(adapter, batch, [*circuit, free], m=2)
