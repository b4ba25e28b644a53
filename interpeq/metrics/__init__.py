"""torchmetrics adapters over :mod:`interpeq.equivalence`."""

from interpeq.metrics.equivalence import InterpretiveEquivalence
from interpeq.metrics.similarity import RepresentationSimilarity

__all__ = ["InterpretiveEquivalence", "RepresentationSimilarity"]
