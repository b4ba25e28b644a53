"""A hand-batched SIIT step for ``M`` same-architecture members (no ``vmap``, no hooks).

:func:`fused_siit_step` computes exactly what :func:`interpeq.training.siit.siit_forward`
computes for each member (same forward pass as :class:`HookedTransformer`, same
patch formula ``act + mask * (source - act)`` at ``hook_z`` / ``hook_mlp_out``, same
masked cross-entropy), but on parameters stacked along a leading member axis and
with explicit batched matmuls: one ``bmm`` for Q, K and V together, one for the
output projection, one per MLP matrix, the attention as a batched ``matmul``. The
source run is gradient-free and caches every head's ``z`` and every MLP output; the
base run covers the three parts (behaviour / IIT / strict) as ``3 x batch`` rows.
Layer 0's attention is shared by the three copies of the base rows (nothing is
patched before it), so it is computed once.

With ``M = 1`` it is also the fast path for a single member (the benchmark compares
stacked and one-by-one training on this same code path).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from interpeq.models import AttnHead, Component, HookedTransformerConfig
from interpeq.models import functional as F
from interpeq.tasks import IGNORE_INDEX

PARTS = ("behaviour", "iit", "strict")


def component_masks(
    components: Sequence[Component], cfg: HookedTransformerConfig
) -> tuple[Tensor, Tensor]:
    """One-hot maps ``[n_components, n_layers * n_heads]`` and ``[n_components, n_layers]``."""
    heads = torch.zeros(len(components), cfg.n_layers * cfg.n_heads)
    mlps = torch.zeros(len(components), cfg.n_layers)
    for i, c in enumerate(components):
        if isinstance(c, AttnHead):
            heads[i, c.layer * cfg.n_heads + c.head] = 1
        else:
            mlps[i, c.layer] = 1
    return heads, mlps


class _Patch:
    """Per-row patch masks for one base run and the source activations they read."""

    def __init__(self, heads: Tensor, mlps: Tensor, cache: dict[str, Tensor], reps: int):
        self.heads, self.mlps, self.cache, self.reps = heads, mlps, cache, reps

    def source(self, key: str) -> Tensor:
        src = self.cache[key]
        return src if self.reps == 1 else torch.cat([src] * self.reps, dim=1)


def stacked_forward(
    params: dict[str, Tensor],
    tokens: Tensor,
    cfg: HookedTransformerConfig,
    cache: dict[str, Tensor] | None = None,
    patch: _Patch | None = None,
    share_first: int = 1,
) -> Tensor:
    """Logits ``[M, N, pos, vocab]`` of ``M`` members on ``tokens [M, N, pos]``: the
    model's forward pass (:mod:`interpeq.models.functional`) on stacked weights.

    ``cache`` (a dict) receives ``z{l}`` and ``mlp{l}``; ``patch`` patches them from a
    source run. ``share_first=k``: ``tokens`` holds ``N / k`` distinct rows that the
    caller means ``k`` times over (the copies differ only by patches); the part of
    the network before the first patch point (embedding, layer 0 up to ``z``) runs
    once on the distinct rows.
    """
    h = cfg.n_heads
    token_embed, pos_embed = F.embed(tokens, params["W_E"], params["W_pos"])
    resid = token_embed + pos_embed
    for layer in range(cfg.n_layers):
        pre = f"blocks.{layer}."
        norm = (params.get(pre + "ln1.w"), params.get(pre + "ln1.b"))
        x = F.layer_norm(resid, *norm)
        w_qkv = torch.cat([params[pre + f"attn.W_{k}"] for k in "QKV"], dim=1)  # [M, 3H, D, E]
        b_qkv = torch.cat([params[pre + f"attn.b_{k}"] for k in "QKV"], dim=1)
        q, k, v = F.head_projection(x, w_qkv, b_qkv).split(h, dim=-2)
        z = F.attend(q, k, v, cfg.attention == "causal")  # [M, N, pos, H, E]
        if layer == 0 and share_first > 1:
            z = torch.cat([z] * share_first, dim=1)
            resid = torch.cat([resid] * share_first, dim=1)
        if cache is not None:
            cache[f"z{layer}"] = z.detach()
        if patch is not None:
            sel = patch.heads[:, :, layer * h : (layer + 1) * h][:, :, None, :, None]
            z = z + sel * (patch.source(f"z{layer}") - z)
        resid = resid + F.head_output(z, params[pre + "attn.W_O"], params[pre + "attn.b_O"])
        if not cfg.attn_only:
            x = F.layer_norm(resid, params.get(pre + "ln2.w"), params.get(pre + "ln2.b"))
            mlp = [params[pre + f"mlp.{k}"] for k in ("W_in", "b_in", "W_out", "b_out")]
            out = F.mlp(x, *mlp, cfg.act_fn)
            if cache is not None:
                cache[f"mlp{layer}"] = out.detach()
            if patch is not None:
                sel = patch.mlps[:, :, layer][:, :, None, None]
                out = out + sel * (patch.source(f"mlp{layer}") - out)
            resid = resid + out
    final = F.layer_norm(resid, params.get("ln_final.w"), params.get("ln_final.b"))
    return F.linear(final, params["W_U"], params["b_U"])


def fused_siit_step(
    params: dict[str, Tensor],
    batch: dict[str, Tensor],
    cfg: HookedTransformerConfig,
    masks: tuple[Tensor, Tensor],
    weights: Tensor,
) -> dict[str, Tensor]:
    """:func:`siit_forward` for stacked members: ``batch`` tensors ``[M, B, ...]``,
    ``weights [M, 3]``; returns ``loss`` / ``loss_<part>`` ``[M]`` and ``preds_<part>`` ``[M, B, pos]``.
    """
    cache: dict[str, Tensor] = {}
    with torch.no_grad():
        stacked_forward(params, batch["source"], cfg, cache=cache)
    select = torch.cat(
        [torch.zeros_like(batch["iit_select"]), batch["iit_select"], batch["strict_select"]],
        dim=1,
    ).to(weights.dtype)
    head_map, mlp_map = (t.to(select.device, select.dtype) for t in masks)
    patch = _Patch((select @ head_map).clamp(max=1), (select @ mlp_map).clamp(max=1), cache, 3)
    logits = stacked_forward(params, batch["base"], cfg, patch=patch, share_first=3)
    return part_losses(logits, batch, weights, stacked=True)


def part_losses(
    logits: Tensor, batch: dict[str, Tensor], weights: Tensor, stacked: bool = False
) -> dict[str, Tensor]:
    """``loss_<part>``, ``preds_<part>`` and the weighted ``loss`` from the base run's
    logits over the three parts' rows (behaviour, IIT, strict; each ``batch`` rows)."""
    axis, weights = (1 if stacked else 0), torch.as_tensor(weights)
    targets = (batch["labels"], batch["iit_labels"], batch["labels"])
    chunks = logits.split(batch["base"].shape[axis], dim=axis)
    out: dict[str, Tensor] = {}
    total = 0.0
    for i, (part, target, chunk) in enumerate(zip(PARTS, targets, chunks, strict=True)):
        loss = F.masked_cross_entropy(chunk, target, stacked)
        out[f"loss_{part}"] = loss
        out[f"preds_{part}"] = chunk.argmax(-1)
        total = total + weights[..., i] * loss
    out["loss"] = total
    return out


