"""Two studies the paper did not run: ``interpeq reproduce matched`` and ``... settings``.

**Behaviour-matched** (``configs/experiment/matched_<scale>.yaml``): for each pair of
interpretations with identical behaviour and different mechanisms
(:func:`interpeq.tasks.list_matched_pairs`), a zoo of both; does congruity tell the
mechanisms apart when behaviour cannot? Reported per matched pair: mean congruity
within each interpretation and across the two, with bootstrap CIs and rejection rates.

**Settings** (``configs/experiment/settings_<scale>.yaml``): the same interpretations
trained under the four zoo settings (D seed only, A architecture, C correspondence,
B both); how much does varying architecture or correspondence lower
within-interpretation congruity? Reported per task and setting: mean congruity over
same-task pairs whose two members share that setting, and over pairs across settings.

Both write ``<root>/<zoo>/report/`` (``report.md``, ``summary.json``, ``members.csv``,
``<study>_<impls>.csv``/``.png``, ``config.yaml``) and log to W&B like the toy.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from interpeq.compare import compare_zoo
from interpeq.equivalence import group_summary
from interpeq.equivalence.pairwise import TooFewUnitsError
from interpeq.reproduce.common import (
    convergence_lines,
    group_matrix,
    machine,
    not_computed,
    open_report,
    train_zoo,
    write_csv,
    write_json,
)
from interpeq.reproduce.config import ExperimentConfig

ROW_COLUMNS = (
    "study",
    "a",
    "b",
    "mean_congruity",
    "ci_low",
    "ci_high",
    "rejection_rate",
    "n_pairs",
    "n_rejected",
    "n_equivalent",
    "n_undecidable",
    "mean_similarity",
)


def _summarise(rows: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    s = group_summary(rows, seed=seed).to_dict()
    s["mean_similarity"] = sum(r["similarity"] for r in rows) / len(rows)
    return s


def matched_rows(pairs: list[dict], seed: int) -> list[dict[str, Any]]:
    """Per matched pair (A, A'): A~A, A'~A' and A~A' summaries."""
    from interpeq.tasks import list_matched_pairs

    out = []
    for a, b in list_matched_pairs():
        for ga, gb in ((a, a), (b, b), (a, b)):
            rs = [r for r in pairs if sorted((r["group_a"], r["group_b"])) == sorted((ga, gb))]
            if rs:
                out.append({"study": f"{a} | {b}", "a": ga, "b": gb, **_summarise(rs, seed)})
    return out


def settings_rows(pairs: list[dict], setting_of: dict[str, str], seed: int) -> list[dict[str, Any]]:
    """Per task: same-task pairs within each setting, and across settings."""
    buckets: dict[tuple[str, str], list[dict]] = {}
    for r in pairs:
        if r["group_a"] != r["group_b"]:
            continue
        sa, sb = setting_of[r["a"]], setting_of[r["b"]]
        key = sa if sa == sb else "across settings"
        buckets.setdefault((r["group_a"], key), []).append(r)
    for r in pairs:  # all tasks pooled, per setting
        if r["group_a"] == r["group_b"]:
            sa, sb = setting_of[r["a"]], setting_of[r["b"]]
            buckets.setdefault(("all tasks", sa if sa == sb else "across settings"), []).append(r)
    cross = [r for r in pairs if r["group_a"] != r["group_b"]]
    if cross:
        buckets[("different tasks", "any")] = cross
    return [
        {"study": "settings", "a": task, "b": setting, **_summarise(rs, seed)}
        for (task, setting), rs in sorted(buckets.items())
    ]


def run_study(
    cfg: ExperimentConfig,
    root: str | Path = "checkpoints",
    *,
    logger: str = "wandb",
    progress: bool = True,
) -> dict[str, Any]:
    """Run the ``matched`` or ``settings`` study of ``cfg``; returns the summary."""
    from interpeq.report import log_image, log_summary

    t0 = time.perf_counter()
    root = Path(root)
    study, c = cfg.experiment, cfg.compare
    zoo, train_info = train_zoo(cfg, root, logger=logger, progress=progress)
    report, members, clog = open_report(cfg, zoo, logger=logger)
    results = {}
    t_compare = time.perf_counter()
    skipped: dict[str, str] = {}
    for impls in c.impls:
        try:
            res = compare_zoo(
                zoo, n_probes=c.n_probes, m=c.m, alpha=c.alpha, seed=c.seed, probes=c.probes,
                units="members", impls=impls, out_dir=report / f"equivalence-{impls}",
                progress=progress, similarity=c.similarity,
            )  # fmt: skip
        except TooFewUnitsError as err:
            skipped[impls] = not_computed(impls, err)
            continue
        results[impls] = _study_result(cfg, zoo, res, impls, report, clog)
    mechanisms = None
    if study == "matched" and c.readings:
        from interpeq.reproduce.mechanisms import run_readings

        mechanisms = run_readings(zoo, c, report, progress)
        log_image(clog, "reproduce/mechanisms", mechanisms.pop("png"))
    summary = {
        "experiment": study,
        "zoo": cfg.zoo.name,
        "config": str(cfg.path) if cfg.path else None,
        "results": results,
        "mechanisms": mechanisms,
        "not_computed": skipped,
        "min_member_acc": min((r["acc"] or 0.0) for r in members),
        **train_info,
        "compare_seconds": round(time.perf_counter() - t_compare, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "machine": machine(),
    }
    write_json(report / "summary.json", summary)
    (report / "report.md").write_text(study_markdown(summary, members))
    log_summary(clog, {"reproduce/total_seconds": summary["total_seconds"]})
    if clog:
        clog.finish()
    return summary


def _study_result(cfg: ExperimentConfig, zoo, res, impls: str, report: Path, clog) -> dict:
    """One null's rows (matched pairs or settings), matrix figure and W&B entries."""
    from interpeq.report import group_matrix_plot, log_image, log_table

    study, seed = cfg.experiment, cfg.compare.seed
    if study == "matched":
        from interpeq.tasks import list_matched_pairs

        rows = matched_rows(res.pairs, seed)
        families = {f"{a}|{b}": [a, b] for a, b in list_matched_pairs()}
    else:
        rows = settings_rows(res.pairs, {m.id: m.setting for m in zoo}, seed)
        families = None
    write_csv(report / f"{study}_{impls}.csv", ROW_COLUMNS, rows)
    labels = list(dict.fromkeys(cfg.zoo.tasks))
    mat = group_matrix(res.groups, labels)
    png = group_matrix_plot(
        mat["mean"], mat["ci_low"], mat["ci_high"], labels, report / f"{study}_{impls}.png",
        families=families, rejection=mat["rejection_rate"], n_pairs=mat["n_pairs"],
        undecidable=mat["n_undecidable"],
        title=f"{cfg.zoo.name}: mean congruity between tasks\n(co-implementations by {impls})",
    )  # fmt: skip
    if study == "settings":
        png = settings_plot(rows, report / f"{study}_{impls}_by_setting.png", impls)
    log_image(clog, f"reproduce/{study}_{impls}", png)
    log_table(clog, f"{study}_{impls}", ROW_COLUMNS, [[r[k] for k in ROW_COLUMNS] for r in rows])
    return {
        "rows": rows,
        "n_rejected": res.summary["n_rejected"],
        "n_pairs": res.summary["n_pairs"],
        "min_p_value": res.summary.get("min_p_value"),
    }


def settings_plot(rows: list[dict[str, Any]], path: Path, impls: str) -> Path:
    """Mean congruity (with CI) of same-task pairs per setting, one bar group per task,
    each bar labelled with how many of its pairs the test rejected (the decision)."""
    from interpeq.report.plots import _plt, save_figure

    plt = _plt()
    tasks = sorted({r["a"] for r in rows if r["a"] != "different tasks"})
    kinds = ["D", "A", "C", "B", "across settings"]
    fig, ax = plt.subplots(figsize=(1.8 * len(tasks) + 3, 4))
    width = 0.8 / len(kinds)
    for k, kind in enumerate(kinds):
        xs, ys, lo, hi, rejected = [], [], [], [], []
        for t, task in enumerate(tasks):
            r = next((r for r in rows if r["a"] == task and r["b"] == kind), None)
            if r:
                xs.append(t + (k - len(kinds) / 2 + 0.5) * width)
                scored = r["mean_congruity"] == r["mean_congruity"]  # NaN: nothing decidable
                ys.append(r["mean_congruity"] if scored else 0.0)
                lo.append(r["mean_congruity"] - r["ci_low"] if scored else 0.0)
                hi.append(r["ci_high"] - r["mean_congruity"] if scored else 0.0)
                rejected.append(_decided_label(r))
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=kind)
        for x, y, up, text in zip(xs, ys, hi, rejected, strict=True):
            ax.text(x, y + up + 0.02, text, ha="center", fontsize=6, rotation=90)
    ax.set_xticks(range(len(tasks)), tasks, rotation=15)
    ax.set_ylim(0, 1.2)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("mean congruity of same-task pairs")
    ax.set_title(
        f"congruity within each zoo setting (co-implementations by {impls})\n"
        "above each bar: same-task pairs rejected / decidable (und.: undecidable)",
        fontsize=10,
    )
    ax.legend(fontsize=8, ncol=5, loc="upper center")
    return save_figure(fig, path)


