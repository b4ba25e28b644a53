"""What a zoo comparison returns: the pairs, group pairs, matrix and summary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interpeq.compare.options import OPTION_DEFAULTS
from interpeq.equivalence.nulls import MIN_MEMBERS, members_needed, min_p_value

DECISIONS = ("rejected", "equivalent", "undecidable")  # what the pairwise test can say


def changed_options(summary: dict[str, Any]) -> dict[str, Any]:
    """The options of a comparison (its ``summary``) that are not at their defaults
    (``units`` is stored resolved, so it is left out)."""
    return {
        k: summary[k]
        for k, default in OPTION_DEFAULTS.items()
        if k != "units" and k in summary and summary[k] != default
    }


@dataclass
class CompareResult:
    out_dir: Path
    files: dict[str, Path]
    pairs: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    summary: dict[str, Any]
    row_ids: list[str]
    col_ids: list[str]
    matrix: Any  # numpy [rows, cols]

    def summary_text(self) -> str:
        """Decisions first (rejected / equivalent / undecidable per side, then the
        rejection rate over decidable pairs), then congruity (one-sided, then the
        paper's two-sided form), notes, and the group-pair table."""
        s = self.summary
        lines = [
            f"{s['n_units']} units in {s['n_groups']} groups, {s['n_pairs']} pairs "
            + (
                f"(co-implementations by training, alpha={s['alpha']}, {s['n_probes']} probes)"
                if s.get("impls") == "training"
                else f"(m={s['m']}, alpha={s['alpha']}, {s['n_probes']} probes)"
            ),
        ]
        lines += _decision_lines(s)
        lines += _note_lines(s)
        lines += _group_table(self.groups)
        changed = changed_options(s)
        made = ", ".join(f"{k}={v}" for k, v in changed.items()) or "all defaults"
        lines.append(f"  options: {made} (units: {s.get('units')}) -> {self.out_dir}")
        lines.append(f"  files: {', '.join(str(p) for p in self.files.values())}")
        return "\n".join(lines)


def _decision_lines(s: dict[str, Any]) -> list[str]:
    """Per side: the three counts, the rejection rate over decidable pairs, congruity."""
    lines = []
    for side in ("within", "across"):
        if s.get(f"{side}_rejected") is not None:
            counts = " / ".join(f"{d} {s[f'{side}_{d}']}" for d in DECISIONS)
            lines.append(f"  {side}-group pairs  {counts}")
    for side in ("within", "across"):
        rate = s.get(f"{side}_rejection_rate")
        if rate is not None:
            lines.append(f"  {side}-group pairs rejected  {100 * rate:5.1f}% of decidable")
        elif s.get(f"{side}_rejected") is not None:
            lines.append(f"  {side}-group pairs rejected    n/a (no decidable pair)")
    for side in ("within", "across"):
        one, two = s.get(f"{side}_one_sided"), s.get(f"{side}_two_sided")
        if one is None and s.get(f"{side}_mean") is None:
            continue
        if one is None:  # a summary without the rows' rank p (older results)
            lines.append(f"  {side}-group mean congruity  {s[f'{side}_mean']:.3f}")
            continue
        lines.append(
            f"  {side}-group mean congruity  {one:.3f} one-sided; {two:.3f} two-sided"
            " (the paper's form)"
        )
    return lines


def _note_lines(s: dict[str, Any]) -> list[str]:
    """Undecidable pairs and what would decide them; the draws' spread; identical models."""
    lines = []
    n_und = s.get("n_undecidable") or 0
    if n_und:
        groups = s.get("undecidable_groups") or []
        where = f" (in {', '.join(groups[:4])}{' ...' if len(groups) > 4 else ''})"
        lines.append(
            f"  note: {n_und} pair(s) undecidable{where if groups else ''}, not evidence of "
            f"equivalence: {_undecidable_fix(s)}"
        )
    elif s.get("min_p_value", 0) > s["alpha"]:
        lines.append(
            f"  note: the smallest attainable p-value is {s['min_p_value']:.3f} > alpha: "
            "no pair can be rejected"
        )
    spread = [
        f"{g['group']} {g['ratio']:.2f} x"
        for g in s.get("null_spread") or []
        if math.isfinite(g.get("ratio", math.nan))
    ]
    if spread:
        how = {"auto": "calibrated", "intervention": "raw draws"}.get(s.get("impls"), "")
        lines.append(
            f"  draws / between-member distance{f' ({how} null)' if how else ''}: "
            + ", ".join(spread)
        )
    if s.get("n_identical"):
        lines.append(
            f"  {s['n_identical']} pair(s) of identical models (the same weights): "
            "reported as identical, not scored"
        )
    return lines


def _undecidable_fix(s: dict[str, Any]) -> str:
    """Why some pairs cannot be decided with these options, and what would decide them:
    too few members (no null of their own) and / or too few draws (``m``)."""
    impls, alpha = s.get("impls"), s["alpha"]
    n_members = s.get("undecidable_for_members", s.get("n_undecidable", 0))
    n_draws = s.get("undecidable_for_draws", 0)
    need = s.get("members_needed") or members_needed(impls or "auto", alpha, s.get("m") or 0)
    fixes = []
    if n_members and impls == "training":
        fixes.append(
            "the training null ranks among a group's other members; "
            f"train at least {need} members per group"
        )
    elif n_members:
        need = max(need, MIN_MEMBERS)
        fixes.append(
            f"groups with < {need} members have no calibrated null; "
            f"train at least {need} members per group"
        )
    if n_draws:
        fixes.append(
            f"m={s.get('m')} draws cannot reach alpha={alpha}; "
            f"use m >= {math.ceil(2 / alpha - 1 - 1e-9)}"
        )
    if n_members and n_draws:
        fixes = [f"{n_members} pair(s): {fixes[0]}", f"{n_draws}: {fixes[1]}"]
    return "; ".join(fixes)


def _group_table(groups: Sequence[dict[str, Any]]) -> list[str]:
    """One row per group pair: rejected / pairs, equivalent, undecidable, mean p, congruity."""
    names = [f"{g['group_a']} ~ {g['group_b']}" for g in groups]
    width = max([32, *(len(n) for n in names)])
    lines = [
        f"  {'group pair':{width}s} {'rejected':>10s} {'equivalent':>10s} {'undecidable':>11s}"
        f" {'mean p':>7s}   congruity [95% CI]"
    ]
    for name, g in zip(names, groups, strict=True):
        n_und = g.get("n_undecidable", 0)
        n_rej = g.get("n_rejected", g["n_pairs"] - g["n_equivalent"] - n_und)
        lines.append(
            f"  {name:{width}s} {n_rej:>4d} / {g['n_pairs']:<3d}"
            f" {g['n_equivalent']:>10d} {n_und:>11d} {g.get('mean_p_value', math.nan):>7.3f}"
            f"   {g['mean_congruity']:.3f} [{g['ci_low']:.3f}, {g['ci_high']:.3f}]"
        )
    return lines


def summarize(
    results: Sequence[dict[str, Any]], units: Sequence[Any], settings: dict[str, Any]
) -> dict[str, Any]:
    """The ``summary`` of ``results.json``: the settings, the decisions (rejected /
    equivalent / undecidable, overall and per side; rejection rates over decidable
    pairs) and the mean congruities (the rows' own, and one- / two-sided from ``p``)."""
    scored = [r for r in results if not r.get("identical")]
    sides = {
        "within": [r for r in scored if r["group_a"] == r["group_b"]],
        "across": [r for r in scored if r["group_a"] != r["group_b"]],
    }
    head = {k: settings[k] for k in ("zoo", "against")}
    tail = {k: v for k, v in settings.items() if k not in head}
    counts = _counts(scored)
    out = {
        **head,
        "n_units": len(units),
        "n_groups": len({u.group for u in units}),
        "n_pairs": len(results),
        **tail,
    }
    for side, rows in sides.items():
        out[f"{side}_mean"] = _mean(r["congruity"] for r in rows)
    for side, rows in sides.items():
        out[f"{side}_one_sided"] = _mean(
            min(1.0, 2 * (1 - r["p"])) for r in rows if _finite(r.get("p"))
        )
        out[f"{side}_two_sided"] = _mean(
            1 - abs(2 * r["p"] - 1) for r in rows if _finite(r.get("p"))
        )
    for side, rows in sides.items():
        out[f"{side}_rejection_rate"] = _rate(rows)
    for side, rows in sides.items():
        side_counts = _counts(rows) if rows else dict.fromkeys(DECISIONS)
        out.update({f"{side}_{d}": n for d, n in side_counts.items()})
    undecidable = [r for r in scored if _decision(r) == "undecidable"]
    by_draws = sum(_short_of_draws(r, settings.get("impls")) for r in undecidable)
    out.update(
        n_rejected=counts["rejected"],
        n_equivalent=counts["equivalent"],
        n_undecidable=counts["undecidable"],
        n_identical=len(results) - len(scored),
        non_default_options=changed_options(settings),
        min_p_value=min((_min_p(r) for r in scored), default=1.0),
        members_needed=max((r.get("members_needed") or 0 for r in undecidable), default=None),
        undecidable_groups=sorted({g for r in undecidable for g in (r["group_a"], r["group_b"])}),
        undecidable_for_members=len(undecidable) - by_draws,  # no null of their own
        undecidable_for_draws=by_draws,  # nulls with too few draws (m) to reach alpha
    )
    return out


def _decision(r: dict[str, Any]) -> str:
    """A row's decision (rows without one: from ``reject``)."""
    return r.get("decision") or ("rejected" if r["reject"] else "equivalent")


def _short_of_draws(r: dict[str, Any], impls: str | None) -> bool:
    """An undecidable row whose nulls exist but have too few draws (more ``m`` decides
    it); otherwise its groups have too few members for a null."""
    nulls = {r.get("null_a", impls), r.get("null_b", impls)}
    return bool(nulls & {"calibrated", "intervention"})


def _counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    decisions = [_decision(r) for r in rows]
    return {d: decisions.count(d) for d in DECISIONS}


def _mean(values: Any) -> float | None:
    """Mean of the finite values (None when there are none)."""
    v = [float(x) for x in values if _finite(x)]
    return sum(v) / len(v) if v else None


def _finite(x: Any) -> bool:
    return x is not None and math.isfinite(x)


def _rate(rows: Sequence[dict[str, Any]]) -> float | None:
    """Rejected / decidable pairs (None when none is decidable)."""
    c = _counts(rows)
    decidable = c["rejected"] + c["equivalent"]
    return c["rejected"] / decidable if decidable else None


def _min_p(r: dict[str, Any]) -> float:
    """The row's smallest attainable p-value (older rows: from their draw counts)."""
    if "min_p_value" in r:
        return float(r["min_p_value"])
    return min_p_value([len(r["d_a_impls"]), len(r["d_b_impls"])])
