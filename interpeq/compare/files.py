"""The files of a zoo comparison: ``matrix.csv``, ``results.json``, ``matrix.png``.

* ``matrix.csv``: congruity of every pair (rows/columns = unit ids, sorted by group;
  a ``group`` column; the diagonal is empty: a model is not compared with itself);
* ``results.json``: the settings, every pair (congruity, p, p-value, decision,
  similarity) and every group pair (mean congruity with bootstrap CI, rejection rate);
* ``matrix.png``: the heatmap with group labels, and the group-pair table.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from interpeq.equivalence.units import Unit
from interpeq.report import congruity_heatmap

FILE_NAMES = ("matrix.csv", "results.json", "matrix.png")


def congruity_matrix(
    pairs: Sequence[tuple[int, int]],
    results: Sequence[dict[str, Any]],
    n_rows: int,
    col_index: Sequence[int],
    symmetric: bool,
    key: str = "congruity",
) -> np.ndarray:
    """``[rows, cols]`` ``key`` (congruity, p_value) of each pair (NaN where a pair was
    not compared)."""
    matrix = np.full((n_rows, len(col_index)), np.nan)
    cpos = {k: c for c, k in enumerate(col_index)}
    for (i, j), r in zip(pairs, results, strict=True):
        matrix[i, cpos[j]] = r[key]
        if symmetric:
            matrix[j, cpos[i]] = r[key]
    return matrix


def write_files(
    out: Path,
    units: Sequence[Unit],
    col_index: Sequence[int],
    matrix: np.ndarray,
    payload: dict[str, Any],
    *,
    title: str,
    row_label: str,
    col_label: str,
    pvalues: np.ndarray | None = None,
    alpha: float = 0.05,
) -> dict[str, Path]:
    """Write the three files into ``out``; ``payload`` is what ``results.json`` holds
    (summary, pairs without their per-draw distances, group pairs)."""
    out.mkdir(parents=True, exist_ok=True)
    files = {name: out / name for name in FILE_NAMES}
    n_rows = matrix.shape[0]
    with open(files["matrix.csv"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "group", *[units[i].id for i in col_index]])
        for i in range(n_rows):
            w.writerow(
                [units[i].id, units[i].group]
                + ["" if not math.isfinite(v) else f"{v:.6g}" for v in matrix[i]]
            )
    files["results.json"].write_text(json.dumps(payload, indent=1))
    congruity_heatmap(
        matrix,
        [units[i].group for i in range(n_rows)],
        [units[i].group for i in col_index],
        files["matrix.png"],
        group_stats={(g["group_a"], g["group_b"]): g for g in payload["group_pairs"]},
        title=title,
        row_label=row_label,
        col_label=col_label,
        pvalues=pvalues,
        alpha=alpha,
    )
    return files


def results_payload(
    summary: dict[str, Any],
    units: Sequence[Unit],
    results: Sequence[dict[str, Any]],
    groups: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """The ``results.json`` content."""
    return {
        "summary": summary,
        "units": [{"id": u.id, "group": u.group, **u.meta} for u in units],
        "pairs": [
            {k: v for k, v in r.items() if k not in ("d_a_impls", "d_b_impls")} for r in results
        ],
        "group_pairs": list(groups),
    }
