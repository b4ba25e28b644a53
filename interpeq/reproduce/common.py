"""Pieces every experiment shares: train (or reuse) its zoo, tabulate members, write files."""

from __future__ import annotations

import csv
import json
import platform
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from interpeq.zoo import Zoo, ZooStore

MEMBER_COLUMNS = (
    "id", "task", "setting", "seed", "acc", "iia", "strict", "converged", "steps", "seconds",
    "retries", "reseeded",
)  # fmt: skip


def open_report(cfg, zoo: Zoo, *, logger: str) -> tuple[Path, list[dict[str, Any]], Any]:
    """Start ``<zoo>/report/``: ``members.csv``, ``config.yaml`` (the experiment config
    and every member's seeds) and the experiment's ``reproduce`` logger, which gets the
    members table. Returns ``(report folder, member rows, logger)``."""
    import yaml

    from interpeq.report import log_table, make_logger

    spec = cfg.zoo
    report = zoo.path / "report"
    members = member_rows(zoo)
    write_csv(report / "members.csv", MEMBER_COLUMNS, members)
    seeds = [
        {"id": m.id, "model_seed": m.model.seed, "train_seed": m.train.seed} for m in spec.members()
    ]
    dump = {"experiment": cfg.raw, "members": seeds}
    (report / "config.yaml").write_text(yaml.safe_dump(dump, sort_keys=False))
    clog = make_logger(
        logger,
        run_name=f"{spec.name}-reproduce",
        group=spec.name,
        job_type="reproduce",
        config=cfg.raw,
        tags=[f"zoo:{spec.name}", "reproduce", cfg.experiment],
        save_dir=zoo.path,
    )
    log_table(clog, "members", MEMBER_COLUMNS, [[r[c] for c in MEMBER_COLUMNS] for r in members])
    return report, members, clog


def train_zoo(
    cfg: Any, root: Path, *, logger: str = "none", progress: bool = True
) -> tuple[Zoo, dict[str, Any]]:
    """Train the experiment's zoo through the pipeline (:func:`interpeq.experiment.
    run_experiment`: stacked, one W&B/CSV run per member, the ``retry:`` of its ``zoo:``
    section); the comparisons are the experiment's own. Returns the zoo and what this
    call did (members trained, reused, and those that did not converge)."""
    import dataclasses

    from interpeq.experiment import LoggerSpec, run_experiment

    exp = dataclasses.replace(cfg.pipeline, logger=LoggerSpec(kind=logger), tracking=None)
    exp = dataclasses.replace(exp, compare=dataclasses.replace(exp.compare, enabled=False))
    store = ZooStore(root, exp.zoo.name)
    members = exp.zoo.members()
    reused = sum(store.is_finished(m.id) for m in members)
    start = time.perf_counter()
    zoo = run_experiment(exp, root, progress=progress).zoo
    info = {
        "members": len(members),
        "reused": reused,
        "trained": len(members) - reused,
        "train_seconds": round(time.perf_counter() - start, 1),
        "unconverged": [m.id for m in zoo if not m.converged],
        "retry": exp.retry.to_dict(),
    }
    return zoo, info


def member_rows(zoo: Zoo) -> list[dict[str, Any]]:
    """One row per member: held-out accuracy, IIA, strict accuracy, steps, seconds."""
    rows = []
    for m in zoo:
        met = m.metrics
        rows.append(
            {
                "id": m.id,
                "task": m.task_name,
                "setting": m.setting,
                "seed": m.seed,
                "acc": met.get("acc"),
                "iia": met.get("iia"),
                "strict": met.get("strict", met.get("strict_acc")),
                "converged": m.converged,
                "steps": int(met.get("steps", 0)),
                "seconds": round(float(met.get("seconds", 0.0)), 1),
                **_retries(m.spec.get("retry")),
            }
        )
    return rows


def _retries(record: dict[str, Any] | None) -> dict[str, Any]:
    """How many retries a member took and whether the kept attempt is a reseed (from its
    ``member.json`` ``retry`` record)."""
    if not record:
        return {"retries": 0, "reseeded": False}
    history = record.get("history", [])
    kept = record.get("kept", 0)
    mode = history[kept].get("mode") if 0 <= kept < len(history) else None
    return {"retries": max(0, len(history) - 1), "reseeded": mode == "reseed"}


