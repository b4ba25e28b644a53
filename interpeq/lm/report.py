"""The IOI study's report folder and its W&B / CSV run, decisions first.

``report.md`` and ``summary.json`` lead with the test's decision on each pair
(rejected / equivalent / undecidable), its p-value, the smallest p-value its nulls could
reach and which null each side used; a pair is *undecidable* when that smallest p-value
is above alpha, which is not evidence of equivalence. When pairs are undecidable one
line (``note``) says why and what would decide them: how many models per family the
calibrated null needs, or ``impls: intervention`` with its assumption. Only then the
mean congruity beside the paper's numbers, and per family the narrow-null diagnostic.

``<root>/ioi/report/``: ``matrix.csv`` (pairwise congruity; diagonal empty), ``pairs.csv``
(every pair: decision, p-value, min p-value, nulls, congruity, similarity), ``groups.csv``
(family pairs: decision counts, rejection rate, mean congruity, bootstrap CI, the paper's
number), ``matrix.png`` (the
heatmap with the family-pair table), ``groups.png`` (family x family means with CIs),
``circuits.json`` (per model: head scores, importance, circuit, and the comparison with
the GPT-2 small reference circuit for GPT-2 small), ``config.yaml`` (the exact resolved
config), ``prompts.jsonl`` (the prompts every model saw), ``summary.json``, ``report.md``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from interpeq.equivalence.nulls import min_p_value

PAIR_KEYS = (
    "a", "b", "group_a", "group_b", "decision", "p_value", "min_p_value", "null_a", "null_b",
    "congruity", "similarity", "p", "reject",
)  # fmt: skip
DECISION_KEYS = PAIR_KEYS[:10]  # what summary.json keeps of each pair
GROUP_KEYS = (
    "group", "n_rejected", "n_equivalent", "n_undecidable", "rejection_rate",
    "mean_congruity", "ci_low", "ci_high", "n_pairs", "paper",
)  # fmt: skip
_OUTCOMES = ("rejected", "equivalent", "undecidable", "identical")
INTERVENTION_ASSUMPTION = (
    "set `impls: intervention` in the config to use the raw resample-patching draws "
    "instead, which assumes they move a model at least as far as retraining would"
)


def _csv(path: Path, header, rows) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def pair_matrix(ids: list[str], pairs: list[dict]) -> np.ndarray:
    """``[k, k]`` congruity, symmetric, NaN on the diagonal."""
    pos = {u: i for i, u in enumerate(ids)}
    mat = np.full((len(ids), len(ids)), np.nan)
    for p in pairs:
        i, j = pos[p["a"]], pos[p["b"]]
        mat[i, j] = mat[j, i] = p["congruity"]
    return mat


def paper_value(cfg, key: str) -> float | None:
    """The paper's number for a headline key (``within_gpt2``, ``within_pythia``, ``across``)."""
    return cfg.paper.get(key)


def _family_plot(out: Path, groups: dict, families: list[str]) -> Path:
    from interpeq.report import group_matrix_plot

    k = len(families)
    mean, lo, hi = (np.full((k, k), np.nan) for _ in range(3))
    for i, a in enumerate(families):
        for j, b in enumerate(families):
            g = groups["groups"].get(f"{a}~{b}") or groups["groups"].get(f"{b}~{a}")
            if g:
                mean[i, j], lo[i, j], hi[i, j] = g["mean_congruity"], g["ci_low"], g["ci_high"]
    return group_matrix_plot(
        mean, lo, hi, families, out / "groups.png", title="IOI: mean congruity between families"
    )


def _heatmap(out: Path, mat: np.ndarray, fams: list[str], groups: dict) -> Path:
    from interpeq.report import congruity_heatmap

    stats = {tuple(k.split("~")): v for k, v in groups["groups"].items()}
    return congruity_heatmap(
        mat, fams, fams, out / "matrix.png", group_stats=stats, title="IOI congruity"
    )


