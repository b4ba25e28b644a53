"""The files of a zoo comparison: ``matrix.csv``, ``decisions.csv``, ``results.json``,
``matrix.png``.

* ``matrix.csv``: congruity of every pair (rows/columns = unit ids, sorted by group;
  a ``group`` column; the diagonal is empty: a model is not compared with itself;
  empty too where a pair has no congruity: neither direction had a null);
* ``decisions.csv``: the same layout, each cell the pair's decision: ``rejected``,
  ``equivalent`` (decidable, not rejected), ``undecidable`` (its nulls cannot reach
  alpha: no evidence either way) or ``identical`` (the same model twice);
* ``results.json``: the settings, every pair (congruity, p, p-value, decision,
  ``min_p_value``, the null of each direction ``null_a`` / ``null_b``, similarity;
  ``members_needed`` on undecidable pairs) and every group pair (mean congruity with
  bootstrap CI, rejected / equivalent / undecidable counts, rejection rate over the
  decidable pairs);
* ``matrix.png``: the heatmap (members on the ticks, group brackets), coloured by
  decision, and the group-pair table.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from interpeq.equivalence.defaults import DEFAULT_ALPHA
from interpeq.equivalence.units import Unit
from interpeq.report import congruity_heatmap

FILE_NAMES = ("matrix.csv", "decisions.csv", "results.json", "matrix.png")


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
    alpha: float = DEFAULT_ALPHA,
) -> dict[str, Path]:
    """Write the files of :data:`FILE_NAMES` into ``out``; ``payload`` is what
    ``results.json`` holds (summary, pairs without their per-draw distances, group
    pairs); the decisions come from its pairs."""
    out.mkdir(parents=True, exist_ok=True)
    files = {name: out / name for name in FILE_NAMES}
    n_rows = matrix.shape[0]
    decisions = decision_matrix(units, n_rows, col_index, payload["pairs"])
    cells = [["" if not math.isfinite(v) else f"{v:.6g}" for v in row] for row in matrix]
    _write_csv(files["matrix.csv"], units, n_rows, col_index, cells)
    _write_csv(files["decisions.csv"], units, n_rows, col_index, decisions.tolist())
    files["results.json"].write_text(json.dumps(payload, indent=1))
    congruity_heatmap(
        matrix,
        [units[i].group for i in range(n_rows)],
        [units[i].group for i in col_index],
        files["matrix.png"],
        row_ids=[units[i].id for i in range(n_rows)],
        col_ids=[units[i].id for i in col_index],
        decisions=decisions,
        group_stats={(g["group_a"], g["group_b"]): g for g in payload["group_pairs"]},
        title=title,
        row_label=row_label,
        col_label=col_label,
        pvalues=pvalues,
        alpha=alpha,
    )
    return files


def decision_matrix(
    units: Sequence[Unit],
    n_rows: int,
    col_index: Sequence[int],
    pairs: Sequence[dict[str, Any]],
) -> np.ndarray:
    """``[rows, cols]`` decision of each pair (``""`` where a pair was not compared),
    from the pair rows' ``a`` / ``b`` ids: both cells of a pair within one zoo, the
    row-zoo x column-zoo cell across two (there the column ids are prefixed)."""
    row_pos = {units[i].id: i for i in range(n_rows)}
    col_pos = {units[k].id: c for c, k in enumerate(col_index)}
    out = np.full((n_rows, len(col_index)), "", dtype=object)
    for r in pairs:
        verdict = r.get("decision") or ("rejected" if r["reject"] else "equivalent")
        for a, b in ((r["a"], r["b"]), (r["b"], r["a"])):
            if a in row_pos and b in col_pos:
                out[row_pos[a], col_pos[b]] = verdict
    return out


def _write_csv(
    path: Path, units: Sequence[Unit], n_rows: int, col_index: Sequence[int], cells: list
) -> None:
    """A ``[rows, cols]`` table with the unit ids as header and an ``id, group`` column."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "group", *[units[i].id for i in col_index]])
        for i in range(n_rows):
            w.writerow([units[i].id, units[i].group, *cells[i]])


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
