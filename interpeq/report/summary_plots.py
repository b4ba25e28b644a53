"""Summary figures: equivalence curves over training and the group-by-group matrix.

The pair heatmap and the decision colours they share live in
:mod:`interpeq.report.plots`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from interpeq.report.plots import UNDECIDABLE_RGBA, _hatch, _plt, save_figure


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
    "rejection_rate"}`` rows; a NaN rejection rate (no decidable reference at that
    step: the nulls cannot reach alpha) is marked with a grey x labelled undecidable.
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
        rate = np.array([r["rejection_rate"] for r in rows], dtype=float)
        rx.plot(step, rate, "-s", ms=3, color=color, label=ref)
        if (gap := ~np.isfinite(rate)).any():  # no decidable reference at these steps
            rx.plot(np.asarray(step)[gap], np.full(gap.sum(), 0.5), "x", color="0.55",
                    label=f"{ref}: undecidable")  # fmt: skip
    if any("undecidable" in t for t in rx.get_legend_handles_labels()[1]):
        rx.legend(fontsize=8, loc="best")
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
    undecidable: np.ndarray | None = None,
) -> Path:
    """A group x group heatmap of mean congruity; each cell shows the mean and its
    bootstrap CI, a grey cell says "no pairs" (e.g. a group left with fewer than two
    converged units); lines separate ``families`` (contiguous label runs). With
    ``rejection`` and ``n_pairs`` (the test's rejection rate over the decidable pairs
    and the pair count per cell; ``undecidable``: the undecidable pairs per cell) each
    cell also says how many of its decidable pairs the test rejected, a red frame marks
    the cells where most were, and a hatched grey cell those with no decidable pair
    (NaN rate): the decision, beside a congruity that averages it away."""
    plt = _plt()
    mean = np.asarray(mean, dtype=float)
    k = len(labels)
    fig, ax = plt.subplots(figsize=(1.3 * k + 2.5, 1.1 * k + 1.5))
    cmap = plt.get_cmap("viridis").with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(mean), vmin=0, vmax=1, cmap=cmap)
    decided = rejection is not None and n_pairs is not None
    undecided = []
    for i, j in np.ndindex(k, k):
        n = int(n_pairs[i, j]) if decided else 0
        if decided and n and not np.isfinite(rejection[i, j]):  # no decidable pair
            undecided.append((i, j))
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color=UNDECIDABLE_RGBA, lw=0))
            ax.text(j, i, f"undecidable\n{n}/{n} pairs", ha="center", va="center", fontsize=8)
            continue
        if not np.isfinite(mean[i, j]):
            ax.text(j, i, "no pairs", ha="center", va="center", fontsize=8, color="0.35")
            continue
        text = f"{mean[i, j]:.2f}\n[{ci_low[i, j]:.2f}, {ci_high[i, j]:.2f}]"
        if decided:
            und = int(undecidable[i, j]) if undecidable is not None else 0
            text += f"\nrejected {round(rejection[i, j] * (n - und))}/{n - und}"
            text += f"\nundecidable {und}" if und else ""
            if rejection[i, j] > 0.5:
                frame = plt.Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, lw=2.5)
                ax.add_patch(frame).set_edgecolor("red")
        color = "black" if mean[i, j] > 0.6 else "white"
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    _hatch(ax, undecided)
    ax.set_xticks(range(k), labels, rotation=35, ha="right")
    ax.set_yticks(range(k), labels)
    if families:
        family_of = {g: f for f, gs in families.items() for g in gs}
        for i in range(1, k):
            if family_of.get(labels[i]) != family_of.get(labels[i - 1]):
                ax.axhline(i - 0.5, color="white", lw=2.5)
                ax.axvline(i - 0.5, color="white", lw=2.5)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="mean congruity")
    if decided:
        title += "\nred frame: most decidable pairs rejected; hatched grey: undecidable"
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)
