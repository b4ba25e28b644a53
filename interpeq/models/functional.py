"""The transformer's math as functions of its weights: the one definition of the forward pass.

:class:`interpeq.models.HookedTransformer` (one model, with hook points) and the fused
training step (:mod:`interpeq.training.fused`: ``M`` same-architecture members stacked
along a leading axis) both call these functions, so layer norm, attention, the MLP and
the loss are written once. A weight may carry leading member axes: ``W_in [d_model,
d_mlp]`` for one model, ``[M, d_model, d_mlp]`` for a stack whose activations are
``[M, ..., d_model]``. Hooks are optional callables (identity by default) applied where
the module has its :class:`~interpeq.models.hooks.HookPoint`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from interpeq.tasks.base import IGNORE_INDEX

Hook = Callable[[Tensor], Tensor]

#: the one table of MLP activations (``HookedTransformerConfig.act_fn``)
ACT_FNS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
}


def _identity(x: Tensor) -> Tensor:
    return x


def _rows(w: Tensor, x: Tensor) -> Tensor:
    """``w [*members, d]`` viewed to broadcast over ``x [*members, ..., d]``."""
    return w.view(*w.shape[:-1], *([1] * (x.ndim - w.ndim)), w.shape[-1])


def embed(tokens: Tensor, W_E: Tensor, W_pos: Tensor) -> tuple[Tensor, Tensor]:
    """Token and position embeddings of ``tokens [..., pos]`` (one model: ``W_E [vocab,
    d]``; a stack: ``W_E [M, vocab, d]`` with ``tokens [M, ..., pos]``)."""
    n_pos = tokens.shape[-1]
    if W_E.ndim == 2:
        return W_E[tokens], W_pos[:n_pos]
    m, between = W_E.shape[0], [1] * (tokens.ndim - 2)
    members = torch.arange(m, device=tokens.device).view(m, *between, 1)
    return W_E[members, tokens], W_pos[:, :n_pos].view(m, *between, n_pos, W_pos.shape[-1])


def layer_norm(
    x: Tensor, w: Tensor | None, b: Tensor | None, hook_scale: Hook = _identity
) -> Tensor:
    """Pre-norm layer norm (eps 1e-5) over the last axis; identity when ``w`` is ``None``
    (a model built with ``normalization=False``)."""
    if w is None:
        return x
    x = x - x.mean(-1, keepdim=True)
    scale = hook_scale((x.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt())
    return x / scale * _rows(w, x) + _rows(b, x)


def linear(x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    """``x @ w + b``: one matmul for one model (``w [din, dout]``), one ``bmm`` for a
    stack (``x [M, ..., din]``, ``w [M, din, dout]``, ``b [M, dout]``)."""
    if w.ndim == 2:
        return x @ w if b is None else x @ w + b
    m, dout = x.shape[0], w.shape[-1]
    flat = x.reshape(m, -1, x.shape[-1])
    out = torch.bmm(flat, w) if b is None else torch.baddbmm(b[:, None, :], flat, w)
    return out.view(*x.shape[:-1], dout)


def head_projection(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """Per-head projection ``x [..., pos, d] -> [..., pos, heads, e]`` as one matmul;
    ``w [*members, heads, d, e]`` may stack Q, K and V along ``heads``."""
    *lead, h, d, e = w.shape
    flat_w = w.transpose(-3, -2).reshape(*lead, d, h * e)
    return linear(x, flat_w, b.reshape(*lead, h * e)).view(*x.shape[:-1], h, e)


def attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    causal: bool = False,
    hook_scores: Hook = _identity,
    hook_pattern: Hook = _identity,
) -> Tensor:
    """Scaled dot-product attention per head: ``q, k, v [..., pos, heads, e] -> z``
    (same shape); ``causal`` masks later key positions."""
    scores = torch.einsum("...qhe,...khe->...hqk", q, k) / math.sqrt(q.shape[-1])
    if causal:
        n = q.shape[-3]
        mask = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
    pattern = hook_pattern(hook_scores(scores).softmax(dim=-1))
    return torch.einsum("...hqk,...khe->...qhe", pattern, v)


def head_output(z: Tensor, W_O: Tensor, b_O: Tensor) -> Tensor:
    """The heads' summed write to the residual stream: ``z [..., pos, heads, e]``,
    ``W_O [*members, heads, e, d]``."""
    *lead, h, e, d = W_O.shape
    return linear(z.reshape(*z.shape[:-2], h * e), W_O.reshape(*lead, h * e, d), b_O)


def mlp(
    x: Tensor,
    W_in: Tensor,
    b_in: Tensor,
    W_out: Tensor,
    b_out: Tensor,
    act_fn: str,
    hook_pre: Hook = _identity,
    hook_post: Hook = _identity,
) -> Tensor:
    """``act(x W_in + b_in) W_out + b_out`` with the activation named by ``act_fn``."""
    post = hook_post(ACT_FNS[act_fn](hook_pre(linear(x, W_in, b_in))))
    return linear(post, W_out, b_out)


def masked_cross_entropy(logits: Tensor, labels: Tensor, stacked: bool = False) -> Tensor:
    """Mean cross-entropy over positions whose label is not ``-100``: a scalar, or one
    per member ``[M]`` when ``stacked`` (``logits [M, ..., vocab]``)."""
    valid = labels != IGNORE_INDEX
    logp = logits.log_softmax(-1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    dims = tuple(range(1 if stacked else 0, labels.ndim))
    return -(logp * valid).sum(dims) / valid.sum(dims).clamp(min=1)
