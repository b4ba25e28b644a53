"""The IOI study's report folder and its W&B / CSV run.

``<root>/ioi/report/``: ``matrix.csv`` (pairwise congruity; diagonal empty), ``pairs.csv``
(every pair: similarity, congruity, p, p-value, decision), ``groups.csv`` (family pairs:
mean congruity, bootstrap CI, rejection rate, the paper's number), ``matrix.png`` (the
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

PAIR_KEYS = ("a", "b", "group_a", "group_b", "similarity", "congruity", "p", "p_value", "reject")
GROUP_KEYS = ("group", "mean_congruity", "ci_low", "ci_high", "rejection_rate", "n_pairs", "paper")


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


def _markdown(summary: dict, infos: list[dict], ids: list[str], mat: np.ndarray) -> str:
    lines = ["# IOI: interpretive equivalence of pretrained LMs", "", summary["prompts"], ""]
    if summary["min_p_value"] > summary["alpha"]:
        lines += [
            f"Note: with m = {summary['m']} the smallest attainable p-value is "
            f"{summary['min_p_value']:.3f} > alpha = {summary['alpha']}: no pair can be rejected.",
            "",
        ]
    lines += ["| group | mean congruity [95% CI] | rejection rate | pairs | paper |"]
    lines += ["|---|---|---|---|---|"]
    for key, g in summary["headline"].items():
        paper = "" if g.get("paper") is None else f"{g['paper']:.2f}"
        lines.append(
            f"| {key} | {g['mean_congruity']:.3f} [{g['ci_low']:.3f}, {g['ci_high']:.3f}] | "
            f"{g['rejection_rate']:.2f} | {g['n_pairs']} | {paper} |"
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
    _csv(out / "pairs.csv", PAIR_KEYS, [[p[k] for k in PAIR_KEYS] for p in pairs])
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
    summary = {
        "models": ids,
        "families": fams,
        "prompts": prompts.summary(),
        "n_prompts": len(prompts),
        "n_dropped_names": prompts.n_dropped_names,
        "n_dropped_prompts": prompts.n_dropped_prompts,
        "headline": groups["headline"],
        "groups": groups["groups"],
        "paper": dict(cfg.paper),
        "m": cfg.m,
        "alpha": cfg.alpha,
        "min_p_value": min(1.0, 2 / (cfg.m + 1)),  # Bonferroni over the two directions
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
    log_table(logger, "ioi/pairs", PAIR_KEYS, [[p[k] for k in PAIR_KEYS] for p in pairs])
    gkeys = ["group", "mean_congruity", "ci_low", "ci_high", "rejection_rate", "n_pairs"]
    table = [[k, *(g[c] for c in gkeys[1:])] for k, g in summary["headline"].items()]
    log_table(logger, "ioi/groups", gkeys, table)
    flat: dict[str, Any] = {}
    for key, g in summary["headline"].items():
        for stat in ("mean_congruity", "ci_low", "ci_high", "rejection_rate"):
            flat[f"ioi/{key}/{stat}"] = g[stat]
    log_summary(logger, flat)
    logger.finish()
