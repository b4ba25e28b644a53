"""``interpeq reproduce toy``: the paper's toy result (docs/method.md section 10) with one command.

1. Train (or reuse, resumably) the zoo: every stage of the six composed algorithms,
   under the config's seeds and settings (``configs/experiments/toy_<scale>.yaml``).
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

import time
from pathlib import Path
from typing import Any

import torch

from interpeq.compare import compare_zoo, group_pairs
from interpeq.equivalence.pairwise import TooFewUnitsError
from interpeq.reproduce.common import (
    convergence_lines,
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
REFERENCE_NOTE = (
    "Ours asks whether a chain sits among another's co-implementations (its non-circuit "
    "components resampled: models that keep its interpretation), a rank test with a "
    "p-value and a decision. The paper code's statistic patches the *circuit* of the last "
    "stage from other inputs and counts how often the other chain is more similar to the "
    "base than to the patched copy: near 1 when the other chain shares what that circuit "
    "computes, near 0.5 when it is indifferent to it; it has no null and no decision "
    "(interpeq.equivalence.reference)."
)
MATRIX_COLUMNS = ("row", "col", "mean_congruity", "ci_low", "ci_high", "rejection_rate", "n_pairs")


def congruity_form(row: dict[str, Any], form: str) -> float:
    """A pair's score in ``form``: congruity from ``p`` (the fraction of
    co-implementations at most as far as the other model), two-sided (the paper's) or
    one-sided (docs/method.md section 7); or ``reference_fraction``, the paper code's own statistic
    (:mod:`interpeq.equivalence.reference`)."""
    if form == "reference_fraction":
        return row["reference_fraction"]
    p = row["p"]
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
        f"n_{k}": len(v) for k, v in sorted(buckets.items())
    }


def checks(mat, labels: list[str], family_of: dict[str, str], fam: dict[str, Any]) -> dict:
    """The toy study's two criteria on the algorithm matrix."""
    rows_ok = {}
    for i, a in enumerate(labels):
        off = [
            float(mat["mean"][i, j])
            for j, b in enumerate(labels)
            if family_of[b] != family_of[a] and mat["n_pairs"][i, j] > 0
        ]
        diag = float(mat["mean"][i, i])
        # None: not measurable (no same-algorithm pair, e.g. < 2 converged chains)
        rows_ok[a] = None if not off or diag != diag else diag > max(off)
    measured = [ok for ok in rows_ok.values() if ok is not None]
    within, across = fam.get("within_sorting"), fam.get("across_families")
    gap = within - across if within is not None and across is not None else None
    return {
        "diagonal_above_other_family": rows_ok,
        "all_rows": bool(measured) and all(measured),
        "rows_measured": len(measured),
        "within_sorting_minus_across": gap,
        "gap_at_least_0.2": gap is not None and gap >= 0.2,
    }


def row_checks(ch: dict[str, Any]) -> str:
    """``algorithm_1 yes, algorithm_2 no, algorithm_4 not measurable, ...`` for the report."""
    word = {True: "yes", False: "no", None: "not measurable (< 2 chains)"}
    rows = ch["diagonal_above_other_family"]
    return f"{sum(v is True for v in rows.values())} / {len(rows)} rows: " + ", ".join(
        f"{a} {word[v]}" for a, v in rows.items()
    )


def run_toy(
    cfg: ExperimentConfig,
    root: str | Path = "checkpoints",
    *,
    logger: str = "wandb",
    progress: bool = True,
) -> dict[str, Any]:
    """Run the toy experiment of ``cfg``; returns the summary (also in summary.json)."""
    from interpeq.report import group_matrix_plot, log_image, log_summary, log_table
    from interpeq.tasks import get_algorithm

    if cfg.compare.compose == "paper":
        raise ValueError(
            "compare.compose: paper is not part of the toy report yet; run the paper code's "
            "composition from Python (interpeq.reproduce.paper_composition.compare_paper) or "
            "set compose: chains"
        )
    t0 = time.perf_counter()
    root = Path(root)
    spec = cfg.zoo
    zoo, train_info = train_zoo(cfg, root, logger=logger, progress=progress)

    algos = sorted({parse_stage(m.task_name)[0] for m in zoo})
    family_of = {a: get_algorithm(a).family or a for a in algos}
    families: dict[str, list[str]] = {}
    for a in algos:
        families.setdefault(family_of[a], []).append(a)
    labels = [a for f in families for a in families[f]]

    report, members, clog = open_report(cfg, zoo, logger=logger)
    chains = chain_rows(zoo, spec.train.get("test_size", 1024), cfg.compare.seed)
    write_csv(report / "chains.csv", CHAIN_COLUMNS, chains)
    log_table(clog, "chains", CHAIN_COLUMNS, [[r[c] for c in CHAIN_COLUMNS] for r in chains])

    c = cfg.compare
    results: dict[str, Any] = {}
    t_compare = time.perf_counter()
    skipped: dict[str, str] = {}
    for k, impls in enumerate(c.impls):
        try:
            res = compare_zoo(
                zoo, n_probes=c.n_probes, m=c.m, alpha=c.alpha, seed=c.seed, probes=c.probes,
                units="chains", impls=impls, out_dir=report / f"equivalence-{impls}",
                progress=progress, reference=c.reference and k == 0, similarity=c.similarity,
            )  # fmt: skip
        except TooFewUnitsError as err:
            skipped[impls] = not_computed(impls, err)
            continue
        forms = FORMS + (("reference_fraction",) if c.reference and k == 0 else ())
        for form in forms:
            key = f"{impls}/{form}"
            pairs = [dict(r, congruity=congruity_form(r, form)) for r in res.pairs]
            mat = group_matrix(group_pairs(pairs, seed=c.seed), labels)
            long = matrix_rows(mat, labels)
            stem = f"algorithm_matrix_{impls}_{form}"
            write_csv(report / f"{stem}.csv", MATRIX_COLUMNS, long)
            png = group_matrix_plot(
                mat["mean"],
                mat["ci_low"],
                mat["ci_high"],
                labels,
                report / f"{stem}.png",
                families=families,
                rejection=mat["rejection_rate"],
                n_pairs=mat["n_pairs"],
                undecidable=mat["n_undecidable"],
                title=f"{spec.name}: mean {form.replace('_', '-')} congruity between algorithms\n"
                f"(co-implementations by {impls})",
            )
            fam = family_stats(pairs, family_of)
            results[key] = {
                "impls": impls,
                "form": form,
                "family_means": fam,
                "checks": checks(mat, labels, family_of, fam),
                "matrix": {a: [float(x) for x in mat["mean"][i]] for i, a in enumerate(labels)},
                "rejection_rate": {
                    a: [float(x) for x in mat["rejection_rate"][i]] for i, a in enumerate(labels)
                },
                "n_rejected": res.summary["n_rejected"],
                "n_pairs": res.summary["n_pairs"],
                "min_p_value": res.summary.get("min_p_value"),
            }
            log_image(clog, f"reproduce/{stem}", png)
            log_table(clog, stem, MATRIX_COLUMNS, [[r[k] for k in MATRIX_COLUMNS] for r in long])
    compare_seconds = time.perf_counter() - t_compare

    head = results[f"{c.impls[0]}/{FORMS[0]}"]
    summary = {
        "experiment": "toy",
        "zoo": spec.name,
        "config": str(cfg.path) if cfg.path else None,
        "labels": labels,
        "families": families,
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
        "compare_seconds": round(compare_seconds, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "machine": machine(),
    }
    write_json(report / "summary.json", summary)
    (report / "report.md").write_text(report_markdown(summary, members, chains))
    flat = {
        "within_sorting": head["family_means"].get("within_sorting"),
        "across_families": head["family_means"].get("across_families"),
        "all_rows_pass": head["checks"]["all_rows"],
        "total_seconds": summary["total_seconds"],
    }
    log_summary(clog, {f"reproduce/{k}": v for k, v in flat.items() if v is not None})
    if clog:
        clog.finish()
    return summary


def report_markdown(summary: dict[str, Any], members: list[dict], chains: list[dict]) -> str:
    """The human-readable report (also what the README's Results section quotes)."""
    paper = summary["paper"]
    lines = [f"# {summary['zoo']}: the toy experiment", ""]
    lines.append(
        f"{summary['members']} stage models ({summary['trained']} trained by this run, "
        f"{summary['reused']} reused), {len(chains)} chains. Training {summary['train_seconds']:.0f} s, "
        f"comparison {summary['compare_seconds']:.0f} s, total {summary['total_seconds']:.0f} s "
        f"on {summary['machine']['cpu_count']} CPUs"
        + (f" + {summary['machine']['cuda']}" if summary["machine"]["cuda"] else "")
        + "."
    )
    lines.append("")
    lines += convergence_lines(
        summary.get("unconverged", []), "(and every chain with such a stage)", summary.get("retry")
    )
    lines += [f"- {why}\n" for why in summary.get("not_computed", {}).values()]
    for key, res in summary["results"].items():
        fam = res["family_means"]
        impls, form = res["impls"], res["form"]
        heading = (
            "The paper code's construction: fraction of circuit-patched copies farther away"
            if form == "reference_fraction"
            else f"{form.replace('_', '-').capitalize()} congruity, co-implementations by {impls}"
        )
        lines += [f"## {heading}", "", f"![matrix](algorithm_matrix_{impls}_{form}.png)", ""]
        if form == "reference_fraction":
            lines += [REFERENCE_NOTE, ""]
        lines += ["| | ours | paper |", "|---|---|---|"]
        for key, label in (
            ("within_sorting", "within sorting family (1-4)"),
            ("across_families", "across families"),
        ):
            ours = fam.get(key)
            lines.append(
                f"| {label} | {'-' if ours is None else f'{ours:.2f}'} | {paper.get(key, '-')} |"
            )
        for key in ("within_counting", "same_algorithm", "other_algorithm_same_family"):
            if fam.get(key) is not None:
                lines.append(f"| {key.replace('_', ' ')} | {fam[key]:.2f} | |")
        ch = res["checks"]
        gap = ch["within_sorting_minus_across"]
        gap_text = "-" if gap is None else f"{gap:.2f}"
        lines += [
            "",
            "- every diagonal entry above every other-family entry of its row: "
            f"**{'yes' if ch['all_rows'] else 'no'}** ({row_checks(ch)})",
            f"- within sorting minus across families = {gap_text} "
            f"(>= 0.2: **{'yes' if ch['gap_at_least_0.2'] else 'no'}**)",
            f"- rejected pairs: {res['n_rejected']} / {res['n_pairs']} (alpha {summary['alpha']}; "
            f"smallest attainable p-value {res['min_p_value']:.3f})",
            "",
        ]
    lines += ["## Chains (end-to-end accuracy on fresh inputs)", ""]
    lines += ["| algorithm | setting | seed | acc | seq acc |", "|---|---|---|---|---|"]
    for r in chains:
        lines.append(
            f"| {r['algorithm']} | {r['setting']} | {r['seed']} | {r['e2e_acc']:.3f} | {r['e2e_seq_acc']:.3f} |"
        )
    lines += ["", "## Stage models (held-out)", ""]
    lines += [
        "| member | acc | IIA | strict | converged | steps | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in members:
        lines.append(
            f"| {r['id']} | {r['acc']:.3f} | {r['iia']:.3f} | {r['strict']:.3f} "
            f"| {'yes' if r['converged'] else '**no**'} | {r['steps']} | {r['seconds']} |"
        )
    return "\n".join(lines) + "\n"
