"""The toy experiment's ``report.md``: what the README's Results section quotes.

Built from the run's ``summary.json`` content alone (no model, no tensor), so a report
can be rewritten from a finished run: timings and convergence first, then one section
per matrix (ours per null and congruity form, the paper code's statistic, the paper
code's composition) with the two criteria stated per row, then the explanation of every
algorithm pair the headline test did not separate, then the chains and stage models.
"""

from __future__ import annotations

from typing import Any

from interpeq.reproduce.common import convergence_lines, retried_lines

REFERENCE_NOTE = (
    "Ours asks whether a chain sits among another's co-implementations (its non-circuit "
    "components resampled: models that keep its interpretation), a rank test with a "
    "p-value and a decision. The paper code's statistic patches the *circuit* of the last "
    "stage from other inputs and counts how often the other chain is more similar to the "
    "base than to the patched copy: near 1 when the other chain shares what that circuit "
    "computes, near 0.5 when it is indifferent to it; it has no null and no decision "
    "(interpeq.equivalence.reference)."
)


def row_checks(ch: dict[str, Any]) -> str:
    """``algorithm_1 yes, algorithm_2 no, algorithm_4 not measurable, ...`` for the report."""
    word = {True: "yes", False: "no", None: "not measurable (< 2 chains)"}
    rows = ch["diagonal_above_other_family"]
    return f"{sum(v is True for v in rows.values())} / {len(rows)} rows: " + ", ".join(
        f"{a} {word[v]}" for a, v in rows.items()
    )


PAPER_NOTE = (
    "The paper code's composition: one zoo per *task* on its own inputs; each algorithm "
    "is composed at evaluation time from paper_k sampled models per stage, every stage "
    "model run on every branch of the previous stage, one unit per root-to-leaf path with "
    "the stage representations concatenated (interpeq.reproduce.paper_composition). Paths "
    "that share a prefix are not independent chains: the group spread, and so the "
    "calibrated null, is that of the paper's construction."
)


def report_markdown(summary: dict[str, Any], members: list[dict], chains: list[dict]) -> str:
    """The human-readable report (also what the README's Results section quotes)."""
    lines = [f"# {summary['zoo']}: the toy experiment", "", _timing_line(summary, chains), ""]
    lines += convergence_lines(
        summary.get("unconverged", []), "(and every chain with such a stage)", summary.get("retry")
    )
    lines += retried_lines(members)
    lines += [f"- {why}\n" for why in summary.get("not_computed", {}).values()]
    why_of = {(e["row"], e["col"]): e["why"] for e in summary.get("explanations", [])}
    for res in summary["results"].values():
        lines += _result_section(res, summary, why_of)
    lines += _group_test_section(summary)
    lines += _explanation_section(summary)
    lines += _chain_table(chains) + _member_table(members)
    return "\n".join(lines) + "\n"


def _timing_line(summary: dict[str, Any], chains: list[dict]) -> str:
    m = summary["machine"]
    paper = summary.get("paper_composition_seconds")
    return (
        f"{summary['members']} stage models ({summary['trained']} trained by this run, "
        f"{summary['reused']} reused), {len(chains)} chains. Training "
        f"{summary['train_seconds']:.0f} s, comparison {summary['compare_seconds']:.0f} s"
        + (f", the paper code's composition {paper:.0f} s" if paper is not None else "")
        + f", total {summary['total_seconds']:.0f} s on {m['cpu_count']} CPUs"
        + (f" + {m['cuda']}" if m["cuda"] else "")
        + "."
    )


def _heading(res: dict[str, Any]) -> str:
    form, impls = res["form"], res["impls"]
    if form == "reference_fraction":
        return "The paper code's statistic: fraction of circuit-patched copies farther away"
    what = "the paper code's composition" if res.get("source") == "paper" else "chains"
    return f"{form.replace('_', '-').capitalize()} congruity, {what}, co-implementations by {impls}"


def _result_section(res: dict[str, Any], summary: dict, why_of: dict) -> list[str]:
    fam, paper = res["family_means"], summary["paper"]
    stem = f"algorithm_matrix_{res.get('source', res['impls'])}_{res['form']}"
    lines = [f"## {_heading(res)}", "", f"![matrix]({stem}.png)", ""]
    if res["form"] == "reference_fraction":
        lines += [REFERENCE_NOTE, ""]
    if res.get("source") == "paper":
        lines += [PAPER_NOTE, ""]
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
    min_p = res.get("min_p_value")
    lines += [
        "",
        "- every diagonal entry above every other-family entry of its row: "
        f"**{_all_rows(ch)}** ({row_checks(ch)})",
        f"- within sorting minus across families = {'-' if gap is None else f'{gap:.2f}'} "
        f"(>= 0.2: **{'yes' if ch['gap_at_least_0.2'] else 'no'}**)",
        f"- rejected pairs: {res['n_rejected']} / {res['n_pairs']} (alpha {summary['alpha']}; "
        f"smallest attainable p-value {'-' if min_p is None else f'{min_p:.3f}'})",
    ]
    lines += _row_misses(res, why_of)
    return lines + [""]


