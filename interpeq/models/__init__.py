"""Small transformers with TransformerLens-named hook points, and component patching."""

from interpeq.models.components import (
    MLP,
    AttnHead,
    Component,
    all_components,
    patch_components,
    patch_hooks,
    required_hooks,
    source_activations,
)
from interpeq.models.config import HookedTransformerConfig
from interpeq.models.hooks import HookedRootModule, HookPoint
from interpeq.models.transformer import HookedTransformer

__all__ = [
    "MLP",
    "AttnHead",
    "Component",
    "HookPoint",
    "HookedRootModule",
    "HookedTransformer",
    "HookedTransformerConfig",
    "all_components",
    "patch_components",
    "patch_hooks",
    "required_hooks",
    "source_activations",
]
