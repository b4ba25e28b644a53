"""Figures: the congruity heatmap (members grouped by interpretation) and equivalence curves.

Both write a PNG with matplotlib's non-interactive ``Agg`` backend (no display needed)
and return the path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> Path:
    """Lay out, write (creating the folder) and close ``fig``; return the path."""
    plt = _plt()
    fig.tight_layout()
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
    alpha: float = 0.05,
) -> Path:
    """Two panels: the pairs (rows/columns sorted by group, group labels and separators
    on the axes, blank diagonal/NaN cells) and the group-pair table.

    With ``pvalues`` the colour is the decision: each cell's p-value of H0 "the same
    interpretation" on a red (rejected at ``alpha``) to green (judged equivalent) scale
    centred on ``alpha``, congruity as the text; group pairs are coloured by their
    rejection rate. Without, the colour is congruity (the paper's display)."""
    plt = _plt()
    matrix = np.asarray(matrix, dtype=float)
    if pvalues is not None:
        return _decision_heatmap(
            plt, matrix, np.asarray(pvalues, dtype=float), row_groups, col_groups, path,
            group_stats=group_stats, title=title, row_label=row_label, col_label=col_label,
            alpha=alpha,
        )  # fmt: skip
    rs, cs = _spans(row_groups), _spans(col_groups)
    with_groups = bool(group_stats)
    fig, axes = plt.subplots(
        1,
        2 if with_groups else 1,
        figsize=(13 if with_groups else 7, 6),
        gridspec_kw={"width_ratios": [1.15, 1]} if with_groups else None,
        squeeze=False,
    )
    ax = axes[0, 0]
    cmap = plt.get_cmap("viridis").with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    _separators(ax, rs, cs)
    if matrix.size <= 400:  # values readable up to 20 x 20
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                if np.isfinite(matrix[i, j]):
                    v = matrix[i, j]
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="black" if v > 0.6 else "white")  # fmt: skip
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.set_title(f"{title}: every pair ({matrix.shape[0]} x {matrix.shape[1]})")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="congruity (1 = equivalent)")
    if with_groups:
        gx = axes[0, 1]
        rg = [g for g, _, _ in rs]
        cg = [g for g, _, _ in cs]
        gm = np.full((len(rg), len(cg)), np.nan)
        for i, a in enumerate(rg):
            for j, b in enumerate(cg):
                st = group_stats.get((a, b)) or group_stats.get((b, a))
                if st:
                    gm[i, j] = st["mean_congruity"]
                    v = st["mean_congruity"]
                    gx.text(
                        j,
                        i,
                        f"{v:.2f}\n[{st['ci_low']:.2f}, {st['ci_high']:.2f}]\n"
                        f"reject {100 * st['rejection_rate']:.0f}%\n{st['n_pairs']} pairs",
                        ha="center",
                        va="center",
                        fontsize=9,
                        color="black" if v > 0.6 else "white",
                    )
        gx.imshow(np.ma.masked_invalid(gm), cmap=cmap, vmin=0, vmax=1, aspect="auto")
        gx.set_yticks(range(len(rg)), rg)
        gx.set_xticks(range(len(cg)), cg, rotation=30, ha="right")
        gx.tick_params(length=0)
        gx.set_title("group pairs: mean congruity [95% CI], rejection rate")
    return save_figure(fig, path)


def _decision_heatmap(
    plt, matrix, pvalues, row_groups, col_groups, path, *, group_stats, title, row_label,
    col_label, alpha,
) -> Path:  # fmt: skip
    rs, cs = _spans(row_groups), _spans(col_groups)
    with_groups = bool(group_stats)
    fig, axes = plt.subplots(
        1, 2 if with_groups else 1, figsize=(14 if with_groups else 7.5, 6.2),
        gridspec_kw={"width_ratios": [1.15, 1]} if with_groups else None, squeeze=False,
    )  # fmt: skip
    ax = axes[0, 0]
    ax.imshow(decision_colours(pvalues, alpha), aspect="auto")
    im = plt.cm.ScalarMappable(norm=decision_norm(alpha), cmap=plt.get_cmap("RdYlGn"))
    _separators(ax, rs, cs)
    if matrix.size <= 400:
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                if np.isfinite(matrix[i, j]):
                    mark = "\n\u2717" if pvalues[i, j] <= alpha else ""
                    ax.text(j, i, f"{matrix[i, j]:.2f}{mark}", ha="center", va="center",
                            fontsize=7, color="black")  # fmt: skip
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.set_title(f"{title}: every pair (text: congruity; \u2717 rejected)", fontsize=10)
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label(
        f"p-value of H0 'same interpretation'\nred: rejected at alpha={alpha:g}; "
        "green: judged equivalent"
    )
    bar.set_ticks([0, alpha, 0.5, 1])
    if with_groups:
        _group_panel(plt, axes[0, 1], rs, cs, group_stats)
    return save_figure(fig, path)


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


def decision_colours(pvalues: np.ndarray, alpha: float) -> np.ndarray:
    """``[rows, cols, 4]`` RGBA of each pair's decision (:func:`decision_norm` on the
    red-yellow-green map); grey where no pair was tested."""
    from matplotlib import colormaps

    pvalues = np.asarray(pvalues, dtype=float)
    rgba = colormaps["RdYlGn"](decision_norm(alpha)(np.nan_to_num(pvalues, nan=1.0)))
    rgba[~np.isfinite(pvalues)] = (0.867, 0.867, 0.867, 1.0)
    return rgba


