"""Figures: the congruity heatmap (members grouped by interpretation) and equivalence curves.

Both write a PNG with matplotlib's non-interactive ``Agg`` backend (no display needed)
and return the path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from interpeq.equivalence.defaults import DEFAULT_ALPHA


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, *, rect: Sequence[float] | None = None) -> Path:
    """Lay out (inside ``rect``, figure fractions, if given: e.g. room for a figure
    legend), write (creating the folder) and close ``fig``; return the path."""
    plt = _plt()
    fig.tight_layout(rect=rect)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _spans(groups: Sequence[str]) -> list[tuple[str, int, int]]:
    """Contiguous runs ``(group, start, stop)`` of a group-sorted label list."""
    spans: list[tuple[str, int, int]] = []
    for i, g in enumerate(groups):
        if spans and spans[-1][0] == g:
            spans[-1] = (g, spans[-1][1], i + 1)
        else:
            spans.append((g, i, i + 1))
    return spans


# the three outcomes of the pairwise test; undecidable is neutral: no evidence either way
DECISIONS = ("rejected", "equivalent", "undecidable")
UNDECIDABLE_RGBA = (0.74, 0.74, 0.74, 1.0)  # light grey, hatched in the figures
UNTESTED_RGBA = (1.0, 1.0, 1.0, 1.0)  # blank: not compared (the diagonal), identical
HATCH = "///"


def congruity_heatmap(
    matrix: np.ndarray,
    row_groups: Sequence[str],
    col_groups: Sequence[str],
    path: str | Path,
    *,
    group_stats: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    title: str = "congruity",
    row_label: str = "",
    col_label: str = "",
    pvalues: np.ndarray | None = None,
    alpha: float = DEFAULT_ALPHA,
    row_ids: Sequence[str] | None = None,
    col_ids: Sequence[str] | None = None,
    decisions: np.ndarray | None = None,
) -> Path:
    """Two panels: the pairs (rows/columns sorted by group; with ``row_ids`` /
    ``col_ids`` the ticks name the members and brackets on the other side name the
    groups, else the ticks name the groups; blank diagonal/NaN cells) and the
    group-pair table.

    With ``pvalues`` the colour is the decision: each cell's p-value of H0 "the same
    interpretation" on a red (rejected at ``alpha``) to green (judged equivalent) scale
    centred on ``alpha``, a hatched grey cell where ``decisions`` says "undecidable"
    (the pair's nulls cannot reach ``alpha``: no evidence either way), congruity as the
    text; group pairs are coloured by their rejection rate over the decidable pairs
    (hatched grey: none decidable). Without, the colour is congruity (the paper's
    display)."""
    plt = _plt()
    matrix = np.asarray(matrix, dtype=float)
    ids = (row_ids, col_ids)
    if pvalues is not None:
        return _decision_heatmap(
            plt, matrix, np.asarray(pvalues, dtype=float), row_groups, col_groups, path,
            group_stats=group_stats, title=title, labels=(row_label, col_label), alpha=alpha,
            ids=ids, decisions=decisions,
        )  # fmt: skip
    rs, cs = _spans(row_groups), _spans(col_groups)
    fig, axes = _panels(plt, bool(group_stats), ids)
    ax = axes[0, 0]
    cmap = plt.get_cmap("viridis").with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    _separators(ax, rs, cs, *ids)
    if matrix.size <= 400:  # values readable up to 20 x 20
        for i, j in zip(*np.nonzero(np.isfinite(matrix)), strict=True):
            v = matrix[i, j]
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if v > 0.6 else "white")  # fmt: skip
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.set_title(f"{title}: every pair ({matrix.shape[0]} x {matrix.shape[1]})")
    pad = 0.12 if row_ids is not None else 0.04  # room for the group brackets
    fig.colorbar(im, ax=ax, fraction=0.046, pad=pad, label="congruity (1 = equivalent)")
    if group_stats:
        _congruity_group_panel(plt, axes[0, 1], rs, cs, group_stats, cmap)
    return save_figure(fig, path)


def _panels(plt, with_groups: bool, ids: tuple) -> tuple[Any, Any]:
    """The figure: the pair panel, and the group panel beside it ``with_groups``."""
    tall = 1.2 if ids[0] is not None else 0.0  # member ids under the pair panel
    return plt.subplots(
        1, 2 if with_groups else 1, figsize=(14 if with_groups else 7.5, 6.4 + tall),
        gridspec_kw={"width_ratios": [1.15, 1]} if with_groups else None, squeeze=False,
    )  # fmt: skip


def _stats_of(group_stats: Mapping, a: str, b: str) -> Mapping[str, Any] | None:
    return group_stats.get((a, b)) or group_stats.get((b, a))


def _group_counts(st: Mapping[str, Any]) -> tuple[int, int, int]:
    """``(rejected, equivalent, undecidable)`` of a group pair's row (older rows, without
    the undecidable count: from ``n_pairs`` and ``rejection_rate``)."""
    und = int(st.get("n_undecidable", 0))
    if "n_rejected" in st:
        return int(st["n_rejected"]), int(st.get("n_equivalent", 0)), und
    rate, decidable = st.get("rejection_rate", 0.0), int(st["n_pairs"]) - und
    rej = 0 if not np.isfinite(rate) else round(rate * decidable)
    return rej, decidable - rej, und


def _group_text(st: Mapping[str, Any]) -> str:
    rej, eq, und = _group_counts(st)
    text = f"rejected {rej} / equiv. {eq}\n" if rej + eq else ""
    text += f"undecidable {und}\n" if und else ""
    if not np.isfinite(st["mean_congruity"]):
        return text + "congruity n/a"
    return f"{text}congruity {st['mean_congruity']:.2f}\n[{st['ci_low']:.2f}, {st['ci_high']:.2f}]"


def _congruity_group_panel(plt, gx, rs, cs, group_stats, cmap) -> None:
    """Group pairs coloured by mean congruity, the decisions and the CI as text."""
    rg, cg = [g for g, _, _ in rs], [g for g, _, _ in cs]
    gm = np.full((len(rg), len(cg)), np.nan)
    for i, a in enumerate(rg):
        for j, b in enumerate(cg):
            if st := _stats_of(group_stats, a, b):
                gm[i, j] = v = st["mean_congruity"]
                gx.text(j, i, _group_text(st), ha="center", va="center", fontsize=8,
                        color="black" if not v < 0.6 else "white")  # fmt: skip
    gx.imshow(np.ma.masked_invalid(gm), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    _group_ticks(gx, rg, cg)
    gx.set_title("group pairs: mean congruity [95% CI], decisions", fontsize=10)


def _group_ticks(gx, rg: Sequence[str], cg: Sequence[str]) -> None:
    gx.set_yticks(range(len(rg)), rg)
    gx.set_xticks(range(len(cg)), cg, rotation=30, ha="right")
    gx.tick_params(length=0)


def _decision_heatmap(
    plt, matrix, pvalues, row_groups, col_groups, path, *, group_stats, title, labels,
    alpha, ids, decisions,
) -> Path:  # fmt: skip
    rs, cs = _spans(row_groups), _spans(col_groups)
    if decisions is None:
        decisions = decisions_from_pvalues(pvalues, alpha)
    decisions = np.asarray(decisions, dtype=object)
    fig, axes = _panels(plt, bool(group_stats), ids)
    ax = axes[0, 0]
    ax.imshow(decision_colours(pvalues, alpha, decisions), aspect="auto")
    _hatch(ax, np.argwhere(decisions == "undecidable"))
    im = plt.cm.ScalarMappable(norm=decision_norm(alpha), cmap=plt.get_cmap("RdYlGn"))
    _separators(ax, rs, cs, *ids)
    if matrix.size <= 400:
        mark = {"rejected": "\n\u2717", "undecidable": "\n?"}
        for i, j in np.ndindex(*matrix.shape):
            d = decisions[i, j]
            value = f"{matrix[i, j]:.2f}" if np.isfinite(matrix[i, j]) else ""
            text = "same" if d == "identical" else (value + mark.get(d, "")).strip("\n")
            if text:
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color="black")
    ax.set_xlabel(labels[1])
    ax.set_ylabel(labels[0])
    ax.set_title(f"{title}: every pair (text: congruity; \u2717 rejected; ? undecidable)",
                 fontsize=10)  # fmt: skip
    pad = 0.12 if ids[0] is not None else 0.04
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=pad)
    bar.set_label(
        f"p-value of H0 'same interpretation'\nred: rejected at alpha={alpha:g}; "
        "green: judged equivalent"
    )
    bar.set_ticks([0, alpha, 0.5, 1])
    if group_stats:
        _group_panel(plt, axes[0, 1], rs, cs, group_stats)
    fig.legend(handles=decision_legend(alpha), loc="lower center", ncol=3, fontsize=9,
               frameon=False)  # fmt: skip
    return save_figure(fig, path, rect=(0, 0.05, 1, 1))


def decision_legend(alpha: float) -> list:
    """Legend handles of the three decisions (red, green, hatched grey)."""
    from matplotlib.patches import Patch

    red, green = decision_colours(np.array([[0.0, 1.0]]), alpha)[0]
    return [
        Patch(facecolor=red, label=f"rejected (p <= alpha = {alpha:g})"),
        Patch(facecolor=green, label="equivalent (decidable, not rejected)"),
        Patch(facecolor=UNDECIDABLE_RGBA, hatch=HATCH, edgecolor="0.45",
              label="undecidable (its nulls cannot reach alpha)"),
    ]  # fmt: skip


def _hatch(ax, cells: Sequence[Sequence[int]], *, size: float = 1.0) -> None:
    """Hatch the ``(row, col)`` cells (the undecidable ones) over their grey fill."""
    import matplotlib.pyplot as plt

    h = size / 2
    for i, j in cells:
        ax.add_patch(
            plt.Rectangle(
                (j - h, i - h), size, size, fill=False, hatch=HATCH, edgecolor="0.45", lw=0
            )  # fmt: skip
        )


def decisions_from_pvalues(pvalues: np.ndarray, alpha: float) -> np.ndarray:
    """``[rows, cols]`` decisions of p-values alone (no undecidable: for callers that do
    not pass the pairs' decisions); ``""`` where no pair was tested."""
    pvalues = np.asarray(pvalues, dtype=float)
    out = np.where(pvalues <= alpha, "rejected", "equivalent").astype(object)
    out[~np.isfinite(pvalues)] = ""
    return out


def decision_norm(alpha: float):
    """p-values -> colour positions with a gap at ``alpha``: rejections (``p <= alpha``)
    in ``[0, 0.15]`` (dark to light red), the rest in ``[0.55, 1]`` (yellow-green to
    green), so that the decision is visible at a glance, not one shade away."""
    from matplotlib.colors import FuncNorm

    def forward(p):
        p = np.asarray(p, dtype=float)
        return np.where(p <= alpha, 0.15 * p / alpha, 0.55 + 0.45 * (p - alpha) / (1 - alpha))

    def inverse(x):
        x = np.asarray(x, dtype=float)
        return np.where(x <= 0.15, x / 0.15 * alpha, alpha + (x - 0.55) / 0.45 * (1 - alpha))

    return FuncNorm((forward, inverse), vmin=0.0, vmax=1.0)


def decision_colours(
    pvalues: np.ndarray, alpha: float, decisions: np.ndarray | None = None
) -> np.ndarray:
    """``[rows, cols, 4]`` RGBA of each pair's decision (:func:`decision_norm` on the
    red-yellow-green map); :data:`UNDECIDABLE_RGBA` (light grey, neither red nor green)
    where ``decisions`` says "undecidable"; blank (:data:`UNTESTED_RGBA`) where no pair
    was tested or the two models are identical."""
    from matplotlib import colormaps

    pvalues = np.asarray(pvalues, dtype=float)
    rgba = colormaps["RdYlGn"](decision_norm(alpha)(np.nan_to_num(pvalues, nan=1.0)))
    blank = ~np.isfinite(pvalues)
    if decisions is not None:
        decisions = np.asarray(decisions, dtype=object)
        rgba[decisions == "undecidable"] = UNDECIDABLE_RGBA
        blank |= decisions == "identical"
    rgba[blank] = UNTESTED_RGBA
    return rgba


def _separators(ax, rs, cs, row_ids=None, col_ids=None) -> None:
    """White lines between groups; the ticks name the members (``row_ids`` /
    ``col_ids``) with the groups as brackets on the right / top, else the groups."""
    for _, start, _ in rs[1:]:
        ax.axhline(start - 0.5, color="white", lw=2.5)
    for _, start, _ in cs[1:]:
        ax.axvline(start - 0.5, color="white", lw=2.5)
    ax.tick_params(length=0)
    if row_ids is None or col_ids is None:
        ax.set_yticks([(a + b - 1) / 2 for _, a, b in rs], [g for g, _, _ in rs])
        ax.set_xticks(
            [(a + b - 1) / 2 for _, a, b in cs], [g for g, _, _ in cs], rotation=30, ha="right"
        )
        return
    size = max(4.0, min(8.0, 320 / max(len(row_ids), len(col_ids))))
    ax.set_yticks(range(len(row_ids)), list(row_ids), fontsize=size)
    ax.set_xticks(range(len(col_ids)), list(col_ids), fontsize=size, rotation=90)
    _brackets(ax.secondary_yaxis("right"), rs, rotation=-90)
    _brackets(ax.secondary_xaxis("top"), cs, rotation=0 if len(cs) <= 4 else 30)


def _brackets(axis, spans, rotation: float) -> None:
    """Group names at the centres of their spans, long ticks at the span edges."""
    from matplotlib.ticker import FixedLocator

    is_x = axis._orientation == "x"
    centres = [(a + b - 1) / 2 for _, a, b in spans]
    edges = sorted({e - 0.5 for _, a, b in spans for e in (a, b)})
    names = [g for g, _, _ in spans]
    if is_x:
        axis.set_xticks(centres, names, rotation=rotation, fontsize=9, fontweight="bold")
        axis.xaxis.set_minor_locator(FixedLocator(edges))
    else:
        axis.set_yticks(centres, names, rotation=rotation, va="center", fontsize=9,
                        fontweight="bold")  # fmt: skip
        axis.yaxis.set_minor_locator(FixedLocator(edges))
    axis.tick_params(which="major", length=0, pad=6)
    axis.tick_params(which="minor", length=14, width=1.2, color="0.3")


def _group_panel(plt, gx, rs, cs, group_stats) -> None:
    """Group pairs coloured by rejection rate over the decidable pairs (red: rejected);
    hatched grey where none is decidable; the counts and congruity as text."""
    rg, cg = [g for g, _, _ in rs], [g for g, _, _ in cs]
    rate = np.full((len(rg), len(cg)), np.nan)
    undecided = []
    for i, a in enumerate(rg):
        for j, b in enumerate(cg):
            if st := _stats_of(group_stats, a, b):
                rej, eq, _ = _group_counts(st)
                if rej + eq:
                    rate[i, j] = rej / (rej + eq)
                else:
                    undecided.append((i, j))
                gx.text(j, i, _group_text(st), ha="center", va="center", fontsize=8,
                        color="black")  # fmt: skip
    cmap = plt.get_cmap("RdYlGn_r").with_extremes(bad=UNTESTED_RGBA)
    gx.imshow(np.ma.masked_invalid(rate), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for i, j in undecided:
        gx.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color=UNDECIDABLE_RGBA, lw=0))
    _hatch(gx, undecided)
    _group_ticks(gx, rg, cg)
    gx.set_title("group pairs: share rejected of the decidable pairs (red: told apart;\n"
                 "hatched grey: undecidable), mean congruity [95% CI]", fontsize=10)  # fmt: skip