def _decided_label(r: dict[str, Any]) -> str:
    """``rej. k/n`` over the decidable pairs, and the undecidable ones apart."""
    und = r.get("n_undecidable", 0)
    text = f"rej. {r.get('n_rejected', 0)}/{r['n_pairs'] - und}"
    return text + (f", und. {und}" if und else "")


def study_markdown(summary: dict[str, Any], members: list[dict]) -> str:
    lines = [f"# {summary['zoo']}: the {summary['experiment']} study", ""]
    lines.append(
        f"{summary['members']} members ({summary['trained']} trained by this run, {summary['reused']} reused); "
        f"training {summary['train_seconds']:.0f} s, comparison {summary['compare_seconds']:.0f} s, "
        f"total {summary['total_seconds']:.0f} s. Lowest member accuracy {summary['min_member_acc']:.3f}."
    )
    lines += ["", *convergence_lines(summary.get("unconverged", []), "", summary.get("retry"))]
    lines += [f"- {why}\n" for why in summary.get("not_computed", {}).values()]
    for impls, res in summary["results"].items():
        lines += ["", f"## Co-implementations by {impls}", ""]
        lines += [f"![{impls}]({summary['experiment']}_{impls}.png)", ""]
        if summary["experiment"] == "settings":
            lines += [f"![{impls} by setting](settings_{impls}_by_setting.png)", ""]
        lines += [
            "| | | rejected / equivalent / undecidable | mean congruity [95% CI] | pairs "
            "| mean similarity |",
            "|---|---|---|---|---|---|",
        ]
        for r in res["rows"]:
            counts = f"{r.get('n_rejected', 0)} / {r.get('n_equivalent', 0)} / "
            lines.append(
                f"| {r['a']} | {r['b']} | {counts}{r.get('n_undecidable', 0)} "
                f"| {r['mean_congruity']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] "
                f"| {r['n_pairs']} | {r['mean_similarity']:.3f} |"
            )
        lines.append(f"\nsmallest attainable p-value {res['min_p_value']:.3f}")
    if summary.get("mechanisms"):
        from interpeq.reproduce.mechanisms import mechanisms_markdown

        m = summary["mechanisms"]
        lines += mechanisms_markdown(m["rows"], [tuple(k) for k in m["useful"]])
    lines += [
        "",
        "## Members (held-out)",
        "",
        "| member | acc | IIA | strict | converged | steps |",
        "|---|---|---|---|---|---|",
    ]
    for r in members:
        lines.append(
            f"| {r['id']} | {r['acc']:.3f} | {r['iia']:.3f} | {r['strict']:.3f} "
            f"| {'yes' if r['converged'] else '**no**'} | {r['steps']} |"
        )
    return "\n".join(lines) + "\n"