def _num(v: Any, fmt: str = ".3f") -> str:
    """A number for the report; ``n/a`` for a missing or NaN one (e.g. no null)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return format(v, fmt)


def decisions(pairs: list[dict]) -> list[dict]:
    """Each pair's decision, p-value, smallest attainable p-value and nulls (plus
    ``members_needed`` on undecidable pairs): what ``summary.json`` leads with."""
    out = []
    for p in pairs:
        row = {k: p.get(k) for k in DECISION_KEYS}
        if "members_needed" in p:
            row["members_needed"] = p["members_needed"]
        out.append(row)
    return out


def decidability_note(pairs: list[dict], fams: list[str], cfg) -> str | None:
    """One line when pairs are undecidable: why, and what would decide them (models
    per family for the calibrated null, ``m`` for the draws, or the intervention null
    with its assumption); ``None`` when every pair is decidable."""
    und = [p for p in pairs if p.get("decision") == "undecidable"]
    if not und:
        return None
    sizes = {f: fams.count(f) for f in dict.fromkeys(fams)}
    line = (
        f"{len(und)} of {len(pairs)} pairs are undecidable (their nulls cannot reach "
        f"alpha = {cfg.alpha}; not evidence of equivalence)"
    )
    needs = []
    members = max(int(p.get("members_needed", 1)) for p in und)
    if cfg.impls != "intervention" and any(n < members for n in sizes.values()):
        null = "the calibrated null" if cfg.impls == "auto" else "the training null"
        here = ", ".join(f"{f} {n}" for f, n in sizes.items())
        needs.append(f"{null} needs at least {members} models per family (here: {here})")
    if cfg.impls != "training" and min_p_value([cfg.m]) > cfg.alpha:
        needs.append(f"m >= {math.ceil(2 / cfg.alpha) - 1} co-implementations (here {cfg.m})")
    if needs:
        line += ": " + " and ".join(needs)
    if cfg.impls == "auto":
        line += "; or " + INTERVENTION_ASSUMPTION
    return line + "."


def _decision_lines(summary: dict) -> list[str]:
    """The report's first section: every pair's decision and p-values."""
    counts = {d: sum(r["decision"] == d for r in summary["decisions"]) for d in _OUTCOMES}
    if not counts["identical"]:  # the same model twice: only said when it happened
        del counts["identical"]
    lines = [
        f"## Decisions (null: `{summary['impls']}`, alpha = {summary['alpha']})",
        "",
        ", ".join(f"{n} {d}" for d, n in counts.items())
        + f" of {len(summary['decisions'])} pairs.",
        "",
    ]
    if summary.get("note"):
        lines += [f"**Note.** {summary['note']}", ""]
    lines += ["| a | b | decision | p-value | min attainable p | null a | null b | congruity |"]
    lines += ["|---|---|---|---|---|---|---|---|"]
    for r in summary["decisions"]:
        lines.append(
            f"| {r['a']} | {r['b']} | **{r['decision']}** | {_num(r['p_value'])} | "
            f"{_num(r['min_p_value'])} | {r['null_a']} | {r['null_b']} | {_num(r['congruity'])} |"
        )
    return lines


def _markdown(summary: dict, infos: list[dict], ids: list[str], mat: np.ndarray) -> str:
    lines = ["# IOI: interpretive equivalence of pretrained LMs", "", summary["prompts"], ""]
    lines += _decision_lines(summary)
    lines += ["", "## Mean congruity beside the paper", ""]
    lines += ["| group | rejected / equivalent / undecidable | rejection rate (decidable) "]
    lines[-1] += "| mean congruity [95% CI] | pairs | paper |"
    lines += ["|---|---|---|---|---|---|"]
    for key, g in summary["headline"].items():
        paper = "" if g.get("paper") is None else f"{g['paper']:.2f}"
        lines.append(
            f"| {key} | {g['n_rejected']} / {g['n_equivalent']} / {g['n_undecidable']} | "
            f"{_num(g['rejection_rate'], '.2f')} | {_num(g['mean_congruity'])} "
            f"[{_num(g['ci_low'])}, {_num(g['ci_high'])}] | {g['n_pairs']} | {paper} |"
        )
    lines += ["", "## Null spread per family (narrow-null diagnostic)", ""]
    lines += ["| family | models | median draw distance | median between-model distance | "]
    lines[-1] += "ratio | narrow |"
    lines += ["|---|---|---|---|---|---|"]
    for fam, ns in summary["null_spread"].items():
        lines.append(
            f"| {fam} | {ns['n_members']} | {_num(ns['median_self'])} | "
            f"{_num(ns['median_between'])} | {_num(ns['ratio'], '.2f')} | "
            f"{'yes' if ns['narrow'] else 'no'} |"
        )
    lines += ["", "## Pairwise congruity", "", "| | " + " | ".join(ids) + " |"]
    lines += ["|---" * (len(ids) + 1) + "|"]
    for i, u in enumerate(ids):
        cells = ["" if math.isnan(v) else f"{v:.2f}" for v in mat[i]]
        lines.append(f"| {u} | " + " | ".join(cells) + " |")
    lines += ["", "## Circuits", ""]
    for info in infos:
        lines.append(
            f"- **{info['id']}** ({info['family']}, {info['n_layers']} x {info['n_heads']} heads): "
            f"{len(info['circuit'])} heads: {', '.join(info['circuit'])}"
        )
        ref = info.get("gpt2_reference")
        if ref:
            lines.append(
                f"  - vs the GPT-2 small IOI circuit (Wang et al. 2022): overlap {ref['overlap']}"
                f"/{ref['n_reference']}, precision {ref['precision']:.2f}, "
                f"recall {ref['recall']:.2f}"
            )
    lines += ["", f"Run time {summary['seconds']:.0f} s. Files: {', '.join(summary['files'])}."]
    return "\n".join(lines) + "\n"


def write_report(
    out: Path, *, cfg, resolved, prompts, units, infos, pairs, groups, logger, seconds
):
    """Write every file of the module doc, log them, and return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    ids = [u.id for u in units]
    fams = [u.group for u in units]
    mat = pair_matrix(ids, pairs)
    rows = [
        [u, f, *["" if math.isnan(v) else v for v in mat[i]]]
        for i, (u, f) in enumerate(zip(ids, fams, strict=True))
    ]
    _csv(out / "matrix.csv", ["id", "family", *ids], rows)
    _csv(out / "pairs.csv", PAIR_KEYS, [[p.get(k) for k in PAIR_KEYS] for p in pairs])
    for key, g in groups["headline"].items():
        g["paper"] = paper_value(cfg, key)
    grows = [[k, *[g.get(c) for c in GROUP_KEYS[1:]]] for k, g in groups["headline"].items()]
    grows += [[k, *[g.get(c) for c in GROUP_KEYS[1:-1]], None] for k, g in groups["groups"].items()]
    _csv(out / "groups.csv", GROUP_KEYS, grows)
    _heatmap(out, mat, fams, groups)
    _family_plot(out, groups, list(dict.fromkeys(fams)))
    (out / "circuits.json").write_text(json.dumps({i["id"]: i for i in infos}, indent=1))
    resolved_cfg = cfg.to_dict() | {
        "resolved_models": [
            {"id": r.spec.id, "source": r.spec.source, "family": r.family} for r in resolved
        ]
    }
    (out / "config.yaml").write_text(yaml.safe_dump(resolved_cfg, sort_keys=False))
    prompts.to_dataset().to_json(str(out / "prompts.jsonl"))
    files = sorted([*(p.name for p in out.iterdir()), "summary.json", "report.md"])
    summary = {  # decisions first, then the means beside the paper's
        "impls": cfg.impls,
        "alpha": cfg.alpha,
        "m": cfg.m,
        "note": decidability_note(pairs, fams, cfg),
        "decisions": decisions(pairs),
        "headline": groups["headline"],
        "groups": groups["groups"],
        "null_spread": groups.get("null_spread", {}),
        "paper": dict(cfg.paper),
        "models": ids,
        "families": fams,
        "prompts": prompts.summary(),
        "n_prompts": len(prompts),
        "n_dropped_names": prompts.n_dropped_names,
        "n_dropped_prompts": prompts.n_dropped_prompts,
        "min_p_value": min_p_value([cfg.m]),  # the best a pair's draws allow (Bonferroni)
        "seconds": seconds,
        "files": sorted(set(files)),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "report.md").write_text(_markdown(summary, infos, ids, mat))
    log_run(out, cfg, summary, pairs, logger)
    return summary