def _row_misses(res: dict[str, Any], why_of: dict) -> list[str]:
    """For each row whose diagonal does not beat every other-family entry: the entries
    at or above it, and the explanation of that pair where there is one."""
    out = []
    for a, beaten in res["checks"].get("beaten_by", {}).items():
        diag = beaten[a]
        for b, v in beaten.items():
            if b != a:
                why = why_of.get((a, b)) or why_of.get((b, a)) or "its chain pairs were rejected"
                out.append(f"  - {a}: {b} {v:.2f} >= diagonal {diag:.2f}; why: {why}")
    return out


def _group_test_section(summary: dict[str, Any]) -> list[str]:
    tests = summary.get("group_tests") or []
    if not tests:
        return []
    lines = [
        "## Group permutation tests (H0: the two algorithms share an interpretation)",
        "",
        "From the distances between chains alone (headline comparison), whatever the "
        "co-implementation draws look like; exact over every relabelling (4 + 4 chains: "
        "smallest p-value 1/35).",
        "",
        "| pair | chains | statistic | p-value | smallest p | decision |",
        "|---|---|---|---|---|---|",
    ]
    for t in tests:
        lines.append(
            f"| {t['group_a']} vs {t['group_b']} | {t['n_a']} + {t['n_b']} "
            f"| {t['statistic']:.3f} | {t['p_value']:.3f} | {t['min_p_value']:.3f} "
            f"| {t['decision']} |"
        )
    n_rej = sum(t["decision"] == "rejected" for t in tests)
    n_und = sum(t["decision"] == "undecidable" for t in tests)
    return lines + ["", f"{n_rej} / {len(tests)} rejected, {n_und} undecidable.", ""]


def _explanation_section(summary: dict[str, Any]) -> list[str]:
    ex = summary.get("explanations") or []
    if not ex:
        return []
    lines = [
        "## Why these algorithm pairs were not separated",
        "",
        "![explanations](explanations.png)",
        "",
        "Per pair of different algorithms with a chain pair the headline test did not "
        "reject: chain pairs rejected / not / undecidable, the median null draw distance of "
        "each side against the median pair distance, the similarity of the whole "
        "representations and of the shared input embedding (explanations.csv has every "
        "stage and layer).",
        "",
        "| pair | rejected / not / undecidable | null a, b / pair distance | similarity: full, embedding | why |",
        "|---|---|---|---|---|",
    ]
    for e in ex:
        d, pair = e["decisions"], e["pair_distance"] or float("nan")
        sims = e["similarity"]
        lines.append(
            f"| {e['row']} vs {e['col']} | {d.get('rejected', 0)} / "
            f"{d.get('equivalent', 0) + d.get('identical', 0)} / {d.get('undecidable', 0)} "
            f"| {_ratio(e['null_a'], pair)}, {_ratio(e['null_b'], pair)} "
            f"| {sims.get('full', float('nan')):.2f}, {sims.get('embedding', float('nan')):.2f} "
            f"| {e['why']} |"
        )
    return lines + [""]


def _all_rows(ch: dict) -> str:
    """yes only when every row was measurable and passes."""
    rows = ch["diagonal_above_other_family"]
    if ch["all_rows"] and ch["rows_measured"] == len(rows):
        return "yes"
    if ch["all_rows"]:
        return f"not shown: yes in the {ch['rows_measured']} measurable rows of {len(rows)}"
    return "no"


def _ratio(null: float | None, pair: float) -> str:
    return "no null" if null is None else f"{null / pair:.2f}"


def _chain_table(chains: list[dict]) -> list[str]:
    lines = ["## Chains (end-to-end accuracy on fresh inputs)", ""]
    lines += ["| algorithm | setting | seed | acc | seq acc |", "|---|---|---|---|---|"]
    for r in chains:
        lines.append(
            f"| {r['algorithm']} | {r['setting']} | {r['seed']} | {r['e2e_acc']:.3f} "
            f"| {r['e2e_seq_acc']:.3f} |"
        )
    return lines + [""]


def _member_table(members: list[dict]) -> list[str]:
    lines = ["## Stage models (held-out)", ""]
    lines += [
        "| member | acc | IIA | strict | converged | steps | s | retries |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in members:
        lines.append(
            f"| {r['id']} | {r['acc']:.3f} | {r['iia']:.3f} | {r['strict']:.3f} "
            f"| {'yes' if r['converged'] else '**no**'} | {r['steps']} | {r['seconds']} "
            f"| {r.get('retries', 0)}{' (reseeded)' if r.get('reseeded') else ''} |"
        )
    return lines
