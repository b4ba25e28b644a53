"""The mechanism-sensitivity study of ``interpeq reproduce matched`` (``compare.readings``).

Behaviour-matched interpretations (same input-output map, different mechanism) are not
told apart by the default reading of a model (every residual state, averaged over
positions, compared by ridge). This study repeats the same test under other readings:
a representation (:data:`interpeq.equivalence.REPRESENTATIONS`: without the embedding
state, one residual state at a time, every position instead of the mean) or another
similarity (linear CKA). For each reading it reports, per source of
co-implementations:

* **false rejections**: same-task pairs rejected (the controls: two seeds of one
  interpretation must not be told apart);
* **separation**: per matched pair, the cross pairs rejected, and the gap between the
  mean similarity of same-task pairs and of the cross pairs.

A reading is *useful* when it rejects most cross pairs of at least two matched pairs
while rejecting (almost) no same-task pair. Files: ``mechanisms.csv``,
``mechanisms.png`` and a section of ``report.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interpeq.equivalence.pairwise import TooFewUnitsError
from interpeq.equivalence.similarity import SIMILARITY_METHODS

COLUMNS = (
    "reading",
    "impls",
    "same_task_rejected",
    "same_task_pairs",
    "pair",
    "cross_rejected",
    "cross_pairs",
    "similarity_same_task",
    "similarity_cross",
)


def reading_options(reading: str) -> dict[str, str]:
    """``compare_zoo`` options of a reading: a similarity method name or a representation."""
    if reading in SIMILARITY_METHODS:
        return {"similarity": reading}
    return {"representation": reading}


def reading_rows(reading: str, impls: str, pairs: list[dict], matched: list) -> list[dict]:
    """One row per matched pair: the controls' and the cross pairs' rejections and similarity."""
    tasks = {t for pair in matched for t in pair}
    same = [r for r in pairs if r["group_a"] == r["group_b"] and r["group_a"] in tasks]
    rows = []
    for a, b in matched:
        cross = [r for r in pairs if {r["group_a"], r["group_b"]} == {a, b}]
        controls = [r for r in same if r["group_a"] in (a, b)]
        rows.append(
            {
                "reading": reading,
                "impls": impls,
                "same_task_rejected": sum(bool(r["reject"]) for r in same),
                "same_task_pairs": len(same),
                "pair": f"{a} vs {b}",
                "cross_rejected": sum(bool(r["reject"]) for r in cross),
                "cross_pairs": len(cross),
                "similarity_same_task": _mean(controls),
                "similarity_cross": _mean(cross),
            }
        )
    return rows


def _mean(rows: list[dict]) -> float | None:
    return sum(r["similarity"] for r in rows) / len(rows) if rows else None


def useful_readings(rows: list[dict], max_false: int = 1) -> list[tuple[str, str]]:
    """Readings (with their null) that reject >= 3/4 of the cross pairs of at least two
    matched pairs with at most ``max_false`` same-task pair rejected."""
    out = []
    for key in dict.fromkeys((r["reading"], r["impls"]) for r in rows):
        rs = [r for r in rows if (r["reading"], r["impls"]) == key]
        separated = sum(
            r["cross_pairs"] and r["cross_rejected"] >= 0.75 * r["cross_pairs"] for r in rs
        )
        if separated >= 2 and rs[0]["same_task_rejected"] <= max_false:
            out.append(key)
    return out


def _counts(rows: list[dict], source: str, reading: str, label: str | None) -> tuple[int, int]:
    """(rejected, pairs) of one bar: the same-task controls (``label`` None) or a pair."""
    rs = [r for r in rows if r["impls"] == source and r["reading"] == reading]
    if not rs:
        return 0, 0
    if label is None:
        return rs[0]["same_task_rejected"], rs[0]["same_task_pairs"]
    r = next(r for r in rs if r["pair"] == label)
    return r["cross_rejected"], r["cross_pairs"]


def mechanisms_plot(rows: list[dict], path: Path) -> Path:
    """Per null (one panel each) and reading: the rejection rate of same-task pairs (grey:
    false rejections) beside each matched pair's cross pairs (colours: separation), each
    bar labelled ``rejected/pairs`` so that a zero reads as measured, not missing."""
    from interpeq.report.plots import _plt, save_figure

    plt = _plt()
    impls = list(dict.fromkeys(r["impls"] for r in rows))
    readings = list(dict.fromkeys(r["reading"] for r in rows))
    pairs = list(dict.fromkeys(r["pair"] for r in rows))
    fig, axes = plt.subplots(len(impls), 1, figsize=(1.3 * len(readings) + 4, 3.4 * len(impls)))
    axes = [axes] if len(impls) == 1 else list(axes)
    width = 0.8 / (len(pairs) + 1)
    for ax, source in zip(axes, impls, strict=True):
        for k, label in enumerate([None, *pairs]):
            counts = [_counts(rows, source, reading, label) for reading in readings]
            xs = [x + (k - (len(pairs) + 1) / 2 + 0.5) * width for x in range(len(readings))]
            kept = [(x, n, t) for x, (n, t) in zip(xs, counts, strict=True) if t]
            name = "same-task pairs (false rejections)" if label is None else label
            ax.bar(
                [x for x, _, _ in kept], [n / t for _, n, t in kept], width,
                color="0.6" if label is None else f"C{k - 1}",
                label=name if ax is axes[0] and kept else None,
            )  # fmt: skip
            for x, n, t in kept:
                ax.text(x, n / t + 0.02, f"{n}/{t}", ha="center", fontsize=6, rotation=90)
        ax.set_xticks(range(len(readings)), readings, rotation=15)
        ax.set_ylim(0, 1.25)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.set_ylabel("fraction of pairs rejected")
        ax.set_title(f"co-implementations by {source}", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    for label in pairs:  # pairs with no bar still get a legend line saying why
        name = f"{label} (no converged pairs)"
        if label not in labels:
            handles.append(plt.Rectangle((0, 0), 1, 1, fc="white", ec="0.6"))
            labels.append(name)
    axes[0].legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("mechanism study: pairs rejected per reading of the models (alpha = 0.05)")
    fig.tight_layout()
    return save_figure(fig, path)


def mechanisms_markdown(rows: list[dict], useful: list[tuple[str, str]]) -> list[str]:
    """The report section: one table row per reading and null."""
    pairs = list(dict.fromkeys(r["pair"] for r in rows))
    lines = ["", "## Mechanism study (other readings of the models)", ""]
    lines += ["![mechanisms](mechanisms.png)", ""]
    head = " | ".join(f"{p} rejected" for p in pairs)
    lines += [
        f"| reading | null | same-task rejected | {head} | similarity same-task / cross |",
        "|---|---|---|" + "---|" * len(pairs) + "---|",
    ]
    for key in dict.fromkeys((r["reading"], r["impls"]) for r in rows):
        rs = [r for r in rows if (r["reading"], r["impls"]) == key]
        cells = [
            f"{r['cross_rejected']} / {r['cross_pairs']}" if r["cross_pairs"] else "no pairs"
            for r in rs
        ]
        sims = ", ".join(
            f"{r['similarity_same_task']:.3f} / {r['similarity_cross']:.3f}"
            for r in rs
            if r["similarity_cross"] is not None and r["similarity_same_task"] is not None
        )
        same = f"{rs[0]['same_task_rejected']} / {rs[0]['same_task_pairs']}"
        lines.append(f"| {key[0]} | {key[1]} | {same} | {' | '.join(cells)} | {sims} |")
    verdict = (
        "Readings that separate >= 2 matched pairs with <= 1 same-task rejection: "
        + ", ".join(f"{r} ({i})" for r, i in useful)
        if useful
        else "No reading separates two matched pairs while keeping the same-task pairs unrejected."
    )
    return [*lines, "", verdict]


def run_readings(zoo: Any, c: Any, report: Path, progress: bool) -> dict[str, Any]:
    """Compare ``zoo`` under the default reading and each of ``c.readings``, for each
    source of co-implementations in ``c.impls``; write the csv and the figure."""
    from interpeq.compare import compare_zoo
    from interpeq.reproduce.common import write_csv
    from interpeq.tasks import list_matched_pairs

    matched = list_matched_pairs()
    rows = []
    for reading in ["residual", *c.readings]:
        for impls in c.impls:
            try:
                res = compare_zoo(
                    zoo, n_probes=c.n_probes, m=c.m, alpha=c.alpha, seed=c.seed,
                    probes=c.probes, units="members", impls=impls, progress=progress,
                    out_dir=report / "mechanisms" / f"{reading}-{impls}",
                    **reading_options(reading),
                )  # fmt: skip
            except TooFewUnitsError:
                continue  # not computed: the report's headline comparison says why
            rows += reading_rows(reading, impls, res.pairs, matched)
    write_csv(report / "mechanisms.csv", COLUMNS, rows)
    png = mechanisms_plot(rows, report / "mechanisms.png")
    return {"rows": rows, "useful": useful_readings(rows), "png": png}
