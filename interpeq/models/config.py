"""Configuration of the hooked transformer.

Kept separate from the model so that configs can be validated, serialised to JSON
and compared (e.g. "is this checkpoint of the same architecture?") without
building any weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from interpeq.dataclass_io import from_dict
from interpeq.models.functional import ACT_FNS

ACTIVATIONS = tuple(ACT_FNS)  # gelu_new: the tanh approximation
ATTENTION_MODES = ("bidirectional", "causal")


@dataclass(frozen=True)
class HookedTransformerConfig:
    """Architecture of a small transformer with TransformerLens-style hook points.

    ``d_mlp = 0`` builds an attention-only model (no MLP sublayers, no MLP hooks).
    ``normalization = False`` replaces every layer norm with the identity (its hook
    points stay, so hook names do not depend on the architecture).
    ``seed`` makes weight initialisation reproducible.
    """

    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    d_head: int = 16
    d_mlp: int = 256
    act_fn: str = "gelu"
    n_ctx: int = 10
    d_vocab: int = 12
    d_vocab_out: int = 11
    attention: str = "bidirectional"
    normalization: bool = True
    init_std: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        positive = ("n_layers", "d_model", "n_heads", "d_head", "n_ctx", "d_vocab", "d_vocab_out")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(
                    f"HookedTransformerConfig.{name} must be a positive int, got {value!r}"
                )
        if not isinstance(self.d_mlp, int) or self.d_mlp < 0:
            raise ValueError(
                f"HookedTransformerConfig.d_mlp must be an int >= 0 (0 = attention-only), got {self.d_mlp!r}"
            )
        if self.act_fn not in ACTIVATIONS:
            raise ValueError(f"unknown act_fn {self.act_fn!r}; choose one of {ACTIVATIONS}")
        if self.attention not in ATTENTION_MODES:
            raise ValueError(
                f"unknown attention {self.attention!r}; choose one of {ATTENTION_MODES}"
            )
        if not self.init_std > 0:
            raise ValueError(f"init_std must be > 0, got {self.init_std!r}")

    @property
    def attn_only(self) -> bool:
        return self.d_mlp == 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HookedTransformerConfig:
        """Build from a plain dict (e.g. parsed JSON/YAML); unknown keys are an error."""
        return from_dict(cls, data, "model config")

    def replace(self, **changes: Any) -> HookedTransformerConfig:
        return dataclasses.replace(self, **changes)

    def same_architecture(self, other: HookedTransformerConfig) -> bool:
        """True when weights of ``other`` fit this model (the seed may differ)."""
        return self.replace(seed=0, init_std=1.0) == other.replace(seed=0, init_std=1.0)
