"""Why the test did not separate two algorithms, in numbers.

A pair of algorithms that the test does not reject can mean three different things,
and a reader of the 6 x 6 matrix cannot tell them apart from the congruity alone:

* **undecidable at this size**: the nulls are too small to reach ``alpha`` at all
  (``min_p_value > alpha`` on every row), so "not rejected" says nothing;
* **wide nulls**: each side's co-implementations sit as far from it as the other
  algorithm does (median draw distance >= the pair distance), so the test has no room;
* **a shared reading**: the two representations are similar because of what they share
  by construction, above all the input embedding (both chains read the same probe
  tokens through a learned embedding), not because their stages compute alike.

:func:`explain_pair` reports each in numbers from the comparison's rows and the units'
representations. A chain's representation is its stages' residual states concatenated
(:mod:`interpeq.equivalence.representations`): per stage ``(n_layers + 1) * d_model``
columns, the first ``d_model`` of stage 0 being the embedding of the probe tokens. It is
cut into disjoint readings: ``embedding`` (stage 0's embedding state), ``stage0`` (stage
0's states after its blocks), ``stage1``, ... (later stages' whole states), and per layer
``stage{s}/layer{l}``; each reading of one side is compared with the same reading of the
other (stages beyond the shorter chain have no counterpart and are left out). Pure:
tensors and rows in, a dict out; the similarity is the comparison's own (ridge) unless
another function is passed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import median
from typing import Any

from torch import Tensor

from interpeq.equivalence.defaults import DEFAULT_ALPHA

Layout = Sequence[tuple[int, int]]  # per stage: (residual states = n_layers + 1, d_model)


def layout_of(models: Sequence[Any]) -> list[tuple[int, int]]:
    """The representation layout of a chain of models (``model.cfg``)."""
    return [(m.cfg.n_layers + 1, m.cfg.d_model) for m in models]


def readings(layout: Layout) -> dict[str, tuple[int, int]]:
    """Column ranges of the disjoint readings of a concatenated representation (module
    doc): ``embedding``, ``stage{s}`` and ``stage{s}/layer{l}``."""
    out: dict[str, tuple[int, int]] = {}
    start = 0
    for s, (n_states, d_model) in enumerate(layout):
        first = start + (d_model if s == 0 else 0)  # stage 0's embedding is its own reading
        if s == 0:
            out["embedding"] = (start, first)
        out[f"stage{s}"] = (first, start + n_states * d_model)
        for layer in range(n_states):
            lo = start + layer * d_model
            out[f"stage{s}/layer{layer}"] = (lo, lo + d_model)
        start += n_states * d_model
    return out


def null_widths(rows: Sequence[dict[str, Any]], alpha: float) -> dict[str, Any]:
    """Each side's null against the pair: median draw distance (``d_a_impls`` /
    ``d_b_impls``, the draws the test ranked) and median pair distance ``d_ab``; the
    decisions, and whether the pair could have been rejected at all."""
    d_ab = [float(r["d_ab"]) for r in rows]
    draws = {k: [float(x) for r in rows for x in r[f"d_{k}_impls"]] for k in ("a", "b")}
    side = {k: median(v) if v else None for k, v in draws.items()}  # None: no null there
    min_p = min((float(r.get("min_p_value", 0.0)) for r in rows), default=None)
    decisions: dict[str, int] = {}
    for r in rows:
        decisions[r.get("decision", "")] = decisions.get(r.get("decision", ""), 0) + 1
    pair = median(d_ab) if d_ab else None
    return {
        "n_pairs": len(rows),
        "pair_distance": pair,
        "null_a": side["a"],
        "null_b": side["b"],
        "null_over_pair_a": side["a"] / pair if pair and side["a"] is not None else None,
        "null_over_pair_b": side["b"] / pair if pair and side["b"] is not None else None,
        "decisions": decisions,
        "min_p_value": min_p,
        "undecidable": min_p is not None and min_p > alpha,
    }


def similarity_sources(
    a: Tensor,
    b: Tensor,
    layout_a: Layout,
    layout_b: Layout,
    *,
    similarity: Callable[[Tensor, Tensor], float] | None = None,
) -> dict[str, float]:
    """Similarity of the whole representations (``full``) and of each shared reading
    (:func:`readings`) of ``a`` ``[n, D_a]`` and ``b`` ``[n, D_b]``."""
    if similarity is None:
        from interpeq.equivalence.similarity import similarity as ridge

        def similarity(x: Tensor, y: Tensor) -> float:
            return ridge(x.double(), y.double(), precision="double")

    ra, rb = readings(layout_a), readings(layout_b)
    for name, (r, lay) in {"a": (a, layout_a), "b": (b, layout_b)}.items():
        width = sum(n * d for n, d in lay)
        if r.shape[-1] != width:
            raise ValueError(f"side {name}: {r.shape[-1]} columns but its layout gives {width}")
    out = {"full": similarity(a, b)}
    for key in ra:
        if key in rb and ra[key][1] > ra[key][0] and rb[key][1] > rb[key][0]:
            out[key] = similarity(a[:, slice(*ra[key])], b[:, slice(*rb[key])])
    return out


def explain_pair(
    rows: Sequence[dict[str, Any]],
    unit_pairs: Sequence[tuple[Tensor, Tensor]],
    layout_a: Layout,
    layout_b: Layout,
    *,
    alpha: float = DEFAULT_ALPHA,
    similarity: Callable[[Tensor, Tensor], float] | None = None,
) -> dict[str, Any]:
    """The explanation fields of one algorithm pair: :func:`null_widths` of its pair
    ``rows``, the mean of :func:`similarity_sources` over ``unit_pairs`` (``(reprs_a,
    reprs_b)``; a few suffice), the embedding's share of the full similarity, the
    stage reading that carries the most, and a one-line ``why``."""
    out = null_widths(rows, alpha)
    per = [
        similarity_sources(x, y, layout_a, layout_b, similarity=similarity) for x, y in unit_pairs
    ]
    sims = {k: sum(p[k] for p in per) / len(per) for k in per[0]} if per else {}
    out["similarity"] = sims
    stages = {k: v for k, v in sims.items() if k.startswith("stage") and "/" not in k}
    full, emb = sims.get("full"), sims.get("embedding")
    out["embedding_share"] = emb / full if full and emb is not None else None
    out["top_stage"] = max(stages, key=stages.get) if stages else None
    out["why"] = _why(out, alpha)
    return out


def _why(e: dict[str, Any], alpha: float) -> str:
    """One line, the strongest reason first."""
    parts = []
    if e["undecidable"]:
        parts.append(
            f"undecidable at this size (smallest attainable p {e['min_p_value']:.3f} > alpha {alpha})"
        )
    pair, na, nb = e["pair_distance"], e["null_a"], e["null_b"]
    missing = [k for k, v in (("a", na), ("b", nb)) if v is None]
    if missing:
        parts.append(
            f"no null on side {' or '.join(missing)} (a group of fewer than 4 converged "
            "units has no calibrated null; only the other side can reject)"
        )
    if pair is not None and na is not None and nb is not None and max(na, nb) >= pair:
        parts.append(
            f"wide null (median draw distance {na:.3f} / {nb:.3f} >= pair distance {pair:.3f})"
        )
    sims = e["similarity"]
    emb, top = sims.get("embedding"), e["top_stage"]
    if emb is not None and (top is None or emb >= sims[top]):
        share = e["embedding_share"]
        parts.append(
            f"similarity carried by the shared input embedding ({emb:.2f}"
            + (f", {share:.0%} of the full {sims['full']:.2f}" if share is not None else "")
            + (f"; best stage {top} {sims[top]:.2f}" if top else "")
            + ")"
        )
    elif top is not None:
        parts.append(f"stages read alike ({top} {sims[top]:.2f}, embedding {emb:.2f})")
    return "; ".join(parts) if parts else "no reason found: the pair is close on every reading"
