"""Moved to :mod:`interpeq.compare.distributed`; this name stays for existing imports."""

from interpeq.compare.distributed import (  # noqa: F401
    LAUNCHERS,
    check_workers,
    compute_units_blocks,
    cross_block,
    pairwise_congruity_blocks,
    plan_cross,
    self_block,
)
