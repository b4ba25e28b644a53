"""``EquivalenceTracker``: congruity of the model being trained to reference groups, over training.

``EquivalenceTracker(references, m=40, alpha=0.05, seed=0, impls="auto")``. ``references`` is

* a mapping ``{group name: spec}``, or a spec / list of specs (then each reference
  model's group is its task name); the forms of a spec are those of
  :mod:`interpeq.callbacks.references` (members, zoos, folders, zoo names with a
  ``:task=...,setting=...,seed=...`` selector, dicts, ``(model, correspondence)``).
  Members flagged ``converged: false`` are left out unless ``include_unconverged``.

Paths and zoo names are resolved when the tracker is built (a missing path is an
error before anything trains). At ``setup`` (still before training) the references are
checked against the trained model (same vocabulary and context length, else an error)
and their representations and ``m`` co-implementations on the capture's probe set are
computed once, with their co-implementation distances.

At each capture of the :class:`ActivationCapture` in the trainer's callbacks (one is
created with ``every_n_steps`` when there is none) the tracker computes the trained
model's congruity to every reference model through
:func:`interpeq.equivalence.pairwise_congruity` and per group logs

``equivalence/<group>/rejected``, ``.../equivalent``, ``.../undecidable`` (how many of
the group's references each decision went to), ``.../min_p_value`` (the smallest
p-value any pair could reach), ``.../congruity`` (mean over the group's models),
``.../congruity_ci_low``, ``.../congruity_ci_high`` (bootstrap CI over the models),
``.../rejection_rate`` (rejected / decidable pairs: NaN when none is decidable, never
a "0" that reads as equivalence) and ``.../similarity`` (mean ridge similarity)

to every logger of the trainer, at the trainer's global step (stacked runs with more
than one member: ``equivalence/<member>/<group>/...``, which
:class:`~interpeq.report.members.MemberLoggers` routes to each member's own run). ``tracker.history`` keeps the
curve, with each group's ``decision`` (its pairs' majority outcome, ``"undecidable"``
when no pair could be decided) and ``null`` (the null of the references' side). At the end of training it logs the final values (the W&B summary; other loggers
a last row, keys ``equivalence_final/...``) and writes ``equivalence_curve.png``,
``equivalence_curve.json`` and ``equivalence_curve.csv`` (one row per member, group and
capture, with a ``decision`` column; :mod:`interpeq.callbacks.curves`) into
``save_dir`` (default: the capture's folder), logging the plot as an image and the
table to W&B.

**Which null** (``impls``, as in :func:`~interpeq.equivalence.pairwise_congruity`):
the trained model is alone in its group, so under the default calibrated null
(``"auto"``, :mod:`interpeq.equivalence.nulls`) only the references' side can reject:
each reference's draws are rescaled to the spread between the members of its group,
which needs at least ``MIN_MEMBERS`` (4) references in the group. Against a smaller
group every pair is *undecidable* (not evidence of equivalence; said once per run by a
warning naming the groups). The trained model's own co-implementations are then never
used, so they are not computed. ``impls="intervention"`` uses both sides' raw
resample-patched draws: valid only if they move a model at least as far as retraining
does, an assumption the user makes. ``"training"`` needs a group of the trained model
with other members and is refused. The references' similarities to each other (what
the calibration reads) do not change during training: they are computed once and
cached on the tracker.

**Beside training** (``background=True``, the default): that work reads a snapshot of
each member taken at the capture, so a worker thread
(:class:`~interpeq.callbacks.background.Jobs`) does it while training goes on; the
results are logged from the training thread at the next batch, at the step they were
captured (W&B's x-axis is ``trainer/global_step``), and all of them before training
ends. The numbers are those of ``background=False`` (inline, training waits), bit for
bit. A failed analysis stops training with an error naming the member and step; an
interrupted run keeps (and logs) the captures already analysed and says how many were
dropped.

**DDP**: everything runs on **global rank 0 only**: the references' representations
and co-implementations at ``setup``, the congruity at each capture (it works on the
capture's records, which only rank 0 makes; its worker thread too), the final
summary, table and plot. None of it is a collective (plain tensor maths and the
loggers' own calls, which Lightning makes rank-zero-only; ``pl_module.log`` is never
used, so no ``sync_dist`` reduction can be waited for inside a rank-0 branch), so
other ranks never block on it. One
W&B run and one CSV file result. Logging never raises.
"""

from __future__ import annotations