def log_run(out: Path, cfg, summary: dict, pairs: list[dict], kind: str) -> None:
    """One ``compare`` run: both figures, the pairs and groups tables, the headline summary."""
    from interpeq.report import log_image, log_summary, log_table, make_logger

    logger = make_logger(
        kind,
        run_name="ioi",
        group="ioi",
        job_type="compare",
        config=cfg.to_dict(),
        tags=["experiment:ioi", *(f"model:{m}" for m in summary["models"])],
        save_dir=out.parent,
    )
    if not logger:
        return
    log_image(logger, "ioi/matrix", out / "matrix.png")
    log_image(logger, "ioi/groups", out / "groups.png")
    log_table(logger, "ioi/pairs", PAIR_KEYS, [[p.get(k) for k in PAIR_KEYS] for p in pairs])
    gkeys = list(GROUP_KEYS[:-1])
    table = [[k, *(g[c] for c in gkeys[1:])] for k, g in summary["headline"].items()]
    log_table(logger, "ioi/groups", gkeys, table)
    flat: dict[str, Any] = {"ioi/impls": summary["impls"]}
    if summary["note"]:
        flat["ioi/note"] = summary["note"]
    for key, g in summary["headline"].items():
        for stat in gkeys[1:-1]:
            flat[f"ioi/{key}/{stat}"] = g[stat]
    log_summary(logger, flat)
    logger.finish()
