"""The toy report's explanations: why each algorithm pair was not separated.

For every pair of *different* algorithms with at least one chain pair the headline test
did not reject, :func:`explain_algorithms` recomputes a few of the chains'
representations on the comparison's own probes and hands them, with the pair's rows, to
:func:`interpeq.reproduce.explain.explain_pair`: each side's null width against the pair
distance, whether the pair was decidable at all, and how much of the similarity the
shared input embedding and each stage carry. :func:`explanation_rows` flattens the
result for ``explanations.csv``; :func:`explanation_plot` draws it (one row per pair).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interpeq.reproduce.explain import explain_pair, layout_of

EXPLAIN_COLUMNS = (
    "row", "col", "n_pairs", "rejected", "not_rejected", "undecidable", "min_p_value",
    "pair_distance", "null_a", "null_b", "full", "embedding", "embedding_share", "top_stage",
    "why",
)  # fmt: skip


def _by_algorithm_pair(pairs: Sequence[dict], labels: Sequence[str]) -> dict[tuple, list]:
    """Chain-pair rows keyed by ``(row algorithm, col algorithm)`` in ``labels`` order."""
    order = {a: i for i, a in enumerate(labels)}
    out: dict[tuple[str, str], list[dict]] = {}
    for r in pairs:
        a, b = r["group_a"], r["group_b"]
        if a == b or a not in order or b not in order:
            continue
        key = (a, b) if order[a] < order[b] else (b, a)
        out.setdefault(key, []).append(r)
    return dict(sorted(out.items(), key=lambda kv: (order[kv[0][0]], order[kv[0][1]])))


def explain_algorithms(
    zoo: Any,
    pairs: Sequence[dict[str, Any]],
    labels: Sequence[str],
    settings: Any,
    *,
    per_pair: int = 4,
) -> list[dict[str, Any]]:
    """:func:`~interpeq.reproduce.explain.explain_pair` for every different-algorithm
    pair with a chain pair not rejected (``settings``: the experiment's compare
    section: probes, seed, alpha, representation). Similarity sources are averaged over
    the first ``per_pair`` chain pairs of the pair (in the rows' order)."""
    from interpeq.compare.units import member_units, probe_tokens
    from interpeq.equivalence.representations import representation_options, representations

    tested = {r[k] for r in pairs for k in ("a", "b")}  # converged chains only
    units = {u.id: u for u in member_units(list(zoo), "chains") if u.id in tested}
    if not units:
        return []
    tokens = probe_tokens(
        [u.input_task for u in units.values()], settings.n_probes, settings.seed, settings.probes
    )
    opts = representation_options(getattr(settings, "representation", "residual"))
    cache: dict[str, Any] = {}

    def reprs(uid: str):
        if uid not in cache:
            models = units[uid].models
            cache[uid] = representations(models if len(models) > 1 else models[0], tokens, **opts)
        return cache[uid]

    out = []
    for (a, b), rows in _by_algorithm_pair(pairs, labels).items():
        if all(r["decision"] == "rejected" for r in rows):
            continue
        oriented = [r if r["group_a"] == a else _swap(r) for r in rows]
        chosen = [r for r in oriented if r["a"] in units and r["b"] in units][:per_pair]
        if not chosen:
            continue
        e = explain_pair(
            oriented,
            [(reprs(r["a"]), reprs(r["b"])) for r in chosen],
            layout_of(units[chosen[0]["a"]].models),
            layout_of(units[chosen[0]["b"]].models),
            alpha=settings.alpha,
        )
        out.append({"row": a, "col": b, **e})
    return out


def _swap(r: dict[str, Any]) -> dict[str, Any]:
    """A pair row seen from the other side (the test is symmetric in its two nulls)."""
    s = dict(r)
    for x, y in (("a", "b"), ("group_a", "group_b"), ("null_a", "null_b")):
        s[x], s[y] = r.get(y), r.get(x)
    s["d_a_impls"], s["d_b_impls"] = r["d_b_impls"], r["d_a_impls"]
    return s


def explanation_rows(explanations: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per explained pair (``EXPLAIN_COLUMNS``)."""
    rows = []
    for e in explanations:
        d = e["decisions"]
        rows.append(
            {
                "row": e["row"],
                "col": e["col"],
                "n_pairs": e["n_pairs"],
                "rejected": d.get("rejected", 0),
                "not_rejected": d.get("equivalent", 0) + d.get("identical", 0),
                "undecidable": d.get("undecidable", 0),
                "min_p_value": e["min_p_value"],
                "pair_distance": e["pair_distance"],
                "null_a": e["null_a"],
                "null_b": e["null_b"],
                "full": e["similarity"].get("full"),
                "embedding": e["similarity"].get("embedding"),
                "embedding_share": e["embedding_share"],
                "top_stage": e["top_stage"],
                "why": e["why"],
            }  # fmt: skip
        )
    return rows


def _dominant(e: dict[str, Any]) -> str:
    """The decision most of the pair's chain pairs got (undecidable if the pair is); a
    tie is drawn as rejected: half the chain pairs rejected is no evidence of equivalence."""
    if e["undecidable"]:
        return "undecidable"
    d = e["decisions"]
    return "equivalent" if d.get("equivalent", 0) > d.get("rejected", 0) else "rejected"


def explanation_plot(
    explanations: Sequence[dict[str, Any]], path: str | Path, *, alpha: float, title: str = ""
) -> Path | None:
    """Two panels, one row per explained algorithm pair. Left: each side's median null
    draw distance over the pair distance (right of the dashed line: the null is as wide
    as the pair, no room to reject), coloured by the decision most of its chain pairs
    got (green equivalent, red rejected, hatched grey undecidable at this size). Right:
    the similarity of the whole representations, of the shared input embedding, and of
    each stage's own states."""
    import numpy as np
    from matplotlib.patches import Rectangle

    from interpeq.report.plots import (
        HATCH,
        UNDECIDABLE_RGBA,
        _plt,
        decision_colours,
        decision_legend,
        save_figure,
    )

    if not explanations:
        return None
    plt = _plt()
    red, green = decision_colours(np.array([[0.0, 1.0]]), alpha)[0]
    colour = {"rejected": red, "equivalent": green, "undecidable": UNDECIDABLE_RGBA}
    names = [f"{e['row']} vs {e['col']}".replace("algorithm_", "alg ") for e in explanations]
    stages = sorted(
        {k for e in explanations for k in e["similarity"] if k.startswith("stage") and "/" not in k}
    )
    keys = ["full", "embedding", *stages]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, 2.2 + 0.45 * len(explanations)), sharey=True
    )
    ys = list(range(len(explanations)))
    for y, e in zip(ys, explanations, strict=True):
        verdict = _dominant(e)
        if verdict == "undecidable":
            left.add_patch(
                Rectangle((0, y - 0.45), 1, 0.9, transform=left.get_yaxis_transform(),
                          facecolor=UNDECIDABLE_RGBA, hatch=HATCH, edgecolor="0.45", lw=0)
            )  # fmt: skip
        pair = e["pair_distance"] or float("nan")
        for side, marker in (("a", "o"), ("b", "s")):
            ratio = (e[f"null_{side}"] or float("nan")) / pair
            left.scatter(ratio, y, marker=marker, s=50, color=colour[verdict],
                         edgecolor="k", zorder=3)  # fmt: skip
    left.axvline(1.0, ls="--", color="k", lw=1)
    left.set_xlabel("median null draw distance / pair distance (o: row side, s: column side)")
    left.set_yticks(ys, names)
    left.set_ylim(len(ys) - 0.5, -0.5)
    left.set_title("null width against the pair distance", fontsize=9)
    width = 0.8 / len(keys)
    blues = plt.get_cmap("Blues")  # neutral colours: red and green mean decisions here
    shade = [
        "0.35",
        "#c9a227",
        *(blues(0.45 + 0.5 * i / max(1, len(stages))) for i in range(len(stages))),
    ]
    for k, key in enumerate(keys):
        vals = [e["similarity"].get(key, float("nan")) for e in explanations]
        right.barh([y - 0.4 + (k + 0.5) * width for y in ys], vals, height=width, label=key,
                   color=shade[k])  # fmt: skip
    right.set_xlim(0, 1.05)
    right.set_xlabel("similarity of the two chains' readings")
    right.set_title("where the similarity comes from", fontsize=9)
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=len(keys))
    left.legend(handles=decision_legend(alpha), fontsize=7, loc="upper center",
                bbox_to_anchor=(0.5, -0.28), ncol=3)  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
