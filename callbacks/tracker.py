"""``EquivalenceTracker``: congruity of the model being trained to reference groups, over training.

``EquivalenceTracker(references, m=40, alpha=0.05, seed=0)``. ``references`` is

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
model's co-implementations (its own correspondence), congruity to every reference
model (:func:`interpeq.equivalence.pairwise_congruity`, the same numbers as
:func:`interpeq.equivalence.congruity`) and per group logs

``equivalence/<group>/congruity`` (mean over the group's models),
``.../congruity_ci_low``, ``.../congruity_ci_high`` (bootstrap CI over the models),
``.../rejection_rate`` and ``.../similarity`` (mean ridge similarity)

to every logger of the trainer, at the trainer's global step (stacked runs with more
than one member: ``equivalence/<member>/<group>/...``, which
:class:`~interpeq.report.members.MemberLoggers` routes to each member's own run). ``tracker.history`` keeps the
curve. At the end of training it logs the final values (the W&B summary; other loggers
a last row, keys ``equivalence_final/...``) and writes ``equivalence_curve.png`` and
``equivalence_curve.json`` into ``save_dir`` (default: the capture's folder), logging
the plot as an image to W&B.

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
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from interpeq.callbacks.background import Jobs
from interpeq.callbacks.capture import ActivationCapture, CaptureRecord, model_configs
from interpeq.callbacks.references import Reference, resolve_references  # noqa: F401
from interpeq.equivalence import (
    DEFAULT_M,
    ModelUnit,
    Unit,
    check_vocab,
    co_implementations,
    compute_unit,
    group_summary,
    pairwise_congruity,
    self_distances,
)
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
        alpha: float = 0.05,
        seed: int = 0,
        one_sided: bool = False,
        n_boot: int = 1000,
        every_n_steps: int = 500,
        capture: ActivationCapture | None = None,
        save_dir: str | Path | None = None,
        plot: bool = True,
        root: str | Path = DEFAULT_ROOT,
        include_unconverged: bool = False,
        background: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"m must be a positive int, got {m!r}")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
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
        self.every_n_steps = every_n_steps
        self.capture = capture
        self._own_capture = False
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self.plot = plot
        self.ref_units: list = []
        self.history: dict[str, dict[str, list[dict[str, float]]]] = {}
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
                    self_distances(u, seed=self.seed)
                    self.ref_units.append(u)

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
    def evaluate(self, record: CaptureRecord) -> dict[str, dict[str, float]]:
        """Per group: congruity mean, CI, rejection rate, mean similarity for one capture."""
        me = Unit(record.member_id, "trained", record.reprs, record.impls)
        units = [me, *self.ref_units]
        rows = pairwise_congruity(
            units,
            [(0, k) for k in range(1, len(units))],
            alpha=self.alpha,
            seed=self.seed,
            one_sided=self.one_sided,
        )
        out = {}
        for group in self.groups:
            rs = [r for r in rows if r["group_b"] == group]
            s = group_summary(rs, n_boot=self.n_boot, seed=self.seed)
            out[group] = {
                "congruity": s.mean_congruity,
                "congruity_ci_low": s.ci_low,
                "congruity_ci_high": s.ci_high,
                "rejection_rate": s.rejection_rate,
                "similarity": sum(r["similarity"] for r in rs) / len(rs),
            }
        return out

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
        if self.background and models and models[0][0] is getattr(pl_module, "net", None):
            models = copy.deepcopy(models)
        tokens = self.capture.probes(pl_module)
        for rec, (model, corr) in zip(records, models, strict=True):
            name = f"equivalence tracking of {rec.member_id!r} at step {rec.step}"
            self.jobs.submit(name, self._analyse, rec, model, corr, tokens, len(records))
        self._take(trainer)

    def _analyse(self, rec: CaptureRecord, model, corr, tokens, n_members: int):
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
                for k, x in v.items():
                    metrics[f"{prefix}{group}/{k}"] = float(x)
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
        from interpeq.report import equivalence_curves, log_image, log_summary, log_table

        final: dict[str, float] = {}
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
        table = [
            [
                member,
                group,
                r["step"],
                r["congruity"],
                r["congruity_ci_low"],
                r["congruity_ci_high"],
                r["rejection_rate"],
                r["similarity"],
            ]  # fmt: skip
            for member, curve in self.history.items()
            for group, rows in curve.items()
            for r in rows
        ]
        for lg in trainer.loggers:
            log_summary(lg, final)
            log_table(
                lg,
                "equivalence/curve",
                [
                    "member",
                    "group",
                    "step",
                    "congruity",
                    "ci_low",
                    "ci_high",
                    "rejection_rate",
                    "similarity",
                ],
                table,
            )
        if self.plot:
            for member, curve in self.history.items():
                name = "equivalence_curve.png" if n == 1 else f"{member}/equivalence_curve.png"
                rows = {
                    g: [
                        {
                            "step": r["step"],
                            "congruity": r["congruity"],
                            "ci_low": r["congruity_ci_low"],
                            "ci_high": r["congruity_ci_high"],
                            "rejection_rate": r["rejection_rate"],
                        }  # fmt: skip
                        for r in rs
                    ]
                    for g, rs in curve.items()
                }
                path = equivalence_curves(rows, out / name, title=f"equivalence curve of {member}")
                for lg in trainer.loggers:
                    log_image(lg, "equivalence/curve_plot" + ("" if n == 1 else f"/{member}"), path)

    def curve(self, member: str | None = None) -> dict[str, list[dict[str, float]]]:
        """The curve of ``member`` (default: the only/first member): ``{group: [rows]}``."""
        if not self.history:
            return {}
        return self.history[member or next(iter(self.history))]
