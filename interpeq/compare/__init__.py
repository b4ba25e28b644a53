"""Comparing zoos: ``interpeq compare`` and :func:`compare_zoo`.

Modules, imports one way: ``units`` (zoo members -> units, probe tokens) and
``result`` / ``files`` / ``log`` (what a run returns, writes and logs) under ``run``
(:func:`compare_zoo`), which uses ``distributed`` (the Ray block path); ``cli`` on top.
The test itself lives in :mod:`interpeq.equivalence` (``units``, ``pairwise``) and is
re-exported here, so ``from interpeq.compare import pairwise_congruity`` keeps working.
"""

from interpeq.compare.cli import main
from interpeq.compare.result import CompareResult
from interpeq.compare.run import compare_zoo
from interpeq.compare.units import PROBE_KINDS, UNIT_KINDS, member_units, probe_tokens
from interpeq.equivalence.pairwise import (
    IMPL_SOURCES,
    checked_pairs,
    cross_similarities,
    group_pairs,
    pairwise_congruity,
    self_distances,
)
from interpeq.equivalence.units import ModelUnit, Unit, check_vocab, compute_unit, stage_inputs
from interpeq.zoo.store import DEFAULT_ROOT, load_zoo

__all__ = [
    "DEFAULT_ROOT",
    "IMPL_SOURCES",
    "PROBE_KINDS",
    "UNIT_KINDS",
    "CompareResult",
    "ModelUnit",
    "Unit",
    "check_vocab",
    "checked_pairs",
    "compare_zoo",
    "compute_unit",
    "cross_similarities",
    "group_pairs",
    "load_zoo",
    "main",
    "member_units",
    "pairwise_congruity",
    "probe_tokens",
    "self_distances",
    "stage_inputs",
]
