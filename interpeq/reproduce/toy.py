"""``interpeq reproduce toy``: the paper's toy result (docs/method.md section 10) with one command.

1. Train (or reuse, resumably) the zoo: every stage of the six composed algorithms,
   under the config's seeds and settings (``configs/experiment/toy_<scale>.yaml``).
2. Assemble implementations of each algorithm as chains of stage models (one chain per
   algorithm, setting and seed) and measure their end-to-end accuracy on fresh inputs.
3. Compare every pair of chains (``interpeq compare`` with ``units="chains"``), once per
   co-implementation source in ``compare.impls``, and average into the 6 x 6 algorithm
   matrix with bootstrap CIs, in two forms of congruity: the paper's two-sided
   ``1 - |2p - 1|`` and the one-sided ``min(1, 2(1 - p))`` (docs/method.md section 7). They
   differ when two models are *closer* to each other than to their own
   co-implementations (``p`` near 0): two-sided scores that 0, one-sided 1; the
   p-value (one-sided rank test) does not reject either way.
4. Write the report folder ``<root>/<zoo>/report/``: ``members.csv`` (every stage model),
   ``chains.csv`` (end-to-end accuracy), ``algorithm_matrix_<impls>_<form>.{csv,png}``
   (mean congruity, CI and rejection rate per algorithm pair), ``summary.json`` (family
   means next to the paper's, the two checks of the issue, timings, machine),
   ``config.yaml`` (the experiment config and every member's seeds) and ``report.md``;
   log the same to W&B (one ``reproduce`` run, plus one run per member trained).

**Family means.** Pair-level means over chain pairs: *within sorting* = both chains in
algorithms 1-4 (same or different algorithm), *across families* = one chain in 1-4 and
one in 5-6; the per-entry view (diagonal, off-diagonal within a family) is reported too.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from interpeq.compare import compare_zoo
from interpeq.equivalence import group_pairs
from interpeq.equivalence.pairwise import TooFewUnitsError
from interpeq.reproduce.common import (
    group_matrix,
    machine,
    matrix_rows,
    not_computed,
    open_report,
    train_zoo,
    write_csv,
    write_json,
)
from interpeq.reproduce.config import ExperimentConfig
from interpeq.reproduce.toy_explain import (
    EXPLAIN_COLUMNS,
    explain_algorithms,
    explanation_plot,
    explanation_rows,
)
from interpeq.reproduce.toy_report import report_markdown
from interpeq.seeds import generator
from interpeq.tasks.names import parse_stage

CHAIN_COLUMNS = (
    "algorithm",
    "setting",
    "seed",
    "stages",
    "e2e_acc",
    "e2e_seq_acc",
    "min_stage_acc",
)
FORMS = ("two_sided", "one_sided")  # the paper's 1 - |2p - 1|, and min(1, 2(1 - p))
GROUP_TEST_COLUMNS = (
    "group_a", "group_b", "n_a", "n_b", "statistic", "p_value", "min_p_value", "decision",
)  # fmt: skip
MATRIX_COLUMNS = ("row", "col", "mean_congruity", "ci_low", "ci_high", "rejection_rate", "n_pairs")


def congruity_form(row: dict[str, Any], form: str) -> float:
    """A pair's score in ``form``: congruity from ``p`` (the fraction of
    co-implementations at most as far as the other model), two-sided (the paper's) or
    one-sided (docs/method.md section 7); or ``reference_fraction``, the paper code's own statistic
    (:mod:`interpeq.equivalence.reference`)."""
    if form == "reference_fraction":
        return row["reference_fraction"]
    p = row["p"]
    if p != p:  # no null on either side: no congruity (the pair is undecidable)
        return math.nan
    return 1 - abs(2 * p - 1) if form == "two_sided" else min(1.0, 2 * (1 - p))


@torch.no_grad()
def end_to_end(algo_name: str, models: list, n: int, seed: int) -> tuple[float, float]:
    """Token and sequence accuracy of a chain on ``n`` fresh inputs of the algorithm,
    each stage reading the previous stage's argmax predictions (BOS prepended)."""
    from interpeq.tasks import get_algorithm

    algo = get_algorithm(algo_name)
    tokens = algo.sample(n, generator(seed, "e2e", algo_name))
    labels = algo.labels(tokens)
    x = tokens
    for model in models:
        x = algo.add_bos(model.eval()(x).argmax(-1)[:, 1:])
    correct = x[:, 1:] == labels[:, 1:]
    return correct.float().mean().item(), correct.all(-1).float().mean().item()


def chain_rows(zoo, n: int, seed: int) -> list[dict[str, Any]]:
    chains: dict[tuple, dict[int, Any]] = {}
    for m in zoo:
        algo, stage = parse_stage(m.task_name)
        chains.setdefault((algo, m.setting, m.seed), {})[stage] = m
    rows = []
    for (algo, setting, seed_), stages in sorted(chains.items()):
        ordered = [stages[k] for k in sorted(stages)]
        acc, seq = end_to_end(algo, [s.model for s in ordered], n, seed)
        rows.append(
            {
                "algorithm": algo,
                "setting": setting,
                "seed": seed_,
                "stages": len(ordered),
                "e2e_acc": acc,
                "e2e_seq_acc": seq,
                "min_stage_acc": min(float(s.metrics.get("acc", 0.0)) for s in ordered),
            }
        )
    return rows


def _mean(xs: list[float]) -> float | None:
    """Mean of the defined values (an undecidable pair's NaN congruity is left out)."""
    xs = [x for x in xs if x == x]
    return sum(xs) / len(xs) if xs else None


def family_stats(pairs: list[dict[str, Any]], family_of: dict[str, str]) -> dict[str, Any]:
    """Pair-level means: within each family, across families, same-algorithm pairs."""
    buckets: dict[str, list[float]] = {}
    for r in pairs:
        fa, fb = family_of[r["group_a"]], family_of[r["group_b"]]
        key = f"within_{fa}" if fa == fb else "across_families"
        buckets.setdefault(key, []).append(r["congruity"])
        if r["group_a"] == r["group_b"]:
            buckets.setdefault("same_algorithm", []).append(r["congruity"])
        elif fa == fb:
            buckets.setdefault("other_algorithm_same_family", []).append(r["congruity"])
    return {k: _mean(v) for k, v in sorted(buckets.items())} | {
        f"n_{k}": sum(x == x for x in v) for k, v in sorted(buckets.items())
    }


def checks(mat, labels: list[str], family_of: dict[str, str], fam: dict[str, Any]) -> dict:
    """The toy study's two criteria on the algorithm matrix; ``beaten_by`` names, per row
    that fails the first, the other-family entries at or above its diagonal."""
    rows_ok: dict[str, bool | None] = {}
    beaten_by: dict[str, dict[str, float]] = {}
    for i, a in enumerate(labels):
        off = {
            b: float(mat["mean"][i, j])
            for j, b in enumerate(labels)
            if family_of[b] != family_of[a] and mat["n_pairs"][i, j] > 0
        }
        diag = float(mat["mean"][i, i])
        # None: not measurable (no same-algorithm pair, e.g. < 2 converged chains)
        rows_ok[a] = None if not off or diag != diag else diag > max(off.values())
        if rows_ok[a] is False:
            beaten_by[a] = {b: v for b, v in off.items() if v >= diag} | {a: diag}
    measured = [ok for ok in rows_ok.values() if ok is not None]
    within, across = fam.get("within_sorting"), fam.get("across_families")
    gap = within - across if within is not None and across is not None else None
    return {
        "diagonal_above_other_family": rows_ok,
        "beaten_by": beaten_by,
        "all_rows": bool(measured) and all(measured),
        "rows_measured": len(measured),
        "within_sorting_minus_across": gap,
        "gap_at_least_0.2": gap is not None and gap >= 0.2,
    }


@dataclass(frozen=True)
class _Layout:
    """Where the matrices of one toy report go and how their rows are ordered."""

    report: Path
    labels: list[str]
    families: dict[str, list[str]]
    family_of: dict[str, str]
    zoo: str
    seed: int
    clog: Any


def _layout(zoo, report: Path, seed: int, clog: Any) -> _Layout:
    from interpeq.tasks import get_algorithm

    algos = sorted({parse_stage(m.task_name)[0] for m in zoo})
    family_of = {a: get_algorithm(a).family or a for a in algos}
    families: dict[str, list[str]] = {}
    for a in algos:
        families.setdefault(family_of[a], []).append(a)
    labels = [a for f in families for a in families[f]]
    return _Layout(report, labels, families, family_of, zoo.name, seed, clog)


def matrix_results(
    lay: _Layout, pairs: list[dict[str, Any]], impls: str, forms: tuple[str, ...], source: str
) -> dict[str, Any]:
    """Write one 6 x 6 matrix (csv, png, W&B) per congruity form of ``pairs`` and return
    the results entries ``"<source>/<form>"`` (``source``: the impls, or ``paper`` for the
    paper code's composition)."""
    from interpeq.report import group_matrix_plot, log_image, log_table

    out = {}
    n_rejected = sum(r.get("decision") == "rejected" for r in pairs)
    min_p = min((float(r.get("min_p_value", 0.0)) for r in pairs), default=None)
    for form in forms:
        scored = [dict(r, congruity=congruity_form(r, form)) for r in pairs]
        mat = group_matrix(group_pairs(scored, seed=lay.seed), lay.labels)
        long = matrix_rows(mat, lay.labels)
        stem = f"algorithm_matrix_{source}_{form}"
        write_csv(lay.report / f"{stem}.csv", MATRIX_COLUMNS, long)
        what = "the paper code's composition" if source == "paper" else "chains"
        png = group_matrix_plot(
            mat["mean"], mat["ci_low"], mat["ci_high"], lay.labels, lay.report / f"{stem}.png",
            families=lay.families, rejection=mat["rejection_rate"], n_pairs=mat["n_pairs"],
            undecidable=mat["n_undecidable"],
            title=f"{lay.zoo}: mean {form.replace('_', '-')} congruity between algorithms\n"
            f"({what}; co-implementations by {impls})",
        )  # fmt: skip
        fam = family_stats(scored, lay.family_of)
        out[f"{source}/{form}"] = {
            "impls": impls,
            "source": source,
            "form": form,
            "family_means": fam,
            "checks": checks(mat, lay.labels, lay.family_of, fam),
            "matrix": _by_row(mat["mean"], lay.labels),
            "rejection_rate": _by_row(mat["rejection_rate"], lay.labels),
            "n_pairs_matrix": _by_row(mat["n_pairs"], lay.labels),
            "n_rejected": n_rejected,
            "n_pairs": len(pairs),
            "min_p_value": min_p,
        }
        log_image(lay.clog, f"reproduce/{stem}", png)
        log_table(lay.clog, stem, MATRIX_COLUMNS, [[r[k] for k in MATRIX_COLUMNS] for r in long])
    return out


def _by_row(arr, labels: list[str]) -> dict[str, list[float]]:
    return {a: [float(x) for x in arr[i]] for i, a in enumerate(labels)}


def compare_chains(zoo, cfg: ExperimentConfig, lay: _Layout, progress: bool) -> tuple:
    """Every null of ``compare.impls`` on the chains: (results, not computed, the
    headline's pair rows)."""
    c = cfg.compare
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    head: list[dict[str, Any]] = []
    for k, impls in enumerate(c.impls):
        try:
            res = compare_zoo(
                zoo, n_probes=c.n_probes, m=c.m, alpha=c.alpha, seed=c.seed, probes=c.probes,
                units="chains", impls=impls, out_dir=lay.report / f"equivalence-{impls}",
                progress=progress, reference=c.reference and k == 0, similarity=c.similarity,
            )  # fmt: skip
        except TooFewUnitsError as err:
            skipped[impls] = not_computed(impls, err)
            continue
        head = head or res.pairs
        forms = FORMS + (("reference_fraction",) if c.reference and k == 0 else ())
        results.update(matrix_results(lay, res.pairs, impls, forms, impls))
    return results, skipped, head


def algorithm_group_tests(pairs: list[dict], settings, lay: _Layout) -> list[dict[str, Any]]:
    """The group permutation test for every algorithm pair on the headline comparison's
    chain distances (:func:`interpeq.equivalence.permutation.group_tests`): decided
    from the chains alone, whatever the null's draws; ``group_tests.csv``."""
    from interpeq.equivalence.permutation import group_tests

    tests = group_tests(pairs, alpha=settings.alpha, seed=settings.seed, order=lay.labels)
    write_csv(lay.report / "group_tests.csv", GROUP_TEST_COLUMNS, tests)
    return tests


def explain_non_separations(zoo, pairs: list[dict], cfg: ExperimentConfig, lay: _Layout) -> list:
    """Why each algorithm pair the headline did not separate was not separated
    (:mod:`interpeq.reproduce.toy_explain`): ``explanations.csv`` and ``.png``."""
    from interpeq.report import log_image

    explanations = explain_algorithms(zoo, pairs, lay.labels, cfg.compare)
    write_csv(lay.report / "explanations.csv", EXPLAIN_COLUMNS, explanation_rows(explanations))
    png = explanation_plot(
        explanations, lay.report / "explanations.png", alpha=cfg.compare.alpha,
        title=f"{lay.zoo}: why these algorithm pairs were not separated "
        f"(co-implementations by {cfg.compare.impls[0]})",
    )  # fmt: skip
    if png is not None:
        log_image(lay.clog, "reproduce/explanations", png)
    return explanations


def compare_paper_composition(cfg, root: Path, lay: _Layout, zoo, **train) -> dict:
    """The paper code's composition (:mod:`interpeq.reproduce.paper_composition`),
    reported beside ours: its matrices under ``paper/<form>``. Stage models that are
    their task on its own inputs are taken from ``zoo`` rather than trained again."""
    from interpeq.reproduce.paper_composition import compare_paper

    rows = compare_paper(cfg, root, lay.labels, zoo, **train)
    return matrix_results(lay, rows, cfg.compare.impls[0], FORMS, "paper")


def run_toy(
    cfg: ExperimentConfig,
    root: str | Path = "checkpoints",
    *,
    logger: str = "wandb",
    progress: bool = True,
) -> dict[str, Any]:
    """Run the toy experiment of ``cfg``; returns the summary (also in summary.json)."""
    from interpeq.report import log_summary, log_table

    t0 = time.perf_counter()
    root = Path(root)
    zoo, train_info = train_zoo(cfg, root, logger=logger, progress=progress)
    report, members, clog = open_report(cfg, zoo, logger=logger)
    lay = _layout(zoo, report, cfg.compare.seed, clog)
    chains = chain_rows(zoo, cfg.zoo.train.get("test_size", 1024), cfg.compare.seed)
    write_csv(report / "chains.csv", CHAIN_COLUMNS, chains)
    log_table(clog, "chains", CHAIN_COLUMNS, [[r[c] for c in CHAIN_COLUMNS] for r in chains])

    t_compare = time.perf_counter()
    results, skipped, head_pairs = compare_chains(zoo, cfg, lay, progress)
    tests = algorithm_group_tests(head_pairs, cfg.compare, lay)
    explanations = explain_non_separations(zoo, head_pairs, cfg, lay)
    compare_seconds = time.perf_counter() - t_compare
    paper_seconds = None
    if cfg.compare.compose == "paper":
        t_paper = time.perf_counter()
        results.update(
            compare_paper_composition(cfg, root, lay, zoo, logger=logger, progress=progress)
        )
        paper_seconds = round(time.perf_counter() - t_paper, 1)
    summary = _summary(cfg, lay, results, skipped, members, chains, train_info)
    summary.update(
        group_tests=tests,
        explanations=explanations,
        compare_seconds=round(compare_seconds, 1),
        paper_composition_seconds=paper_seconds,
        total_seconds=round(time.perf_counter() - t0, 1),
    )
    write_json(report / "summary.json", summary)
    (report / "report.md").write_text(report_markdown(summary, members, chains))
    head = results.get(summary["headline"], {})
    flat = {
        "within_sorting": head.get("family_means", {}).get("within_sorting"),
        "across_families": head.get("family_means", {}).get("across_families"),
        "all_rows_pass": head.get("checks", {}).get("all_rows"),
        "total_seconds": summary["total_seconds"],
    }
    log_summary(clog, {f"reproduce/{k}": v for k, v in flat.items() if v is not None})
    if clog:
        clog.finish()
    return summary


def _summary(cfg, lay: _Layout, results, skipped, members, chains, train_info) -> dict:
    c = cfg.compare
    return {
        "experiment": "toy",
        "zoo": lay.zoo,
        "config": str(cfg.path) if cfg.path else None,
        "labels": lay.labels,
        "families": lay.families,
        "headline": f"{c.impls[0]}/{FORMS[0]}",
        "alpha": c.alpha,
        "results": results,
        "not_computed": skipped,
        "paper": cfg.paper,
        "min_member_acc": min((r["acc"] or 0.0) for r in members),
        "min_chain_acc": min(r["e2e_acc"] for r in chains),
        "members_below_paper_acc": [
            r["id"] for r in members if (r["acc"] or 0.0) < cfg.paper.get("min_accuracy", 0.0)
        ],
        **train_info,
        "machine": machine(),
    }
