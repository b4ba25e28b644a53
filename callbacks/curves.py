"""The equivalence curve's numbers per capture, its table and its figure, decisions first.

At each capture the tracker compares the trained model with every reference model of a
group through the pairwise test. A pair comes out *rejected*, *equivalent* (not rejected
by a test that could have rejected it) or *undecidable* (its nulls cannot reach
``alpha``: e.g. a reference group with fewer than ``MIN_MEMBERS`` models under the
calibrated null, or too few draws). Undecidable is not evidence of equivalence, and a
mean congruity or a rejection rate hides it (the rate is taken over the decidable
pairs; with none it is NaN, not 0). So each group's point carries the three counts and
a ``decision``, the table and CSV have a ``decision`` column, and the figure draws
undecidable points apart (hollow, on a grey band of their own) where they cannot be
read as "0 rejected".
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from interpeq.equivalence import group_summary

DECISIONS = ("rejected", "equivalent", "undecidable")
COLUMNS = (
    "member", "group", "step", "decision", "rejected", "equivalent", "undecidable",
    "min_p_value", "null", "congruity", "ci_low", "ci_high", "rejection_rate", "similarity",
)  # fmt: skip
KEYS = {"ci_low": "congruity_ci_low", "ci_high": "congruity_ci_high"}  # column -> value key
UNDECIDABLE_Y = -0.25  # where the rejection-rate panel draws captures without a decision


def majority(n_rejected: int, n_equivalent: int, n_undecidable: int) -> str:
    """A group's decision at one capture: its pairs' most frequent outcome; ``"split"``
    when two outcomes tie (``"undecidable"`` when no pair could be decided)."""
    counts = {"rejected": n_rejected, "equivalent": n_equivalent, "undecidable": n_undecidable}
    top = max(counts.values())
    winners = [k for k, v in counts.items() if v == top]
    return winners[0] if len(winners) == 1 else "split"


def group_values(rows: Sequence[Mapping[str, Any]], *, n_boot: int, seed: int) -> dict[str, Any]:
    """One group's point of the curve from its pairwise rows (trained model vs each of
    the group's references): the decisions first, then congruity and similarity.

    ``null``: the null the references' side used (``calibrated`` / ``none`` /
    ``intervention``; the trained model is alone in its group, so under the calibrated
    null its own side has none); ``min_p_value``: the smallest p-value any pair could
    reach (above ``alpha``: nothing can be rejected)."""
    s = group_summary(list(rows), n_boot=n_boot, seed=seed)
    return {
        "decision": majority(s.n_rejected, s.n_equivalent, s.n_undecidable),
        "rejected": s.n_rejected,
        "equivalent": s.n_equivalent,
        "undecidable": s.n_undecidable,
        "min_p_value": min(float(r["min_p_value"]) for r in rows),
        "null": "/".join(sorted({str(r["null_b"]) for r in rows})),
        "congruity": s.mean_congruity,
        "congruity_ci_low": s.ci_low,
        "congruity_ci_high": s.ci_high,
        "rejection_rate": s.rejection_rate,  # rejected / decidable; NaN when none is
        "similarity": sum(r["similarity"] for r in rows) / len(rows),
    }


def numeric(values: Mapping[str, Any]) -> dict[str, float]:
    """The values a metrics logger can plot (the decision and null names are not)."""
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def table_rows(history: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> list[list]:
    """One row per member, group and capture, in :data:`COLUMNS` order (missing: None)."""
    return [
        [member, group, *(r.get(KEYS.get(c, c)) for c in COLUMNS[2:])]
        for member, curve in history.items()
        for group, rows in curve.items()
        for r in rows
    ]


def write_csv(path: Path, rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows)
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _marker(decision: str, color: str) -> dict[str, Any]:
    """Decided points filled in the group's colour (x: rejected, o: equivalent,
    diamond: split); undecidable ones hollow, never filled like an equivalent one."""
    if decision == "undecidable":
        return {"marker": "o", "mfc": "white", "mec": color, "ms": 7, "mew": 1.3}
    shape = {"rejected": "X", "equivalent": "o"}.get(decision, "D")
    return {"marker": shape, "mfc": color, "mec": color, "ms": 7}


def decision_curves(
    curves: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path, *, title: str
) -> Path:
    """Two panels against the training step, one colour per reference group: mean
    congruity with its bootstrap CI (top) and the rejection rate among decidable pairs
    (bottom), each point marked by the group's decision. ``curves[group]``: the
    tracker's rows (``step``, ``congruity``, ``congruity_ci_low`` / ``_high``,
    ``rejection_rate``, ``decision``). Captures with no decision sit
    on a grey "undecidable" band below 0 (and have no congruity point when neither
    side had a null), so they cannot be read as "none rejected"."""
    plt = _plt()
    from matplotlib.lines import Line2D

    fig, (ax, rx) = plt.subplots(2, 1, figsize=(7.5, 7.2), sharex=True, height_ratios=[3, 2])
    rx.axhspan(UNDECIDABLE_Y - 0.13, UNDECIDABLE_Y + 0.13, color="0.9", zorder=0)
    n = max(1, len(curves))
    for k, (ref, rows) in enumerate(curves.items()):
        if not rows:
            continue
        color = f"C{k % 10}"
        step = [r["step"] for r in rows]
        label = ref
        if not any(math.isfinite(r["congruity"]) for r in rows):
            label += " (no congruity: neither side has a null)"
        ax.plot(step, [r["congruity"] for r in rows], "-", color=color, label=label)
        ax.fill_between(
            step, [r["congruity_ci_low"] for r in rows], [r["congruity_ci_high"] for r in rows],
            color=color,
            alpha=0.15, lw=0,
        )  # fmt: skip
        rx.plot(step, [r["rejection_rate"] for r in rows], "-", color=color)
        for r in rows:
            d = r.get("decision", "")
            if math.isfinite(r["congruity"]):
                ax.plot(r["step"], r["congruity"], ls="", **_marker(d, color))
            y = r["rejection_rate"]
            if d == "undecidable" or not math.isfinite(y):
                y = UNDECIDABLE_Y + 0.16 * ((k + 0.5) / n - 0.5)  # groups side by side
            rx.plot(r["step"], y, ls="", **_marker(d, color))
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("congruity to reference group")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best", title="reference group (band: 95% CI)", title_fontsize=8)
    rx.set_ylim(UNDECIDABLE_Y - 0.15, 1.05)
    rx.set_yticks([UNDECIDABLE_Y, 0, 0.5, 1], ["undecidable", "0", "0.5", "1"])
    rx.set_xlabel("training step")
    rx.set_ylabel("rejection rate\n(of decidable pairs)")
    rx.grid(alpha=0.3)
    keys = [
        ("rejected (told apart)", _marker("rejected", "0.2")),
        ("equivalent (not rejected; rejection attainable)", _marker("equivalent", "0.2")),
        ("split (no majority)", _marker("split", "0.2")),
        ("undecidable: the null cannot reach alpha,\nnot evidence of equivalence",
         _marker("undecidable", "0.4")),
    ]  # fmt: skip
    handles = [Line2D([], [], ls="", label=t, **kw) for t, kw in keys]
    fig.legend(handles=handles, fontsize=8, loc="lower center", ncol=2, title="decision")
    fig.tight_layout(rect=(0, 0.11, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
