"""``interpeq reproduce ioi``: interpretive equivalence of pretrained LMs on IOI (docs/method.md section 12).

For every model of the config (default gpt2, gpt2-medium, pythia-160m, pythia-410m):

1. check that each model can be found (its config and tokenizer: local folder, cache or
   hub) before any compute -- otherwise one error line naming the model;
2. draw the IOI prompts once, keeping names that are one token for *every* model;
3. per model (one model in memory at a time): head importance by clean -> corrupted
   patching, the circuit by the config's rule, the representation (last real token,
   accumulated residual stream) and ``m`` co-implementations (non-circuit heads patched
   from the corrupted prompts);
4. the pairwise test over all models (:func:`pairwise_congruity` with the config's
   ``impls``, widths may differ): per pair a decision (rejected / equivalent /
   undecidable), its p-value and the smallest one its nulls could reach; group
   summaries within each family and across families (decision counts, then mean
   congruity beside the paper's 0.92 (GPT-2) / 0.73 (Pythia) / 0.13 (across)); and per
   family the narrow-null diagnostic (:func:`~interpeq.equivalence.groups.null_spread`:
   how far the draws move a model against how far apart the family's models are).

   The default null (``impls: auto``) is calibrated on the spread between a family's
   models and needs at least 4 of them: with the paper's one or two models per family
   every pair is *undecidable* (no evidence either way, and congruity has no null to
   be computed against). The report says so, with how many models per family would
   decide; ``impls: intervention`` opts into the raw resample-patching draws, valid
   only if they move a model at least as far as retraining does (an assumption);
5. the report folder ``<root>/ioi/report/`` (:mod:`interpeq.lm.report`) and a W&B (or CSV)
   run with its figures, tables and summary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from interpeq.console import bars_disabled
from interpeq.equivalence import Unit, group_summary, pairwise_congruity
from interpeq.equivalence.groups import null_spread
from interpeq.lm.adapters import LMAdapter
from interpeq.lm.circuits import (
    co_implementations,
    compare_with_reference,
    head_importance,
    select_circuit,
)
from interpeq.lm.config import IOIConfig, ModelSpec
from interpeq.lm.ioi import IOIPrompts, ioi_prompts, tokenize
from interpeq.lm.loading import FAMILIES, _cache_first, load_pretrained, load_tokenizer


@dataclass
class Resolved:
    """A model that can be loaded: its spec, tokenizer and family (the comparison group)."""

    spec: ModelSpec
    tokenizer: Any
    family: str
    config: Any


def resolve(spec: ModelSpec) -> Resolved:
    """Find ``spec``'s config and tokenizer (no weights yet): a ``ValueError`` line if not."""
    from transformers import AutoConfig

    config = _cache_first(
        spec.source, lambda local: AutoConfig.from_pretrained(spec.source, local_files_only=local)
    )
    if config.model_type not in FAMILIES:
        raise ValueError(
            f"model {spec.source!r}: model_type {config.model_type!r} is not supported "
            f"(supported: {sorted(FAMILIES)})"
        )
    family = spec.family or FAMILIES[config.model_type].name
    return Resolved(spec, load_tokenizer(spec.source), family, config)


def is_gpt2_small(r: Resolved) -> bool:
    """Is this GPT-2 small (the model of the reference circuit)?"""
    c = r.config
    dims = (c.model_type, c.num_hidden_layers, c.num_attention_heads, c.hidden_size)
    return r.spec.source == "gpt2" or dims == ("gpt2", 12, 12, 768)