def member_hits(preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per member ``[M]``: correct valid positions, valid positions, and per row
    ``[M, B]`` all-correct flags: :func:`accuracies` for every member at once (its
    ``correct[valid]`` mean is ``hits / valid``, exactly, as sums of 0/1 counts)."""
    valid = target != IGNORE_INDEX
    correct = preds == target
    hits = (correct & valid).flatten(1).sum(1)
    return hits, valid.flatten(1).sum(1), (correct | ~valid).all(-1).float()


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_mode(value: Any, where: str = "compile") -> str | None:
    """A zoo YAML's ``compile`` value as a ``torch.compile`` mode (``None``: eager).

    ``false`` (the default) trains eagerly, ``true`` is mode ``default``; a mode name is
    taken as is (``reduce-overhead`` adds CUDA graphs on a GPU)."""
    if value is None or value is False:
        return None
    if value is True:
        return "default"
    if isinstance(value, str) and value in COMPILE_MODES:
        return value
    raise ValueError(
        f"{where!r} must be false, true or a torch.compile mode {list(COMPILE_MODES)}, got {value!r}"
    )


class CompileFailed(ValueError):
    """``torch.compile`` could not compile the step on this machine (a missing C/C++
    compiler or Triton, an unsupported op): the configuration asked for something the
    environment cannot do, which the CLI reports as one line, like a bad config value."""


class CompiledStep:
    """:func:`fused_siit_step` under ``torch.compile``: on a GPU a tiny model's step is
    launch-bound (many small kernels), which compilation fuses and CUDA graphs
    (``reduce-overhead``) replay without launches. On the 2-core CPU here a step at the
    default size runs 1.3-1.4x faster compiled, after about 70 s of compilation
    (``benchmarks/bench_compile.py``): it pays from a few hundred steps on, which is
    why it is a switch, off by default (short runs and tests would only pay for it).

    A compilation failure (no C compiler, an unsupported op) is re-raised as one line
    that names the fix instead of a trace from deep inside inductor. Under CUDA graphs
    a step's outputs live in memory the next replay overwrites, so they are copied out.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.graphs = mode in ("reduce-overhead", "max-autotune")
        self.fn = torch.compile(fused_siit_step, mode=mode, dynamic=False)

    def __call__(self, *args: Any) -> dict[str, Tensor]:
        from torch._dynamo.exc import TorchDynamoException

        if self.graphs:
            torch.compiler.cudagraph_mark_step_begin()
        try:
            out = self.fn(*args)
        except TorchDynamoException as err:
            raise CompileFailed(
                f"torch.compile (mode {self.mode!r}) failed on the fused SIIT step: "
                f"{_root_cause(err)[:200]}; set 'compile: false' in the zoo YAML "
                "(or --set compile=false) to train eagerly"
            ) from err
        return {k: v.clone() for k, v in out.items()} if self.graphs else out


def _root_cause(err: BaseException) -> str:
    """The first line of the innermost error: dynamo wraps a backend's failure
    (``BackendCompilerFailed: backend='inductor' raised:``) around the one that says why."""
    root = getattr(err, "inner_exception", None) or err
    while root.__cause__ is not None:
        root = root.__cause__
    lines = [line for line in str(root).splitlines() if line.strip()]
    return f"{type(root).__name__}: {lines[0].strip() if lines else ''}"
