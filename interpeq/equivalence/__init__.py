"""Interpretive equivalence, framework-free: representations, similarity, congruity.

Plain torch (no Lightning, no W&B); :mod:`interpeq.metrics` wraps it as torchmetrics.
"""

from interpeq.equivalence.cka import cka, cka_matrix
from interpeq.equivalence.congruity import (
    DEFAULT_M,
    CongruityResult,
    GroupSummary,
    congruity,
    group_summary,
    selectivity,
)
from interpeq.equivalence.impls import circuit_of, circuit_patches, co_implementations
from interpeq.equivalence.representations import representations
from interpeq.equivalence.ridge import (
    DEFAULT_ALPHAS,
    RidgeEngine,
    encoding_score,
    similarity,
    similarity_matrix,
    split_indices,
)

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_M",
    "CongruityResult",
    "GroupSummary",
    "RidgeEngine",
    "circuit_of",
    "circuit_patches",
    "cka",
    "cka_matrix",
    "co_implementations",
    "congruity",
    "encoding_score",
    "group_summary",
    "representations",
    "selectivity",
    "similarity",
    "similarity_matrix",
    "split_indices",
]
