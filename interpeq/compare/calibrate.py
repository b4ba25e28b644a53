"""``interpeq calibrate <zoo>``: how well the pairwise test decides on a zoo whose
groups are the ground truth (a member's group is its task; a chain's, its algorithm:
the interpretation).

Runs the comparison (:func:`interpeq.compare.run.compare_zoo`, into
``<out>/comparison/``) and reports, overall and per group:

* the **false-rejection rate** of same-group pairs (truly equivalent: a calibrated
  test rejects at most about ``alpha`` of them) with a Clopper-Pearson interval, over
  the decidable pairs (undecidable ones are counted apart);
* the **power** on different-group pairs (rejected share of all of them, Clopper-Pearson
  interval; an undecidable pair counts as missed);
* the **AUROC** of the p-value separating different-group from same-group pairs;
* the **null diagnostic** of each group (draws against the between-member distances)
  (:func:`interpeq.equivalence.groups.null_spread`);
* the **group permutation test** of each pair of groups
  (:func:`interpeq.equivalence.permutation.group_permutation_test`), and a split-half check
  of each group with at least 8 members (two halves of one group: should not reject);
* a **QQ plot** of the same-group p-values against Uniform(0, 1).

Files in ``<zoo>/calibration/`` (or ``out_dir``): ``calibration.json`` (everything,
the pairs included), ``calibration.csv`` (one row per scope: overall, each group, each
group pair) and ``qq.png``. The maths and its assumptions: ``docs/calibration.md``.
Pairs share members, so they are not independent: the intervals treat them as if
they were and are optimistic.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interpeq.compare.log import finish_logger
from interpeq.compare.options import add_arguments, check_options
from interpeq.compare.run import compare_zoo, load_zoo_with_tasks
from interpeq.equivalence.defaults import DEFAULT_ALPHA, DEFAULT_M
from interpeq.equivalence.groups import decision_rates, null_spread, order_statistic_band
from interpeq.equivalence.pairwise import OWN_DRAWS, check_test_options
from interpeq.equivalence.permutation import distance_matrix, group_permutation_test, group_tests
from interpeq.equivalence.units import Unit
from interpeq.interrupts import debug_enabled
from interpeq.report import LOGGER_KINDS, log_image, log_summary, log_table, make_logger
from interpeq.report.plots import _plt, save_figure
from interpeq.zoo.store import DEFAULT_ROOT, load_zoo, write_json_atomic

CALIBRATE_OPTIONS = (
    "n_probes",
    "m",
    "alpha",
    "seed",
    "impls",
    "include_unconverged",
)  # of CompareOptions
CSV_COLUMNS = (
    "scope group_a group_b n_same n_same_undecidable false_rejections false_rejection_rate "
    "fr_ci_low fr_ci_high n_different n_different_undecidable rejections power power_ci_low "
    "power_ci_high auroc median_self median_between "
    "spread_ratio narrow perm_statistic perm_p_value perm_min_p_value perm_reject"
).split()
SPLIT_HALF_MIN = 8  # members a group needs for its split-half check (4 + 4: p >= 1/35)


@dataclass
class CalibrationResult:
    """What :func:`calibrate_zoo` returns (the contents of ``calibration.json``)."""

    out_dir: Path
    files: dict[str, Path]
    settings: dict[str, Any]
    overall: dict[str, Any]
    groups: list[dict[str, Any]]
    group_tests: list[dict[str, Any]]
    split_half: list[dict[str, Any]]
    pairs: list[dict[str, Any]]
    comparison: Any  # the CompareResult

    def payload(self) -> dict[str, Any]:
        keys = ("settings", "overall", "groups", "group_tests", "split_half", "pairs")
        return {k: getattr(self, k) for k in keys}

    def summary_text(self) -> str:
        s = self.settings
        lines = [
            f"calibration of zoo {s['zoo']}: {s['n_units']} units in {s['n_groups']} groups, "
            f"{len(self.pairs)} pairs (impls={s['impls']}, m={s['m']}, alpha={s['alpha']}, "
            f"{s['n_probes']} probes)"
        ]
        if s["min_p_value"] > s["alpha"]:
            lines.append(
                f"  note: the smallest attainable pairwise p-value is {s['min_p_value']:.3f} > "
                "alpha: every pair is undecidable (train more members per group)"
            )
        undecided = self.overall["n_same_undecidable"] + self.overall["n_different_undecidable"]
        if undecided:
            lines.append(
                f"  {undecided} pair(s) undecidable (their nulls cannot reach alpha): left out "
                "of the false-rejection rate, counted as missed in the power"
            )
        head = ["scope", "same", "undec.", "false rej. [95% CI]", "diff", "undec."]
        head += ["power [95% CI]", "AUROC", "draws/members"]
        rows = [_scope_cells("overall", self.overall)]
        rows += [_scope_cells(g["group"], g) for g in self.groups]
        lines += _table(head, rows)
        tests = self.group_tests + self.split_half
        if tests:
            lines.append("  group permutation tests (H0: the two share an interpretation)")
            head = ["groups", "sizes", "statistic", "p-value", "min p", "reject"]
            lines += _table(head, [_test_cells(t) for t in tests])
        narrow = [g["group"] for g in self.groups if g["null_spread"]["narrow"]]
        if narrow and s["impls"] == "intervention":
            lines.append(
                f"  raw draws narrower than retraining in {', '.join(narrow)}: the uncalibrated "
                "test rejects equivalent members there; use the default impls=auto"
            )
        lines.append(f"  files: {', '.join(str(p) for p in self.files.values())}")
        return "\n".join(lines)


def _fmt(x: Any, spec: str = ".3f") -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    return format(x, spec)


def _rate_cell(rate: float, lo: float, hi: float) -> str:
    return f"{_fmt(rate)} [{_fmt(lo)}, {_fmt(hi)}]"


def _scope_cells(name: str, s: dict[str, Any]) -> list[str]:
    ns = s.get("null_spread") or {}
    return [
        name,
        str(s["n_same"]),
        str(s["n_same_undecidable"]),
        _rate_cell(s["false_rejection_rate"], s["fr_ci_low"], s["fr_ci_high"]),
        str(s["n_different"]),
        str(s["n_different_undecidable"]),
        _rate_cell(s["power"], s["power_ci_low"], s["power_ci_high"]),
        _fmt(s["auroc"]),
        _fmt(ns.get("ratio"), ".3g"),
    ]


def _test_cells(t: dict[str, Any]) -> list[str]:
    return [
        f"{t['group_a']} ~ {t['group_b']}",
        f"{t['n_a']} + {t['n_b']}",
        _fmt(t["statistic"], ".4f"),
        _fmt(t["p_value"], ".4f"),
        _fmt(t["min_p_value"], ".4f"),
        "undecidable" if t["min_p_value"] > t["alpha"] else ("yes" if t["reject"] else "no"),
    ]


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    """Rows of aligned columns (first column left-aligned, the others right-aligned)."""
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]

    def line(r: list[str]) -> str:
        rest = [v.rjust(w) for v, w in zip(r[1:], widths[1:], strict=True)]
        return "  " + "  ".join([r[0].ljust(widths[0]), *rest])

    return [line(head), *(line(r) for r in rows)]


PAIR_KEYS = ("a", "b", "group_a", "group_b", "similarity", "congruity", "p", "p_value")
PAIR_KEYS += ("reject", "decision", "min_p_value")


def calibrate_zoo(
    zoo: Any,
    *,
    root: str | Path = DEFAULT_ROOT,
    n_probes: int = 256,
    m: int = DEFAULT_M,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    impls: str = "auto",
    include_unconverged: bool = False,
    out_dir: str | Path | None = None,
    logger: Any = None,
    progress: bool = True,
) -> CalibrationResult:
    """Calibrate the pairwise test on ``zoo`` (groups = ground truth); see the module doc."""
    check_test_options(alpha, impls, m)
    za = load_zoo(zoo, root)
    out = Path(out_dir) if out_dir else za.path / "calibration"
    test = dict(n_probes=n_probes, m=m, alpha=alpha, seed=seed, impls=impls)
    test["include_unconverged"] = include_unconverged
    comp = compare_zoo(za, **test, out_dir=out / "comparison", root=root, progress=progress)
    ids = list(comp.row_ids)
    group_of = {}
    for r in comp.pairs:
        group_of[r["a"]], group_of[r["b"]] = r["group_a"], r["group_b"]
    labels = [group_of[i] for i in ids]
    names = sorted(set(labels))
    _check_groups(za.name, labels, names)
    pairs = [
        {k: r[k] for k in PAIR_KEYS} | {"same": r["group_a"] == r["group_b"]} for r in comp.pairs
    ]
    overall = decision_rates(pairs, [p["same"] for p in pairs])
    spreads = {g["group"]: g for g in comp.summary.get("null_spread") or []}
    spreads = spreads or _spreads(comp.pairs, ids, labels, impls)
    groups = []
    for g in names:
        mine = [p for p in pairs if g in (p["group_a"], p["group_b"])]
        s = decision_rates(mine, [p["same"] for p in mine])
        groups.append({"group": g, "n_members": labels.count(g), **s, "null_spread": spreads[g]})
    dist = distance_matrix(comp.pairs, ids)
    tests = group_tests(comp.pairs, alpha=alpha, seed=seed, order=names)
    halves = _split_half(dist, labels, names, seed, alpha)
    settings = {"zoo": za.name, "n_units": len(ids), "n_groups": len(names), **test}
    settings |= {k: comp.summary.get(k) for k in ("units", "min_p_value")}
    settings["comparison"] = str(comp.out_dir)
    files = {name: out / name for name in ("calibration.json", "calibration.csv", "qq.png")}
    res = CalibrationResult(out, files, settings, overall, groups, tests, halves, pairs, comp)
    write_json_atomic(files["calibration.json"], _jsonable(res.payload()))
    _write_csv(files["calibration.csv"], res)
    qq_plot(pairs, files["qq.png"], alpha=alpha, title=f"zoo {za.name}, impls={impls}, m={m}")
    if logger:
        log_calibration(logger, res)
    return res


def _check_groups(zoo: str, labels: list[str], names: list[str]) -> None:
    if len(names) < 2:
        raise ValueError(
            f"zoo {zoo!r} has one group ({names[0]}): calibration needs at least two tasks "
            "(or algorithms) to measure power; add tasks to the zoo's tasks: list"
        )
    single = [g for g in names if labels.count(g) < 2]
    if len(single) == len(names):
        raise ValueError(
            f"every group of zoo {zoo!r} has one member: there are no same-group pairs; "
            "train at least 2 seeds per task (the zoo's seeds: list)"
        )


def _spreads(rows: list[dict], ids: list[str], labels: list[str], impls: str) -> dict[str, dict]:
    """The null diagnostic per group where the comparison has none (``impls="training"``:
    no draws, so no ratio), from the comparison's pairs: a unit's draws are its
    ``d_*_impls`` where its null used its own draws."""
    pos = {u: k for k, u in enumerate(ids)}
    draws: dict[str, tuple[float, ...]] = {}
    for r in rows:
        draws.setdefault(r["a"], tuple(r["d_a_impls"]))
        draws.setdefault(r["b"], tuple(r["d_b_impls"]))
    empty = torch.zeros(0)
    own = impls in OWN_DRAWS
    units = [
        Unit(u, g, empty, empty, self_d=torch.tensor(draws[u]).double() if own else None)
        for u, g in zip(ids, labels, strict=True)
    ]
    sims = {(pos[r["a"]], pos[r["b"]]): r["similarity"] for r in rows}
    return {s.group: s.to_dict() for s in null_spread(units, sims)}


def _split_half(
    dist: np.ndarray, labels: list[str], names: list[str], seed: int, alpha: float
) -> list[dict]:
    """Each group of >= ``SPLIT_HALF_MIN`` members split into two halves (alternate
    members in id order): H0 holds, so the test should not reject."""
    out = []
    for g in names:
        ks = [k for k, lab in enumerate(labels) if lab == g]
        if len(ks) < SPLIT_HALF_MIN:
            continue
        sub = dist[np.ix_(ks, ks)]
        halves = [f"{g}[even]" if n % 2 == 0 else f"{g}[odd]" for n in range(len(ks))]
        t = group_permutation_test(sub, halves, f"{g}[even]", f"{g}[odd]", seed=seed, alpha=alpha)
        out.append(t.to_dict() | {"split_half": True})
    return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, (np.floating, np.integer)):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None  # NaN (no pairs of that kind) as JSON null
    return x


def _write_csv(path: Path, res: CalibrationResult) -> None:
    rows = [{"scope": "overall", **res.overall}]
    for g in res.groups:
        ns = g["null_spread"]
        rows.append(
            {"scope": "group", "group_a": g["group"], **g}
            | {
                "median_self": ns["median_self"],
                "median_between": ns["median_between"],
                "spread_ratio": ns["ratio"],
                "narrow": ns["narrow"],
            }
        )
    for t in res.group_tests + res.split_half:
        rows.append(
            {
                "scope": "split_half" if t.get("split_half") else "group_pair",
                "group_a": t["group_a"],
                "group_b": t["group_b"],
                "perm_statistic": t["statistic"],
                "perm_p_value": t["p_value"],
                "perm_min_p_value": t["min_p_value"],
                "perm_reject": t["reject"],
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if v is None else v for k, v in _jsonable(r).items()})


def qq_plot(pairs: list[dict], path: str | Path, *, alpha: float, title: str = "") -> Path:
    """Sorted same-group p-values against Uniform(0, 1) quantiles ``i / (n + 1)``, with
    the pointwise 95% band of uniform order statistics; different-group pairs in grey."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    ax.plot([0, 1], [0, 1], color="black", lw=1, label="calibrated: p ~ Uniform(0, 1)")
    same = np.sort([p["p_value"] for p in pairs if p["same"]])
    diff = np.sort([p["p_value"] for p in pairs if not p["same"]])
    if len(same):
        q = np.arange(1, len(same) + 1) / (len(same) + 1)
        lo, hi = order_statistic_band(len(same))
        ax.fill_between(
            q, lo, hi, color="tab:blue", alpha=0.15, label="95% band (uniform order stats)"
        )
        ax.plot(q, same, "o", color="tab:blue", ms=5, label=f"same-group pairs (n={len(same)})")
    if len(diff):
        qd = np.arange(1, len(diff) + 1) / (len(diff) + 1)
        ax.plot(qd, diff, "x", color="grey", ms=4, label=f"different-group pairs (n={len(diff)})")
    ax.axhline(alpha, color="tab:red", ls="--", lw=1, label=f"alpha = {alpha}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Uniform(0, 1) quantile i / (n + 1)")
    ax.set_ylabel("observed p-value (sorted)")
    ax.set_title(
        "QQ of same-group p-values"
        + (f" ({title})" if title else "")
        + "\ncalibrated: points on or above the diagonal; below it the test rejects equivalent pairs",
        fontsize=9,
    )
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def log_calibration(logger: Any, res: CalibrationResult) -> None:
    """The QQ plot, the scope and group-test tables and the headline numbers."""
    log_image(logger, "calibration/qq", res.files["qq.png"])
    cols = ["scope", *CSV_COLUMNS[3:14]]
    rows = [["overall", *[res.overall[c] for c in cols[1:]]]]
    rows += [[g["group"], *[g[c] for c in cols[1:]]] for g in res.groups]
    log_table(logger, "calibration/scopes", cols, rows)
    tcols = ["group_a", "group_b", "n_a", "n_b", "statistic", "p_value", "min_p_value", "reject"]
    tests = res.group_tests + res.split_half
    log_table(logger, "calibration/group_tests", tcols, [[t[c] for c in tcols] for t in tests])
    ncols = ["group", "n_members", "median_self", "median_between", "ratio", "above_all", "narrow"]
    spreads = [g["null_spread"] for g in res.groups]
    log_table(logger, "calibration/null_spread", ncols, [[s[c] for c in ncols] for s in spreads])
    flat = {
        f"calibration/{k}": v
        for k, v in res.overall.items()
        if isinstance(v, (int, float)) and np.isfinite(v)
    }
    for g in res.groups:
        for k in ("false_rejection_rate", "power", "auroc"):
            if np.isfinite(g[k]):
                flat[f"calibration/{g['group']}/{k}"] = g[k]
        flat[f"calibration/{g['group']}/narrow"] = int(g["null_spread"]["narrow"])
    log_summary(logger, flat)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="interpeq calibrate",
        description="Calibrate the pairwise test on a zoo whose groups (tasks, or algorithms for "
        "chains) are the ground truth: false-rejection rate of same-group pairs, power on "
        "different-group pairs, AUROC, the narrow-null diagnostic, group permutation tests and a "
        "p-value QQ plot; writes calibration.json, calibration.csv and qq.png into "
        "<root>/<zoo>/calibration/.",
    )
    parser.add_argument("zoo", help="zoo folder or name under --root (e.g. seeds_check)")
    parser.add_argument(
        "--root", default=str(DEFAULT_ROOT), help="zoo root folder (default: checkpoints)"
    )
    parser.add_argument(
        "--tasks", action="append", default=[], metavar="FILE",
        help="the task file a zoo of your own tasks was trained with (docs/your-task.md)",
    )  # fmt: skip
    add_arguments(parser, CALIBRATE_OPTIONS)
    parser.add_argument("--out", help="output folder (default <root>/<zoo>/calibration)")
    parser.add_argument(
        "--logger", default="wandb", choices=LOGGER_KINDS, help="wandb, csv or none"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args(argv)
    try:
        opts = {k: getattr(args, k) for k in CALIBRATE_OPTIONS}
        check_options(opts)  # bad values first, then the zoo
        za = load_zoo_with_tasks(args.zoo, args.root, args.tasks, "interpeq calibrate")
        logger = make_logger(
            args.logger,
            run_name=f"{za.name}-calibrate",
            group=za.name,
            job_type="calibrate",
            config={k: v for k, v in vars(args).items() if k != "no_progress"},
            tags=[f"zoo:{za.name}", "calibrate"],
            save_dir=za.path,
        )
        result = calibrate_zoo(
            za, **opts, root=args.root, out_dir=args.out, logger=logger,
            progress=not args.no_progress,
        )  # fmt: skip
    except ValueError as err:
        if debug_enabled():
            raise
        print(f"interpeq calibrate: error: {err}", file=sys.stderr)
        return 2
    print(result.summary_text())
    finish_logger(logger)
    return 0
