"""A live TransformerLens ``HookedTransformer`` wherever an :class:`LMAdapter` goes.

``LMAdapter(tl_model)`` returns a :class:`TLAdapter`: the same interface
(representations, head and MLP capture and patching, logits, so head importance and
co-implementations too), reached through TransformerLens's own hook points instead of
forward hooks on Hugging Face modules:

* a head's output is ``blocks.{l}.attn.hook_z`` ``[B, T, H, d_head]`` (the place of
  the adapter's merged heads before ``W_O``); an MLP's output is
  ``blocks.{l}.hook_mlp_out``;
* the ``L + 1`` raw residual states are ``blocks.{l}.hook_resid_pre`` for every block and
  the last block's ``hook_resid_post``; ``apply_ln`` uses the model's ``ln_final`` (the
  identity where the model has none).

TransformerLens is an optional dependency (``pip install 'interpeq[tl]'`` in an
environment of its own: its pins differ from the main one, docs/your-models.md); nothing
here imports it. TransformerLens 3 / 4 ``TransformerBridge`` objects wrap a Hugging Face
model: pass that model (and its tokenizer) to :class:`LMAdapter` instead.

Right-padded batches: TransformerLens models here are causal, so a real token never
attends to the padding behind it and the attention mask is not needed at real
positions; non-causal (bidirectional) models are refused with padding.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import Tensor

from interpeq.lm.adapters import LMAdapter
from interpeq.lm.hooks import patch_heads
from interpeq.lm.loading import resolve_device


def _z_hook(layer: int, patch, capture: bool, store: dict):
    """Forward hook on TransformerLens's ``hook_z`` ``[B, T, H, d_head]``: :func:`patch_heads`."""

    def hook(module, args, z):
        z = patch_heads(z, patch, capture, store, layer)
        return z if patch is not None else None

    return hook


class TLAdapter(LMAdapter):
    """:class:`LMAdapter`'s interface over a TransformerLens ``HookedTransformer``."""

    kind = "transformer_lens"  # what LMAdapter(model) dispatches on (model_kind)

    def __init__(self, model, tokenizer=None, *, name: str | None = None, device="auto"):
        cfg = model.cfg
        self.family = SimpleNamespace(
            name=str(getattr(cfg, "model_name", "") or "transformer_lens")
        )
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
        self.name = name or self.family.name
        self.n_layers, self.n_heads = int(cfg.n_layers), int(cfg.n_heads)
        self.d_model, self.d_head = int(cfg.d_model), int(cfg.d_head)
        self.blocks = model.blocks
        # TransformerLens: attention_dir; interpeq's own model (the same hook names): attention
        self.causal = getattr(cfg, "attention_dir", getattr(cfg, "attention", "causal")) == "causal"

    def _mlp(self, layer: int):
        return self.blocks[layer].hook_mlp_out

    def _hook_heads(self, layer: int, patch, capture: bool, store: dict):
        fn = _z_hook(layer, patch, capture, store)
        return self.blocks[layer].attn.hook_z.register_forward_hook(fn)

    def _ln_final(self):
        return getattr(self.model, "ln_final", None) or torch.nn.Identity()

    def forward(self, tokens: Tensor, attention_mask: Tensor | None = None, **kw):
        """Logits of one forward (no grad) as ``.logits``, like a Hugging Face output."""
        if attention_mask is not None and not self.causal and not bool(attention_mask.all()):
            raise ValueError(
                f"{self.name}: padded batches need a causal model (bidirectional attention "
                "would read the padding); pass prompts of one length"
            )
        with torch.no_grad():
            return SimpleNamespace(logits=self.model(tokens.to(self.device)))

    def _states(self, tokens: Tensor, mask: Tensor) -> list[Tensor]:
        states: dict[int, Tensor] = {}
        handles = [
            b.hook_resid_pre.register_forward_hook(
                lambda m, a, out, k=k: states.__setitem__(k, out)
            )
            for k, b in enumerate(self.blocks)
        ]
        last = self.blocks[-1].hook_resid_post
        handles.append(
            last.register_forward_hook(lambda m, a, out: states.__setitem__(self.n_layers, out))
        )
        try:
            self.forward(tokens, mask)
        finally:
            for h in handles:
                h.remove()
        return [states[k] for k in range(self.n_layers + 1)]


__all__ = ["TLAdapter"]
