"""Addresses of model components (attention heads, MLPs) and batched patching.

A correspondence aligns high-level variables with *components*; interchange and
resample interventions replace a component's output on a base input with its output
on a source input. Heads are patched at ``hook_z`` (per-head, before W_O: the
head's whole contribution, without materialising per-head results), MLPs at
``hook_mlp_out``. Every patch covers all positions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from interpeq.models.hooks import HookedRootModule, HookFn

_PATTERN = re.compile(r"^L(\d+)(?:H(\d+)|MLP)$")


@dataclass(frozen=True)
class Component:
    """Base class of component addresses; use :class:`AttnHead` or :class:`MLP`."""

    layer: int

    @property
    def kind(self) -> str:
        raise NotImplementedError

    @property
    def hook_name(self) -> str:
        raise NotImplementedError

    def sort_key(self) -> tuple[int, int, int]:
        head = getattr(self, "head", 0)
        return (self.layer, 0 if self.kind == "attn" else 1, head)

    @staticmethod
    def parse(text: str) -> Component:
        """Parse ``"L1H0"`` (layer 1, head 0) or ``"L1MLP"``."""
        match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise ValueError(
                f"cannot parse component {text!r}; expected 'L<layer>H<head>' or 'L<layer>MLP'"
            )
        layer = int(match.group(1))
        return AttnHead(layer, int(match.group(2))) if match.group(2) is not None else MLP(layer)


@dataclass(frozen=True)
class AttnHead(Component):
    head: int

    @property
    def kind(self) -> str:
        return "attn"

    @property
    def hook_name(self) -> str:
        return f"blocks.{self.layer}.attn.hook_z"

    def __str__(self) -> str:
        return f"L{self.layer}H{self.head}"


@dataclass(frozen=True)
class MLP(Component):
    @property
    def kind(self) -> str:
        return "mlp"

    @property
    def hook_name(self) -> str:
        return f"blocks.{self.layer}.hook_mlp_out"

    def __str__(self) -> str:
        return f"L{self.layer}MLP"


def all_components(n_layers: int, n_heads: int, has_mlp: bool) -> list[Component]:
    """Every component of an architecture, in forward order (heads of a layer, then its MLP)."""
    out: list[Component] = []
    for layer in range(n_layers):
        out.extend(AttnHead(layer, h) for h in range(n_heads))
        if has_mlp:
            out.append(MLP(layer))
    return out


def required_hooks(components: Sequence[Component]) -> list[str]:
    """The hook names whose source activations a patch of ``components`` needs."""
    return sorted({c.hook_name for c in components})


def patch_hooks(
    source_cache: dict[str, torch.Tensor],
    components: Sequence[Component],
    select: torch.Tensor | None = None,
) -> list[tuple[str, HookFn]]:
    """Forward hooks that replace ``components`` with their activations in ``source_cache``.

    ``select`` (bool ``[batch, len(components)]``, optional) chooses per sample which of
    the components are patched, so one batched forward can patch a different set in
    every row; ``None`` patches all of them in every row. Differentiable through the
    base run, and free of data-dependent control flow (works under ``torch.func.vmap``).
    """
    by_hook: dict[str, list[int]] = {}
    for idx, comp in enumerate(components):
        by_hook.setdefault(comp.hook_name, []).append(idx)

    hooks: list[tuple[str, HookFn]] = []
    for name, idxs in by_hook.items():
        if name not in source_cache:
            raise ValueError(
                f"source_cache lacks {name!r}, needed to patch {[str(components[i]) for i in idxs]}"
            )
        hooks.append(
            (name, _make_patch(source_cache[name], [components[i] for i in idxs], idxs, select))
        )
    return hooks


def _make_patch(
    source: torch.Tensor, comps: list[Component], idxs: list[int], select: torch.Tensor | None
) -> HookFn:
    def patch(act: torch.Tensor, hook) -> torch.Tensor:
        if source.shape != act.shape:
            raise ValueError(
                f"source activation at {hook.name} has shape {tuple(source.shape)}, "
                f"base has {tuple(act.shape)}: base and source batches must match"
            )
        batch = act.shape[0]
        if isinstance(comps[0], AttnHead):
            n_heads = act.shape[-2]
            # mask[b, h] = whether head h is patched in row b
            onehot = torch.zeros(len(comps), n_heads, dtype=act.dtype, device=act.device)
            onehot[torch.arange(len(comps)), torch.tensor([c.head for c in comps])] = 1
            rows = _rows(select, idxs, batch, act)
            mask = (rows @ onehot).clamp(max=1)[:, None, :, None]
        else:
            mask = _rows(select, idxs, batch, act).amax(dim=1)[:, None, None]
        return act + mask * (source - act)

    return patch


def _rows(
    select: torch.Tensor | None, idxs: list[int], batch: int, act: torch.Tensor
) -> torch.Tensor:
    if select is None:
        return torch.ones(batch, len(idxs), dtype=act.dtype, device=act.device)
    return select[:, idxs].to(act.dtype)


@torch.no_grad()
def source_activations(
    model: HookedRootModule, source_tokens: torch.Tensor, components: Sequence[Component]
) -> dict[str, torch.Tensor]:
    """Cache only the activations needed to patch ``components`` from ``source_tokens``."""
    _, cache = model.run_with_cache(source_tokens, names_filter=required_hooks(components))
    return cache


def patch_components(
    model: HookedRootModule,
    base_tokens: torch.Tensor,
    source_tokens: torch.Tensor,
    components: Sequence[Component],
    select: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits of ``model`` on ``base_tokens`` with ``components`` taken from ``source_tokens``.

    The source run is gradient-free; the base run keeps its graph.
    """
    if base_tokens.shape != source_tokens.shape:
        raise ValueError(
            f"base_tokens {tuple(base_tokens.shape)} and source_tokens {tuple(source_tokens.shape)} must have the same shape"
        )
    components = list(components)
    if not components:
        return model(base_tokens)
    if select is not None and tuple(select.shape) != (base_tokens.shape[0], len(components)):
        raise ValueError(
            f"select must have shape [batch, n_components] = {(base_tokens.shape[0], len(components))}, "
            f"got {tuple(select.shape)}"
        )
    if hasattr(model, "check_components"):
        model.check_components(components)
    cache = source_activations(model, source_tokens, components)
    return model.run_with_hooks(base_tokens, fwd_hooks=patch_hooks(cache, components, select))
