"""Comparing zoos: ``interpeq compare`` and :func:`compare_zoo`.

Modules, imports one way: ``units`` (zoo members -> units, probe tokens) and
``result`` / ``files`` / ``log`` (what a run returns, writes and logs) under ``run``
(:func:`compare_zoo`), which uses ``distributed`` (the Ray block path); ``cli`` on top.
The test itself lives in :mod:`interpeq.equivalence` (``units``, ``pairwise``).
"""

from interpeq.compare.cli import main
from interpeq.compare.result import CompareResult
from interpeq.compare.run import compare_zoo
from interpeq.compare.units import PROBE_KINDS, UNIT_KINDS, member_units, probe_tokens
from interpeq.zoo.store import DEFAULT_ROOT, load_zoo

__all__ = [
    "DEFAULT_ROOT",
    "PROBE_KINDS",
    "UNIT_KINDS",
    "CompareResult",
    "compare_zoo",
    "load_zoo",
    "main",
    "member_units",
    "probe_tokens",
]