def retried_lines(members: Sequence[dict[str, Any]]) -> list[str]:
    """The report's word on members that needed retries (``member_rows``): none is
    dropped silently, each retrained one is named with its tries."""
    retried = [r for r in members if r.get("retries")]
    if not retried:
        return []
    named = ", ".join(
        f"{r['id']} ({r['retries']} tr{'y' if r['retries'] == 1 else 'ies'}"
        + ("; kept a reseed" if r["reseeded"] else "")
        + ")"
        for r in retried
    )
    n_reseed = sum(bool(r["reseeded"]) for r in retried)
    return [
        f"{len(retried)} member(s) missed their thresholds at first and were retrained "
        f"({n_reseed} kept from a new seed): {named}.",
        "",
    ]


def convergence_lines(
    unconverged: Sequence[str], what: str, retry: dict[str, Any] | None = None
) -> list[str]:
    """The report's word on members that missed their thresholds: which, what was tried
    (``retry``, the zoo's ``retry:`` section) and what it did to the result (``what``:
    e.g. "and every chain with such a stage")."""
    if not unconverged:
        return ["Every member met its thresholds (held-out acc / IIA / strict).", ""]
    from interpeq.zoo.retry import RetrySpec

    policy = RetrySpec.from_dict(retry)
    tried = (
        f"after {policy.describe()} (the attempts are in each member's `member.json`)"
        if policy.mode != "none"
        else "with no `retry:` (set it in the experiment's `zoo:` section to retrain them)"
    )
    return [
        f"**{len(unconverged)} member(s) missed their thresholds** (held-out acc / IIA / "
        f"strict; `converged: false`) {tried}: {', '.join(unconverged)}. They{' ' + what if what else ''} are "
        "left out of the comparisons below; compare with `--include-unconverged` to keep them.",
        "",
    ]


def not_computed(impls: str, err: Exception) -> str:
    """The report's line for a null that could not be computed, also a warning."""
    line = f"Co-implementations by {impls}: not computed. {err}"
    warnings.warn(line, RuntimeWarning, stacklevel=3)
    return line


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k)) for k in columns})
    return path


def _fmt(v: Any) -> Any:
    return f"{v:.4f}" if isinstance(v, float) else v


def write_json(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=str))
    return path


def group_matrix(groups: Sequence[dict[str, Any]], labels: Sequence[str]) -> dict[str, np.ndarray]:
    """``compare`` group-pair rows -> ``[k, k]`` arrays (mean, ci_low, ci_high,
    rejection_rate over decidable pairs, n_pairs, n_undecidable), symmetric, NaN where a
    group pair has no pairs."""
    pos = {g: i for i, g in enumerate(labels)}
    k = len(labels)
    out = {key: np.full((k, k), np.nan) for key in ("mean", "ci_low", "ci_high", "rejection_rate")}
    out["n_pairs"] = np.zeros((k, k), dtype=int)
    out["n_undecidable"] = np.zeros((k, k), dtype=int)
    for g in groups:
        i, j = pos.get(g["group_a"]), pos.get(g["group_b"])
        if i is None or j is None:
            continue
        for a, b in ((i, j), (j, i)):
            out["mean"][a, b] = g["mean_congruity"]
            out["ci_low"][a, b] = g["ci_low"]
            out["ci_high"][a, b] = g["ci_high"]
            out["rejection_rate"][a, b] = g["rejection_rate"]
            out["n_pairs"][a, b] = g["n_pairs"]
            out["n_undecidable"][a, b] = g.get("n_undecidable", 0)
    return out


def matrix_rows(mat: dict[str, np.ndarray], labels: Sequence[str]) -> list[dict[str, Any]]:
    """Long format for CSV / W&B tables: one row per ordered group pair."""
    rows = []
    for i, a in enumerate(labels):
        for j, b in enumerate(labels):
            rows.append(
                {
                    "row": a,
                    "col": b,
                    "mean_congruity": float(mat["mean"][i, j]),
                    "ci_low": float(mat["ci_low"][i, j]),
                    "ci_high": float(mat["ci_high"][i, j]),
                    "rejection_rate": float(mat["rejection_rate"][i, j]),
                    "n_pairs": int(mat["n_pairs"][i, j]),
                }
            )
    return rows


def machine() -> dict[str, Any]:
    import os

    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
    }