def _separators(ax, rs, cs) -> None:
    for _, start, _ in rs[1:]:
        ax.axhline(start - 0.5, color="white", lw=2.5)
    for _, start, _ in cs[1:]:
        ax.axvline(start - 0.5, color="white", lw=2.5)
    ax.set_yticks([(a + b - 1) / 2 for _, a, b in rs], [g for g, _, _ in rs])
    ax.set_xticks(
        [(a + b - 1) / 2 for _, a, b in cs], [g for g, _, _ in cs], rotation=30, ha="right"
    )
    ax.tick_params(length=0)


def _group_panel(plt, gx, rs, cs, group_stats) -> None:
    """Group pairs coloured by rejection rate (red: rejected), the numbers as text."""
    rg, cg = [g for g, _, _ in rs], [g for g, _, _ in cs]
    rate = np.full((len(rg), len(cg)), np.nan)
    for i, a in enumerate(rg):
        for j, b in enumerate(cg):
            st = group_stats.get((a, b)) or group_stats.get((b, a))
            if st:
                rate[i, j] = st["rejection_rate"]
                gx.text(
                    j, i,
                    f"rejected {100 * st['rejection_rate']:.0f}%\n{st['n_pairs']} pairs\n"
                    f"congruity {st['mean_congruity']:.2f}\n"
                    f"[{st['ci_low']:.2f}, {st['ci_high']:.2f}]",
                    ha="center", va="center", fontsize=9, color="black",
                )  # fmt: skip
    gx.imshow(np.ma.masked_invalid(rate), cmap=plt.get_cmap("RdYlGn_r"), vmin=0, vmax=1,
              aspect="auto")  # fmt: skip
    gx.set_yticks(range(len(rg)), rg)
    gx.set_xticks(range(len(cg)), cg, rotation=30, ha="right")
    gx.tick_params(length=0)
    gx.set_title("group pairs: rejection rate (red: told apart), mean congruity [95% CI]",
                 fontsize=10)  # fmt: skip


def equivalence_curves(
    curves: Mapping[str, Sequence[Mapping[str, float]]],
    path: str | Path,
    *,
    title: str = "equivalence curve",
) -> Path:
    """One line per reference group, one axis per quantity: mean congruity against the
    training step with its bootstrap CI as a band (top), and the rejection rate (the
    test's decision: share of the group's references judged different; bottom).

    ``curves[ref]`` is a list of ``{"step", "congruity", "ci_low", "ci_high",
    "rejection_rate"}`` rows.
    """
    plt = _plt()
    fig, (ax, rx) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=[3, 2])
    for k, (ref, rows) in enumerate(curves.items()):
        if not rows:
            continue
        color = f"C{k % 10}"
        step = [r["step"] for r in rows]
        ax.plot(step, [r["congruity"] for r in rows], "-o", ms=3, color=color, label=ref)
        ax.fill_between(
            step, [r["ci_low"] for r in rows], [r["ci_high"] for r in rows], color=color,
            alpha=0.2, label=f"{ref}: 95% CI",
        )  # fmt: skip
        rx.plot(step, [r["rejection_rate"] for r in rows], "-s", ms=3, color=color, label=ref)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("congruity to reference group")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    rx.set_ylim(-0.02, 1.02)
    rx.set_xlabel("training step")
    rx.set_ylabel("rejection rate\n(share of references\ntold apart)")
    rx.grid(alpha=0.3)
    return save_figure(fig, path)


def group_matrix_plot(
    mean: np.ndarray,
    ci_low: np.ndarray,
    ci_high: np.ndarray,
    labels: Sequence[str],
    path: str | Path,
    *,
    families: Mapping[str, Sequence[str]] | None = None,
    title: str = "mean congruity between groups",
    rejection: np.ndarray | None = None,
    n_pairs: np.ndarray | None = None,
) -> Path:
    """A group x group heatmap of mean congruity; each cell shows the mean and its
    bootstrap CI, a grey cell says "no pairs" (e.g. a group left with fewer than two
    converged units); lines separate ``families`` (contiguous label runs). With
    ``rejection`` and ``n_pairs`` (the test's rejection rate and pair count per cell)
    each cell also says how many of its pairs the test rejected, and a red frame marks
    the cells where most were: the decision, beside a congruity that averages it away."""
    plt = _plt()
    mean = np.asarray(mean, dtype=float)
    k = len(labels)
    fig, ax = plt.subplots(figsize=(1.3 * k + 2.5, 1.1 * k + 1.5))
    cmap = plt.get_cmap("viridis").with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(mean), vmin=0, vmax=1, cmap=cmap)
    for i in range(k):
        for j in range(k):
            if not np.isfinite(mean[i, j]):
                ax.text(j, i, "no pairs", ha="center", va="center", fontsize=8, color="0.35")
                continue
            color = "black" if mean[i, j] > 0.6 else "white"
            text = f"{mean[i, j]:.2f}\n[{ci_low[i, j]:.2f}, {ci_high[i, j]:.2f}]"
            if rejection is not None and n_pairs is not None:
                n = int(n_pairs[i, j])
                text += f"\nrejected {round(rejection[i, j] * n)}/{n}"
                if rejection[i, j] > 0.5:
                    frame = plt.Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, lw=2.5)
                    ax.add_patch(frame).set_edgecolor("red")
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=8,
                color=color,
            )
    ax.set_xticks(range(k), labels, rotation=35, ha="right")
    ax.set_yticks(range(k), labels)
    if families:
        family_of = {g: f for f, gs in families.items() for g in gs}
        for i in range(1, k):
            if family_of.get(labels[i]) != family_of.get(labels[i - 1]):
                ax.axhline(i - 0.5, color="white", lw=2.5)
                ax.axvline(i - 0.5, color="white", lw=2.5)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="mean congruity")
    if rejection is not None:
        title += "\nred frame: most pairs rejected (not the same interpretation)"
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)
