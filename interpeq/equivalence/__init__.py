"""Interpretive equivalence, framework-free: representations, similarity, congruity.

Plain torch (no Lightning, no W&B, no zoo); :mod:`interpeq.metrics` wraps it as
torchmetrics, :mod:`interpeq.callbacks` tracks it during training and
:mod:`interpeq.compare` runs it over zoos.

Modules, bottom up: ``checks`` (input validation, the hold-out split), ``loo`` (the
leave-one-out numerics), ``ridge`` (the batched engine), ``cka``, ``similarity`` (the
functional API; the one dispatch on the similarity method), ``representations``,
``impls`` (co-implementations), ``congruity`` (one pair's test, group summaries),
``units`` (a model or chain as a comparable unit) and ``pairwise`` (many pairs at once).
"""

from interpeq.equivalence.checks import DEFAULT_ALPHAS, split_indices
from interpeq.equivalence.cka import cka, cka_matrix
from interpeq.equivalence.congruity import (
    CongruityResult,
    GroupSummary,
    congruity,
    group_summary,
    selectivity,
)
from interpeq.equivalence.defaults import DEFAULT_M
from interpeq.equivalence.impls import circuit_of, circuit_patches, co_implementations
from interpeq.equivalence.pairwise import (
    IMPL_SOURCES,
    cross_similarities,
    group_pairs,
    pairwise_congruity,
    self_distances,
)
from interpeq.equivalence.representations import (
    REPRESENTATIONS,
    representation_options,
    representations,
)
from interpeq.equivalence.ridge import RidgeEngine
from interpeq.equivalence.similarity import (
    SIMILARITY_METHODS,
    encoding_score,
    pair_scores,
    similarity,
    similarity_matrix,
)
from interpeq.equivalence.units import ModelUnit, Unit, check_vocab, compute_unit, stage_inputs

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_M",
    "IMPL_SOURCES",
    "SIMILARITY_METHODS",
    "CongruityResult",
    "GroupSummary",
    "ModelUnit",
    "RidgeEngine",
    "Unit",
    "check_vocab",
    "circuit_of",
    "circuit_patches",
    "cka",
    "cka_matrix",
    "co_implementations",
    "compute_unit",
    "congruity",
    "cross_similarities",
    "encoding_score",
    "group_pairs",
    "group_summary",
    "pair_scores",
    "pairwise_congruity",
    "REPRESENTATIONS",
    "representation_options",
    "representations",
    "selectivity",
    "self_distances",
    "similarity",
    "similarity_matrix",
    "split_indices",
    "stage_inputs",
]