import copy
import json
import math
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from interpeq.callbacks.background import Jobs
from interpeq.callbacks.capture import ActivationCapture, CaptureRecord, model_configs
from interpeq.callbacks.curves import (
    COLUMNS,
    decision_curves,
    group_values,
    numeric,
    table_rows,
    write_csv,
)
from interpeq.callbacks.references import resolve_references
from interpeq.equivalence import (
    ModelUnit,
    Unit,
    check_vocab,
    co_implementations,
    compute_unit,
    pairwise_congruity,
    self_distances,
)
from interpeq.equivalence.defaults import DEFAULT_ALPHA, DEFAULT_M, DEFAULT_N_BOOT
from interpeq.equivalence.nulls import MIN_MEMBERS, min_p_value
from interpeq.equivalence.pairwise import check_test_options, cross_similarities
from interpeq.zoo.store import DEFAULT_ROOT


@dataclass
class _Cfg:
    """A model config in the shape :func:`check_vocab` reads (``.cfg``)."""

    cfg: Any


class EquivalenceTracker(Callback):
    """Log the equivalence curve of the model being trained; see the module doc."""

    def __init__(
        self,
        references: Any,
        *,
        m: int = DEFAULT_M,
        alpha: float = DEFAULT_ALPHA,
        seed: int = 0,
        one_sided: bool = False,
        impls: str = "auto",
        n_boot: int = DEFAULT_N_BOOT,
        every_n_steps: int = 500,
        capture: ActivationCapture | None = None,
        save_dir: str | Path | None = None,
        plot: bool = True,
        root: str | Path = DEFAULT_ROOT,
        include_unconverged: bool = False,
        background: bool = True,
    ) -> None:
        super().__init__()
        check_test_options(alpha, impls, m)
        if impls == "training":
            raise ValueError(
                "impls='training' ranks a pair among other members of each side's group, "
                "and the trained model is alone in its group; use impls='auto' (the "
                "calibrated null) or 'intervention'"
            )
        if (
            isinstance(every_n_steps, bool)
            or not isinstance(every_n_steps, int)
            or every_n_steps <= 0
        ):
            raise ValueError(f"every_n_steps must be a positive int, got {every_n_steps!r}")
        self.groups = resolve_references(references, root, include_unconverged=include_unconverged)
        self.m, self.alpha, self.seed, self.one_sided, self.n_boot = (
            m,
            alpha,
            seed,
            one_sided,
            n_boot,
        )
        self.impls = impls
        self.trained_group = "trained"  # the trained model's group: alone, named apart
        while self.trained_group in self.groups:
            self.trained_group = f"_{self.trained_group}"
        self.every_n_steps = every_n_steps
        self.capture = capture
        self._own_capture = False
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self.plot = plot
        self.ref_units: list = []
        self._ref_sims: dict[tuple[int, int], float] = {}  # (ref k, ref q) -> similarity
        self._ridge: dict[str, Any] = {}  # the ridge engine on the training GPU, if any
        self._sims_lock = threading.Lock()  # the worker thread fills the cache
        self._warned = False
        self.history: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.background = bool(background)
        self.jobs = Jobs(background=self.background)

    # -- setup: find the capture, check and precompute the references ---------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if self.capture is None:
            found = [c for c in trainer.callbacks if isinstance(c, ActivationCapture)]
            if found:
                self.capture = found[0]
            else:
                self.capture = ActivationCapture(self.every_n_steps, save_dir=self.save_dir)
                self._own_capture = True
        if self._own_capture:
            self.capture.setup(trainer, pl_module, stage)
        self.capture.add_listener(self._on_capture)
        tokens = self.capture.probes(pl_module)
        trained = [("the trained model", _Cfg(cfg)) for cfg in model_configs(pl_module)]
        # two captures of every member may wait for the worker; then training waits
        self.jobs = Jobs(background=self.background, max_pending=2 * len(trained))
        for group, refs in self.groups.items():
            for r in refs:
                label = f"reference {r.id!r} (group {group!r}, task {r.task})"
                for me in trained:
                    check_vocab([me, (label, r.model)], tokens, outputs=True)
        if trainer.is_global_zero and not self.ref_units:
            device = trainer.strategy.root_device  # the training device (auto: GPU if any)
            self._ridge = {"device": device} if device.type == "cuda" else {}
            for group, refs in self.groups.items():
                for r in refs:
                    u = compute_unit(
                        ModelUnit(
                            r.id, group, [r.model.to(device)], [r.correspondence], [r.task or group]
                        ),
                        tokens.to(device),
                        self.m,
                        self.seed,
                    )
                    self_distances(u, seed=self.seed, **self._ridge)
                    self.ref_units.append(u)
        if trainer.is_global_zero:
            self._warn_undecidable()

    def _warn_undecidable(self) -> None:
        """Once per run: the reference groups no decision can be made against."""
        if self._warned:
            return
        self._warned = True
        if min_p_value([self.m]) > self.alpha:
            warnings.warn(
                f"equivalence tracking: with m = {self.m} co-implementations the smallest "
                f"p-value is {min_p_value([self.m]):.3g} > alpha = {self.alpha}: every "
                f"decision is undecidable; use m >= {math.ceil(2 / self.alpha) - 1} or a "
                "larger alpha",
                RuntimeWarning,
                stacklevel=2,
            )
        small = [f"{g} ({len(r)})" for g, r in self.groups.items() if len(r) < MIN_MEMBERS]
        if self.impls == "auto" and small:
            warnings.warn(
                f"equivalence tracking: no calibrated null: decisions against "
                f"{', '.join(small)} are undecidable; give at least {MIN_MEMBERS} reference "
                "models per group, or impls='intervention' if its draws are known to be "
                "wide enough",
                RuntimeWarning,
                stacklevel=2,
            )

    # forward the capture's hooks when the tracker made its own
    def on_train_start(self, trainer, pl_module) -> None:
        if self._own_capture:
            self.capture.on_train_start(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._own_capture:
            self.capture.on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self._take(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._own_capture:
            self.capture.on_train_epoch_end(trainer, pl_module)

    # -- each capture -------------------------------------------------------------
    def evaluate(self, record: CaptureRecord) -> dict[str, dict[str, Any]]:
        """Per group, for one capture: the decisions (rejected / equivalent / undecidable
        counts, the majority ``decision``, the references' ``null``, ``min_p_value``),
        then congruity mean and CI, rejection rate (of decidable pairs) and similarity."""
        units = [self._trained_unit(record), *self.ref_units]
        rows = pairwise_congruity(
            units,
            [(0, k) for k in range(1, len(units))],
            alpha=self.alpha,
            seed=self.seed,
            one_sided=self.one_sided,
            impls=self.impls,
            cross=self._cross,
            **self._ridge,
        )
        return {
            group: group_values(
                [r for r in rows if r["group_b"] == group], n_boot=self.n_boot, seed=self.seed
            )
            for group in self.groups
        }

    def _trained_unit(self, record: CaptureRecord) -> Unit:
        """The trained model as a unit of its own group. Under the calibrated null that
        group (one model) has no null, so its draws are never read: a record without
        them gets an empty stand-in of the right count, and no distances are computed."""
        impls = record.impls
        if self.impls == "auto":
            if impls is None:
                impls = record.reprs.new_empty((self.m, 0, 0))
            unit = Unit(record.member_id, self.trained_group, record.reprs, impls)
            unit.self_d = torch.empty(0, dtype=torch.float64)
            return unit
        return Unit(record.member_id, self.trained_group, record.reprs, impls)

    def _cross(self, units, pairs, *, seed: int = 0, **ridge: Any):
        """:func:`cross_similarities` with the reference-to-reference similarities
        cached: they do not change during training (``units[0]`` is the trained model,
        ``units[k]`` the reference ``k - 1``), so only the trained model's pairs are
        computed at each capture; the rest once per run."""
        pairs = [(int(i), int(j)) for i, j in pairs]
        key = {p: (min(p) - 1, max(p) - 1) for p in pairs if 0 not in p}
        with self._sims_lock:
            missing = list(dict.fromkeys(p for p, k in key.items() if k not in self._ref_sims))
            if missing:
                sims = cross_similarities(units, missing, seed=seed, **ridge)
                for p, v in zip(missing, sims.tolist(), strict=True):
                    self._ref_sims[key[p]] = v
            cached = {p: self._ref_sims[k] for p, k in key.items()}
        mine = [p for p in pairs if 0 in p]
        got = cross_similarities(units, mine, seed=seed, **ridge).tolist() if mine else []
        got = dict(zip(mine, got, strict=True))
        return torch.tensor([got[p] if 0 in p else cached[p] for p in pairs], dtype=torch.float64)

    def _prefix(self, member_id: str, n_members: int) -> str:
        return "equivalence/" if n_members == 1 else f"equivalence/{member_id}/"

    def _on_capture(
        self, trainer: L.Trainer, pl_module: L.LightningModule, records: list[CaptureRecord]
    ) -> None:
        """Queue one job per member: its co-implementations and congruity at this step.

        A job reads a snapshot of the member (a stacked module's members are unstacked
        copies already; a single model is copied when the job runs beside training), so
        training may go on while it runs."""
        models = self.capture.latest_models
        copy_needed = self.background and self.impls != "auto"  # auto never reads the model
        if copy_needed and models and models[0][0] is getattr(pl_module, "net", None):
            models = copy.deepcopy(models)
        tokens = self.capture.probes(pl_module)
        for rec, (model, corr) in zip(records, models, strict=True):
            name = f"equivalence tracking of {rec.member_id!r} at step {rec.step}"
            self.jobs.submit(name, self._analyse, rec, model, corr, tokens, len(records))
        self._take(trainer)

    def _analyse(self, rec: CaptureRecord, model, corr, tokens, n_members: int):
        impls = None  # the calibrated null never reads the trained model's draws
        if self.impls != "auto":
            device = next(model.parameters()).device
            impls = co_implementations(
                model, corr, tokens.to(device), self.m, self.seed, **self.capture.repr_kwargs
            ).cpu()
        full = CaptureRecord(rec.run_id, rec.member_id, rec.step, rec.epoch, rec.reprs, impls)
        return rec.member_id, rec.step, n_members, self.evaluate(full)

    def _take(self, trainer: L.Trainer, *, wait: bool = False) -> None:
        """Record and log the finished jobs' results (from the training thread), each at
        the step it was captured."""
        while results := self.jobs.ready(wait=wait):
            self._record(trainer, results)
            if not wait:
                break

    def _record(self, trainer: L.Trainer, results: list) -> None:
        from interpeq.report import log_metrics

        for member, step, n_members, values in results:
            curve = self.history.setdefault(member, {})
            prefix = self._prefix(member, n_members)
            metrics: dict[str, float] = {}
            for group, v in values.items():
                curve.setdefault(group, []).append({"step": step, **v})
                for k, x in numeric(v).items():  # the decision's name is in the table
                    metrics[f"{prefix}{group}/{k}"] = x
            log_metrics(trainer.loggers, metrics, step=step)

    @property
    def seconds(self) -> float:
        """Time spent in the tracker's jobs (in the worker thread when ``background``)."""
        return self.jobs.seconds

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exc) -> None:
        """Keep the curve computed so far; drop the captures not yet analysed, saying so."""
        dropped = self.jobs.cancel()
        try:
            self._take(trainer, wait=True)
        except Exception as err:  # the training error is the one to raise
            warnings.warn(f"equivalence tracking: {err}", RuntimeWarning, stacklevel=2)
        self.jobs.close()
        if dropped:
            warnings.warn(
                f"equivalence tracking: training stopped ({type(exc).__name__}); {dropped} "
                "member capture(s) were not analysed (their representations are in the "
                "captures folder)",
                RuntimeWarning,
                stacklevel=2,
            )

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.jobs.close()

    # -- the end --------------------------------------------------------------------
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._own_capture:
            self.capture.on_train_end(trainer, pl_module)
        else:
            self.capture.capture(trainer, pl_module)  # no-op when this step was captured
        self._take(trainer, wait=True)
        self.jobs.close()
        if not trainer.is_global_zero or not self.history:
            return
        from interpeq.report import log_summary, log_table

        final: dict[str, Any] = {}
        n = len(self.history)
        for member, curve in self.history.items():
            prefix = self._prefix(member, n).replace("equivalence/", "equivalence_final/", 1)
            for group, rows in curve.items():
                for k, v in rows[-1].items():
                    if k != "step":
                        final[f"{prefix}{group}/{k}"] = v
        out = self.save_dir or self.capture.out_dir(trainer)
        out.mkdir(parents=True, exist_ok=True)
        (out / "equivalence_curve.json").write_text(json.dumps(self.history, indent=1))
        if n > 1:  # a stacked run: each member's curve also in a folder of its own
            for member, curve in self.history.items():
                (out / member).mkdir(exist_ok=True)
                (out / member / "equivalence_curve.json").write_text(json.dumps(curve, indent=1))
        table = table_rows(self.history)
        write_csv(out / "equivalence_curve.csv", table)
        for lg in trainer.loggers:
            log_summary(lg, final)
            log_table(lg, "equivalence/curve", COLUMNS, table)
        if self.plot:
            self._plot(trainer, out)

    def _plot(self, trainer: L.Trainer, out: Path) -> None:
        """Each member's curve, decisions marked (:func:`decision_curves`), logged as an image."""
        from interpeq.report import log_image

        n = len(self.history)
        for member, curve in self.history.items():
            name = "equivalence_curve.png" if n == 1 else f"{member}/equivalence_curve.png"
            path = decision_curves(curve, out / name, title=f"equivalence curve of {member}")
            for lg in trainer.loggers:
                log_image(lg, "equivalence/curve_plot" + ("" if n == 1 else f"/{member}"), path)

    def curve(self, member: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """The curve of ``member`` (default: the only/first member): ``{group: [rows]}``."""
        if not self.history:
            return {}
        return self.history[member or next(iter(self.history))]
