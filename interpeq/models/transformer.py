"""A small transformer with TransformerLens hook names, written with einops.

Read it top to bottom like nanoGPT's ``model.py``: LayerNorm, Attention, MLP, Block,
HookedTransformer. Every intermediate activation passes through a named
:class:`HookPoint` so that it can be cached or replaced; names match TransformerLens
(``blocks.0.attn.hook_z`` etc.) so researchers' muscle memory works.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import einsum, rearrange
from torch import nn

from interpeq.models import functional as F
from interpeq.models.components import Component, all_components
from interpeq.models.config import HookedTransformerConfig
from interpeq.models.hooks import HookedRootModule, HookPoint


class LayerNorm(nn.Module):
    """Layer norm with ``hook_scale`` and ``hook_normalized``; identity when disabled."""

    def __init__(self, cfg: HookedTransformerConfig) -> None:
        super().__init__()
        self.enabled = cfg.normalization
        if self.enabled:
            self.w = nn.Parameter(torch.ones(cfg.d_model))
            self.b = nn.Parameter(torch.zeros(cfg.d_model))
        self.hook_scale = HookPoint()
        self.hook_normalized = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return self.hook_normalized(x)
        return self.hook_normalized(F.layer_norm(x, self.w, self.b, self.hook_scale))


class Attention(nn.Module):
    def __init__(self, cfg: HookedTransformerConfig) -> None:
        super().__init__()
        h, dm, dh = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q = nn.Parameter(torch.empty(h, dm, dh))
        self.W_K = nn.Parameter(torch.empty(h, dm, dh))
        self.W_V = nn.Parameter(torch.empty(h, dm, dh))
        self.W_O = nn.Parameter(torch.empty(h, dh, dm))
        self.b_Q = nn.Parameter(torch.zeros(h, dh))
        self.b_K = nn.Parameter(torch.zeros(h, dh))
        self.b_V = nn.Parameter(torch.zeros(h, dh))
        self.b_O = nn.Parameter(torch.zeros(dm))
        self.causal = cfg.attention == "causal"
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_attn_scores, self.hook_pattern = HookPoint(), HookPoint()
        self.hook_z, self.hook_result = HookPoint(), HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_qkv = torch.cat([self.W_Q, self.W_K, self.W_V])  # one matmul for Q, K and V
        b_qkv = torch.cat([self.b_Q, self.b_K, self.b_V])
        qkv = F.head_projection(x, w_qkv, b_qkv).split(self.W_Q.shape[0], dim=-2)
        q, k, v = (
            hook(t) for hook, t in zip((self.hook_q, self.hook_k, self.hook_v), qkv, strict=True)
        )
        z = self.hook_z(F.attend(q, k, v, self.causal, self.hook_attn_scores, self.hook_pattern))
        if self.hook_result.active:  # per-head results only when someone reads them
            result = self.hook_result(einsum(z, self.W_O, "b q h e, h e d -> b q h d"))
            return result.sum(dim=-2) + self.b_O
        return F.head_output(z, self.W_O, self.b_O)


class MLP(nn.Module):
    def __init__(self, cfg: HookedTransformerConfig) -> None:
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        self.act_fn = cfg.act_fn
        self.hook_pre, self.hook_post = HookPoint(), HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.mlp(x, self.W_in, self.b_in, self.W_out, self.b_out, self.act_fn,
                     self.hook_pre, self.hook_post)  # fmt: skip


class Block(nn.Module):
    def __init__(self, cfg: HookedTransformerConfig) -> None:
        super().__init__()
        self.ln1 = LayerNorm(cfg)
        self.attn = Attention(cfg)
        self.hook_resid_pre, self.hook_attn_out, self.hook_resid_mid = (
            HookPoint(),
            HookPoint(),
            HookPoint(),
        )
        self.has_mlp = not cfg.attn_only
        if self.has_mlp:
            self.ln2 = LayerNorm(cfg)
            self.mlp = MLP(cfg)
            self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, resid: torch.Tensor) -> torch.Tensor:
        resid = self.hook_resid_pre(resid)
        resid = self.hook_resid_mid(resid + self.hook_attn_out(self.attn(self.ln1(resid))))
        if self.has_mlp:
            resid = resid + self.hook_mlp_out(self.mlp(self.ln2(resid)))
        return self.hook_resid_post(resid)


class HookedTransformer(HookedRootModule):
    """Embedding, ``n_layers`` pre-norm blocks, final layer norm, unembedding.

    ``forward(tokens [batch, pos]) -> logits [batch, pos, d_vocab_out]``. Use
    ``run_with_cache`` / ``run_with_hooks`` / ``hooks()`` for interventions and
    :func:`interpeq.models.patch_components` for component patching.
    """

    def __init__(self, cfg: HookedTransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.W_E = nn.Parameter(torch.empty(cfg.d_vocab, cfg.d_model))
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model))
        self.hook_embed, self.hook_pos_embed = HookPoint(), HookPoint()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = LayerNorm(cfg)
        self.W_U = nn.Parameter(torch.empty(cfg.d_model, cfg.d_vocab_out))
        self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab_out))
        self.init_weights(cfg.seed)
        self.setup_hooks()

    @torch.no_grad()
    def init_weights(self, seed: int) -> None:
        """Normal(0, init_std) for matrices, zeros for biases, drawn from ``seed`` alone."""
        gen = torch.Generator().manual_seed(seed)
        for name, p in self.named_parameters():
            if name.split(".")[-1].startswith("W_"):
                p.copy_(torch.randn(p.shape, generator=gen) * self.cfg.init_std)

    def check_tokens(self, tokens: torch.Tensor) -> None:
        """Clear errors for tokens the model cannot embed (instead of an index error deep in torch)."""
        if not isinstance(tokens, torch.Tensor) or tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"tokens must be an integer tensor [batch, pos], got {getattr(tokens, 'dtype', type(tokens))}"
            )
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape [batch, pos], got {tuple(tokens.shape)}")
        if tokens.shape[1] > self.cfg.n_ctx:
            raise ValueError(f"sequence length {tokens.shape[1]} exceeds n_ctx={self.cfg.n_ctx}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.cfg.d_vocab):
            bad = sorted(
                {int(t) for t in tokens[(tokens < 0) | (tokens >= self.cfg.d_vocab)].tolist()}
            )
            raise ValueError(f"tokens {bad[:10]} outside the vocabulary [0, {self.cfg.d_vocab})")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if not torch._C._functorch.is_batchedtensor(tokens):  # validation needs concrete values
            self.check_tokens(tokens)
        token_embed, pos_embed = F.embed(tokens, self.W_E, self.W_pos)
        resid = self.hook_embed(token_embed) + self.hook_pos_embed(pos_embed)
        for block in self.blocks:
            resid = block(resid)
        return F.linear(self.ln_final(resid), self.W_U, self.b_U)

    # ---- component addresses ----------------------------------------------------------
    def components(self) -> list[Component]:
        """Every attention head and MLP, in forward order."""
        return all_components(self.cfg.n_layers, self.cfg.n_heads, not self.cfg.attn_only)

    def check_components(self, components: Sequence[Component]) -> None:
        valid = set(self.components())
        bad = [str(c) for c in components if c not in valid]
        if bad:
            raise ValueError(
                f"components {bad} do not exist in this model "
                f"({self.cfg.n_layers} layers x {self.cfg.n_heads} heads, "
                f"{'no MLPs' if self.cfg.attn_only else 'MLPs'}); valid: {[str(c) for c in valid]}"
            )

    def residual_hook_names(self, layers: Sequence[int] | None = None) -> list[str]:
        """Hooks of the accumulated residual stream: after the embedding and after each block."""
        names = ["blocks.0.hook_resid_pre"] + [
            f"blocks.{i}.hook_resid_post" for i in range(self.cfg.n_layers)
        ]
        if layers is None:
            return names
        bad = [i for i in layers if not 0 <= i <= self.cfg.n_layers]
        if bad:
            raise ValueError(f"residual layers {bad} out of range [0, {self.cfg.n_layers}]")
        return [names[i] for i in layers]


def unembed_positions(logits: torch.Tensor) -> torch.Tensor:
    """``[batch, pos, vocab] -> [batch * pos, vocab]``, for cross-entropy against labels."""
    return rearrange(logits, "b p v -> (b p) v")
