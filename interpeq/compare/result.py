"""What a zoo comparison returns: the pairs, group pairs, matrix and summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interpeq.equivalence.congruity import DEFAULT_M

# every option of a comparison and its default (``interpeq compare``'s defaults too)
OPTION_DEFAULTS: dict[str, Any] = {
    "n_probes": 256,
    "m": DEFAULT_M,
    "alpha": 0.05,
    "seed": 0,
    "probes": "mixture",
    "units": "auto",
    "one_sided": False,
    "impls": "auto",
    "representation": "residual",
    "similarity": "ridge",
}


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
        s = self.summary
        lines = [
            f"{s['n_units']} units in {s['n_groups']} groups, {s['n_pairs']} pairs "
            + (
                f"(co-implementations by training, alpha={s['alpha']}, {s['n_probes']} probes)"
                if s.get("impls") == "training"
                else f"(m={s['m']}, alpha={s['alpha']}, {s['n_probes']} probes)"
            ),
        ]
        if s.get("min_p_value", 0) > s["alpha"]:
            lines.append(
                f"  note: the smallest attainable p-value is {s['min_p_value']:.3f} > alpha: "
                "no pair can be rejected (too few co-implementations; more members or m)"
            )
        for side in ("within", "across"):
            if s.get(f"{side}_rejection_rate") is not None:
                rate = 100 * s[f"{side}_rejection_rate"]
                lines.append(f"  {side}-group pairs rejected  {rate:5.1f}%")
        for side in ("within", "across"):
            if s.get(f"{side}_mean") is not None:
                lines.append(f"  {side}-group mean congruity  {s[f'{side}_mean']:.3f}")
        for g in s.get("null_spread") or []:
            if g["narrow"]:
                fix = (
                    "its directions use the group's other members as the null (impls=auto)"
                    if s.get("impls") == "auto"
                    else "the pairwise test rejects equivalent members there (--impls auto)"
                )
                lines.append(
                    f"  note: narrow null in {g['group']}: its co-implementations sit "
                    f"{g['ratio']:.2f} x as far as its members are from each other; {fix}"
                )
        if s.get("n_identical"):
            lines.append(
                f"  {s['n_identical']} pair(s) of identical models (the same weights): "
                "reported as identical, not scored"
            )
        names = [f"{g['group_a']} ~ {g['group_b']}" for g in self.groups]
        width = max([32, *(len(n) for n in names)])
        lines.append(f"  {'group pair':{width}s} rejected   mean p   congruity [95% CI]")
        for name, g in zip(names, self.groups, strict=True):
            lines.append(
                f"  {name:{width}s} {g['n_pairs'] - g['n_equivalent']:3d} / {g['n_pairs']:<4d}"
                f" {g.get('mean_p_value', float('nan')):6.3f}"
                f"   {g['mean_congruity']:.3f} [{g['ci_low']:.3f}, {g['ci_high']:.3f}]"
            )
        changed = changed_options(s)
        made = ", ".join(f"{k}={v}" for k, v in changed.items()) or "all defaults"
        lines.append(f"  options: {made} (units: {s.get('units')}) -> {self.out_dir}")
        lines.append(f"  files: {', '.join(str(p) for p in self.files.values())}")
        return "\n".join(lines)


def summarize(
    results: Sequence[dict[str, Any]], units: Sequence[Any], settings: dict[str, Any]
) -> dict[str, Any]:
    """The ``summary`` of ``results.json``: the settings, counts and the two means."""
    scored = [r for r in results if not r.get("identical")]
    within_rows = [r for r in scored if r["group_a"] == r["group_b"]]
    across_rows = [r for r in scored if r["group_a"] != r["group_b"]]
    within = [r["congruity"] for r in within_rows]
    across = [r["congruity"] for r in across_rows]
    head = {k: settings[k] for k in ("zoo", "against")}
    tail = {k: v for k, v in settings.items() if k not in head}
    return {
        **head,
        "n_units": len(units),
        "n_groups": len({u.group for u in units}),
        "n_pairs": len(results),
        **tail,
        "within_mean": sum(within) / len(within) if within else None,
        "across_mean": sum(across) / len(across) if across else None,
        "within_rejection_rate": _rate(within_rows),
        "across_rejection_rate": _rate(across_rows),
        "n_rejected": sum(r["reject"] for r in results),
        "n_identical": len(results) - len(scored),
        "non_default_options": changed_options(settings),
        # both directions at their most extreme, Bonferroni-combined (see congruity)
        "min_p_value": min(
            min(1.0, 2 / (1 + max(len(r["d_a_impls"]), len(r["d_b_impls"])))) for r in results
        ),
    }


def _rate(rows: Sequence[dict[str, Any]]) -> float | None:
    return sum(r["reject"] for r in rows) / len(rows) if rows else None
