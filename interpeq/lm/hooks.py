"""The two hook functions the adapter registers: attention-head and MLP patch / capture.

Masks and sources are moved to the hooked tensor's device and dtype inside the hook, so
callers may keep them anywhere; ``torch.where`` keeps unpatched rows bit-identical.
"""

from __future__ import annotations

import torch


def patch_heads(z, patch, capture: bool, store: dict, layer: int):
    """``z [B, T, H, d_head]`` with rows / heads replaced by ``patch = (mask [B or 1, H],
    source [B, T, H, d_head])`` (``None``: unchanged), captured into ``store["attn",
    layer]`` when ``capture``: the head patch every adapter's hook applies."""
    if patch is not None:
        mask, src = patch
        sel = mask.to(z.device)[:, None, :, None]
        z = torch.where(sel, src.to(device=z.device, dtype=z.dtype), z)
    if capture:
        store["attn", layer] = z.detach().clone()
    return z


def head_hook(h: int, dh: int, layer: int, patch, capture: bool, store: dict):
    """Pre-hook on the attention output projection: its input is the merged heads
    ``[B, T, H * d_head]``; :func:`patch_heads` on them."""

    def hook(module, args):
        x = args[0]
        z = patch_heads(x.reshape(*x.shape[:-1], h, dh), patch, capture, store, layer)
        return (z.reshape(x.shape), *args[1:]) if patch is not None else None

    return hook


def mlp_hook(layer: int, patch, capture: bool, store: dict):
    """Forward hook on the MLP: replace rows of its output by ``patch = (mask [B or 1],
    source [B, T, d_model])`` and/or capture it into ``store["mlp", layer]``."""

    def hook(module, args, out):
        y = out[0] if isinstance(out, tuple) else out
        if patch is not None:
            mask, src = patch
            sel = mask.to(y.device)[:, None, None]
            y = torch.where(sel, src.to(device=y.device, dtype=y.dtype), y)
        if capture:
            store["mlp", layer] = y.detach().clone()
        if patch is None:
            return None
        return (y, *out[1:]) if isinstance(out, tuple) else y

    return hook
