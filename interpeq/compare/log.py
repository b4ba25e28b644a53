"""A comparison in W&B (or CSV): the heatmap, the pair and group tables, the summary."""

from __future__ import annotations

import math
from typing import Any

from interpeq.compare.result import CompareResult
from interpeq.report import log_image, log_summary, log_table
from interpeq.report.wandb import SafeWandbLogger

PAIR_KEYS = (
    "a", "b", "group_a", "group_b", "decision", "congruity", "p", "p_value", "min_p_value",
    "null_a", "null_b", "reject", "similarity",
)  # fmt: skip
GROUP_KEYS = (
    "group_a", "group_b", "n_rejected", "n_equivalent", "n_undecidable", "n_pairs",
    "rejection_rate", "mean_congruity", "ci_low", "ci_high", "mean_p_value",
)  # fmt: skip


def log_compare(logger: Any, result: CompareResult) -> None:
    """The heatmap as an image, pairs / group pairs / matrix as ``wandb.Table`` s, and the
    summary: the rejected / equivalent / undecidable counts apart (overall, per side and
    per group pair), rejection rates over the decidable pairs."""
    log_image(logger, "equivalence/matrix", result.files["matrix.png"])
    keys = list(PAIR_KEYS)
    log_table(logger, "equivalence/pairs", keys, [[r.get(k) for k in keys] for r in result.pairs])
    gkeys = list(GROUP_KEYS)
    log_table(
        logger, "equivalence/group_pairs", gkeys, [[g.get(k) for k in gkeys] for g in result.groups]
    )
    log_table(
        logger,
        "equivalence/matrix_table",
        ["id", *result.col_ids],
        [
            [rid, *[None if not math.isfinite(v) else float(v) for v in row]]
            for rid, row in zip(result.row_ids, result.matrix, strict=True)
        ],
    )
    flat = {
        f"equivalence/{k}": v
        for k, v in result.summary.items()
        if isinstance(v, (int, float)) and v is not None
    }
    for g in result.groups:
        name = f"{g['group_a']}~{g['group_b']}"
        for k in GROUP_KEYS[2:]:
            if k in g:
                flat[f"equivalence/{name}/{k}"] = g[k]
    log_summary(logger, flat)


def finish_logger(logger: Any) -> None:
    """Finish the run; for an offline W&B run, print where it is and how to upload it."""
    if isinstance(logger, SafeWandbLogger):
        run_dir = logger.run_dir
        logger.finish()
        if run_dir is not None and "offline-run" in run_dir.name:
            print(f"W&B offline run: {run_dir}\n  upload it with: wandb sync {run_dir}")
    elif logger:
        logger.finish()