def run_model(r: Resolved, prompts: IOIPrompts, cfg: IOIConfig, *, progress: bool):
    """One model: ``(Unit, circuit info)``; the model is freed when this returns."""
    model, _ = load_pretrained(r.spec.source)
    adapter = LMAdapter(model, r.tokenizer, name=r.spec.id, device=cfg.device)
    batch = tokenize(prompts, r.tokenizer, prepend_bos=cfg.prepend_bos)
    start = time.perf_counter()
    imp = head_importance(
        adapter, batch, cfg.circuit.metric, batch_size=cfg.batch_size, progress=progress
    )
    rule = cfg.circuit
    circuit = select_circuit(imp.importance, rule.rule, fraction=rule.fraction, k=rule.k)
    opts = {"apply_ln": cfg.apply_ln, "batch_size": cfg.batch_size}
    reprs = adapter.representations(batch.clean, batch.mask, **opts)
    impls = co_implementations(
        adapter, batch, circuit, cfg.m, cfg.seed, p_include=cfg.p_include, progress=progress, **opts
    )
    info = {
        "id": r.spec.id,
        "source": r.spec.source,
        "family": r.family,
        "n_layers": adapter.n_layers,
        "n_heads": adapter.n_heads,
        "d_model": adapter.d_model,
        "metric": imp.metric,
        "baseline": imp.baseline,
        "clean": imp.clean,
        "scores": imp.scores.tolist(),
        "importance": imp.importance.tolist(),
        "circuit": [f"{c.layer}.{c.head}" for c in circuit],
        "circuit_rule": {"rule": rule.rule, "fraction": rule.fraction, "k": rule.k},
        "seconds": round(time.perf_counter() - start, 2),
    }
    if is_gpt2_small(r):
        info["gpt2_reference"] = compare_with_reference(circuit)
    meta = {"family": r.family, "n_circuit": len(circuit), "source": r.spec.source}
    unit = Unit(r.spec.id, r.family, reprs.cpu(), impls.cpu(), meta)
    del adapter, model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # one model on the GPU at a time
    return unit, info


def summaries(
    pairs: list[dict], families: list[str], seed: int, units: list[Unit] | None = None
) -> dict[str, Any]:
    """Group summaries: each family pair ``"a~b"`` and the headline within/across
    (decision counts, rejection rate of the decidable pairs, mean congruity); with
    ``units``, ``null_spread``: each family's narrow-null diagnostic, from the pairs'
    similarities (no new fit), because a raw null narrower than the spread between a
    family's models rejects equivalent ones."""
    out: dict[str, Any] = {"groups": {}}
    for i, a in enumerate(families):
        for b in families[i:]:
            rows = [p for p in pairs if {p["group_a"], p["group_b"]} == {a, b}]
            if rows:
                out["groups"][f"{a}~{b}"] = group_summary(rows, seed=seed).to_dict()
    heads = {
        f"within_{f}": [p for p in pairs if p["group_a"] == p["group_b"] == f] for f in families
    }
    heads["across"] = [p for p in pairs if p["group_a"] != p["group_b"]]
    out["headline"] = {k: group_summary(v, seed=seed).to_dict() for k, v in heads.items() if v}
    if units is not None:
        pos = {u.id: k for k, u in enumerate(units)}
        sims = {(pos[p["a"]], pos[p["b"]]): p["similarity"] for p in pairs}
        out["null_spread"] = {s.group: s.to_dict() for s in null_spread(units, sims, seed=seed)}
    return out


def run_ioi(
    cfg: IOIConfig, root: str | Path = "checkpoints", *, logger: str = "wandb", progress=True
) -> dict[str, Any]:
    """The whole study (module doc); returns the summary written to ``summary.json``."""
    from interpeq.lm.report import write_report

    start = time.perf_counter()
    resolved = [resolve(s) for s in cfg.model_specs()]
    prompts = ioi_prompts(
        cfg.n_prompts, cfg.seed, [r.tokenizer for r in resolved], corruption=cfg.corruption
    )
    print(prompts.summary())
    units, infos = [], []
    for r in tqdm(resolved, desc="models", disable=bars_disabled(progress)):
        unit, info = run_model(r, prompts, cfg, progress=progress)
        units.append(unit)
        infos.append(info)
    pairs = pairwise_congruity(
        units, alpha=cfg.alpha, seed=cfg.seed, impls=cfg.impls, progress=progress
    )
    families = list(dict.fromkeys(r.family for r in resolved))
    groups = summaries(pairs, families, cfg.seed, units)
    out = Path(root) / "ioi" / "report"
    return write_report(
        out,
        cfg=cfg,
        resolved=resolved,
        prompts=prompts,
        units=units,
        infos=infos,
        pairs=pairs,
        groups=groups,
        logger=logger,
        seconds=time.perf_counter() - start,
    )
