"""Train many same-architecture members as one stacked model (one batched step for all members).

Members' parameters are stacked along a leading member axis
(``torch.func.stack_module_state``). By default one hand-batched step
(:func:`interpeq.training.fused.fused_siit_step`: explicit ``bmm`` over the member
axis) runs SIIT for every member at once; ``impl="vmap"`` instead vmaps a
``functional_call`` of a template model running :func:`siit_forward` (the
reference). Correspondences differ per member only through the per-row ``select``
masks over the full component list, so one function serves all.

Each member keeps its own init seed, data stream (the same stream ``fit_member``
would draw, from its ``TrainConfig.seed``), task and correspondence. AdamW is
elementwise, so summing member losses and stepping one optimiser over the stacked
parameters is exactly per-member AdamW; gradient clipping is applied per member.
Members must share every training hyper-parameter except ``seed`` and the loss
weights. Training stops when every member meets the thresholds (or ``max_steps``);
members that pass early keep training until then.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap
from torch.utils.data import DataLoader
from torchmetrics import Metric

from interpeq.models import HookedTransformer, HookedTransformerConfig
from interpeq.training import datamodule as data
from interpeq.training.config import resolve_task
from interpeq.training.correspondence import Correspondence
from interpeq.training.datamodule import SIITSampler, _Stream, check_world, shard_batch
from interpeq.training.fit import FitResult, evaluate, load_checkpoint, trainer_for, training_device
from interpeq.training.fused import (
    PARTS,
    CompiledStep,
    component_masks,
    fused_siit_step,
    member_hits,
)
from interpeq.training.siit import METRICS, SIITModule, TrainClock, _thresholds_met, siit_forward

Member = tuple  # (task, correspondence, train) or (task, correspondence, train, model_config)


class VectorMean(Metric):
    """Per-member mean of values ``[members, n]`` (synchronised across processes)."""

    def __init__(self, members: int) -> None:
        super().__init__()
        self.add_state("total", torch.zeros(members, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros(members, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, values: Tensor, count: Tensor | None = None) -> None:
        """Add values ``[members, n]``; or, with ``count``, per-member sums ``[members]``
        already reduced over ``count`` values each (one op for all members, no
        boolean-mask indexing per member; sums of 0/1 values are exact, so the mean is
        the one the values would give)."""
        if count is None:
            self.total += values.flatten(1).sum(1).double()
            self.count += values.flatten(1).shape[1]
        else:
            self.total += values.double()
            self.count += count.double()

    def compute(self) -> Tensor:
        return (self.total / self.count.clamp(min=1)).float()


def _member_configs(members: Sequence[Member], model: HookedTransformerConfig):
    tasks, corrs, trains, cfgs = [], [], [], []
    for i, member in enumerate(members):
        if len(member) not in (3, 4):
            raise ValueError(
                f"member {i}: expected (task, correspondence, train[, model_config]), got {len(member)} items"
            )
        task, corr, train = member[:3]
        cfg = member[3] if len(member) == 4 else model.replace(seed=train.seed)
        if not cfg.same_architecture(model):
            raise ValueError(
                f"member {i}: architecture {cfg.to_dict()} differs from the stack's {model.to_dict()}"
            )
        tasks.append(task)
        corrs.append(corr if isinstance(corr, Correspondence) else Correspondence(corr))
        trains.append(train)
        cfgs.append(cfg)
    if not members:
        raise ValueError("fit_stacked needs at least one member")
    shared = [t.replace(seed=0, behaviour_weight=1, iit_weight=1, strict_weight=1) for t in trains]
    bad = [i for i, s in enumerate(shared) if s != shared[0]]
    if bad:
        raise ValueError(
            f"members {bad} differ from member 0 in training hyper-parameters other than seed/loss weights; "
            "stack only members that share them"
        )
    return tasks, corrs, trains, cfgs


IMPLS = ("fused", "vmap")


class StackedSIITModule(TrainClock, L.LightningModule):
    """SIIT for ``M`` members at once; member ``m``'s weights are ``param[m]``.

    ``impl="fused"`` (default) runs :func:`interpeq.training.fused.fused_siit_step`
    (explicit batched matmuls over the member axis); ``impl="vmap"`` runs
    :func:`siit_forward` under ``torch.func.vmap`` of a ``functional_call`` (the
    reference; both give the same losses to float rounding). ``compile_mode`` runs the
    fused step under ``torch.compile`` in that mode (:class:`~interpeq.training.fused.CompiledStep`).
    """

    def __init__(
        self,
        members: Sequence[Member],
        model: HookedTransformerConfig,
        impl: str = "fused",
        compile_mode: str | None = None,
    ):
        super().__init__()
        if impl not in IMPLS:
            raise ValueError(f"unknown impl {impl!r}; choose one of {IMPLS}")
        if compile_mode is not None and impl != "fused":
            raise ValueError(
                f"compile_mode needs impl='fused' (the vmap reference runs eagerly), got {impl!r}"
            )
        self.impl = impl
        self.fused_step = CompiledStep(compile_mode) if compile_mode else fused_siit_step
        self.tasks, self.corrs, self.trains, self.cfgs = _member_configs(members, model)
        self.train_cfg = self.trains[0]
        self.n_members = len(self.cfgs)
        self.samplers = [
            SIITSampler(resolve_task(t), cfg, c, tr)
            for t, cfg, c, tr in zip(self.tasks, self.cfgs, self.corrs, self.trains, strict=True)
        ]
        nets = [HookedTransformer(cfg) for cfg in self.cfgs]
        params, buffers = stack_module_state(nets)
        self.names = list(params)
        self.stacked = nn.ParameterList(
            [nn.Parameter(params[n].detach().clone()) for n in self.names]
        )
        for i, (_name, buf) in enumerate(nets[0].named_buffers()):
            self.register_buffer(f"buf{i}", buf.clone(), persistent=False)
        self.buffer_names = [name for name, _ in nets[0].named_buffers()]
        self.template = [copy.deepcopy(nets[0]).to("meta")]  # a list: not a submodule
        self.components = nets[0].components()
        self.arch = self.cfgs[0]
        for name, mask in zip(
            ("head_map", "mlp_map"), component_masks(self.components, self.arch), strict=True
        ):
            self.register_buffer(name, mask, persistent=False)
        self.register_buffer(
            "weights",
            torch.tensor(
                [[t.behaviour_weight, t.iit_weight, t.strict_weight] for t in self.trains]
            ),
            persistent=False,
        )
        self.train_acc = VectorMean(self.n_members)
        self.val_metrics = nn.ModuleDict(
            {m + s: VectorMean(self.n_members) for m in METRICS for s in ("", "_seq")}
        )
        self.train_seconds = 0.0
        self._t0: float | None = None
        self.start_step = 0

    # ---- the vmapped step ----------------------------------------------------
    def _buffer_state(self) -> dict[str, Tensor]:
        return {name: getattr(self, f"buf{i}") for i, name in enumerate(self.buffer_names)}

    def _step(self, batch: dict[str, Tensor], eager: bool = False) -> dict[str, Tensor]:
        """One SIIT forward of every member; ``eager`` skips the compiled step (validation
        runs a few batches per interval: a second graph would cost more than it saves)."""
        if self.impl == "fused":
            params = dict(zip(self.names, self.stacked, strict=True))
            masks = (self.head_map, self.mlp_map)
            step = fused_siit_step if eager else self.fused_step
            return step(params, batch, self.arch, masks, self.weights)
        net = self.template[0]
        buffers = self._buffer_state()

        def member(
            params: tuple[Tensor, ...], b: dict[str, Tensor], w: Tensor
        ) -> dict[str, Tensor]:
            state = {**dict(zip(self.names, params, strict=True)), **buffers}

            def run(x: Tensor) -> Tensor:
                return functional_call(net, state, (x,))

            return siit_forward(net, run, b, self.components, w)

        return vmap(member)(tuple(self.stacked), batch, self.weights)

    def member_state_dict(self, m: int) -> dict[str, Tensor]:
        """Member ``m``'s weights as an ordinary ``HookedTransformer`` state dict."""
        return {n: p[m].detach().clone() for n, p in zip(self.names, self.stacked, strict=True)}

    def unstack(self) -> list[HookedTransformer]:
        out = []
        for m, cfg in enumerate(self.cfgs):
            net = HookedTransformer(cfg)
            net.load_state_dict(self.member_state_dict(m))
            out.append(net.to(self.device))
        return out

    # ---- Lightning -------------------------------------------------------------
    # Logged keys: per member ``<key>/m<k>`` with the keys a member trained alone logs
    # (:class:`~interpeq.report.members.MemberLoggers` gives each member its own run),
    # and the group's aggregates under ``stack/``.
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self._step(batch)
        self.last_losses = {k: v.detach() for k, v in out.items() if k.startswith("loss")}
        hits, valid, _ = member_hits(out["preds_behaviour"], batch["labels"])
        self.train_acc.update(hits, valid)
        return out["loss"].sum()

    def logging_step(self) -> bool:
        """Whether Lightning hands this step's logged values to the loggers (every
        ``log_every_n_steps``-th step, the last one, ``fast_dev_run``). Per-member scalars
        are logged only then: ``5 M`` ``self.log`` calls a step would make the training
        thread, not the device, the bottleneck of a wide stack on a GPU."""
        trainer = self._trainer
        if trainer is None:
            return False
        return bool(trainer._logger_connector.should_update_logs or trainer.fast_dev_run)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        acc = self.train_acc.compute()
        self.train_acc.reset()
        if not self.logging_step():
            return
        losses = {f"train/loss_{part}": self.last_losses[f"loss_{part}"] for part in PARTS}
        losses["train/loss"] = self.last_losses["loss"]
        losses["train/acc"] = acc
        stack = {"stack/train_loss": self.last_losses["loss"].mean(), "stack/train_acc": acc.mean()}
        self._emit(losses, stack, prog_bar=("stack/train_loss",))

    def _emit(
        self, members: dict[str, Tensor], stack: dict[str, Tensor], prog_bar: Sequence[str] = ()
    ) -> None:
        """Log ``<key>/m<k>`` for every member and the ``stack/`` aggregates, from one
        host copy of all of them (one device sync).

        Why not ``self.log`` per member: Lightning's ``log`` costs ~0.1-0.7 ms of Python
        per call (it re-moves its result object to the value's device), ``5 M`` calls
        per logging step at ``M = 256``; and every logged device tensor is a sync when
        converted. So the member values go to the loggers in one ``log_metrics`` call
        (the same keys, values, step and ``epoch`` as Lightning's own call) and into
        ``callback_metrics`` (what :class:`ThresholdStopping` and the progress bar read);
        the aggregates are ``self.log``-ged as host tensors with ``logger=False`` (they
        ride in that same call), so Lightning logs no second row.
        """
        trainer = self.trainer
        keys = [f"{k}/m{m}" for k, v in members.items() for m in range(len(v))] + list(stack)
        flat = torch.cat([v.detach().float().flatten() for v in members.values()]
                         + [v.detach().float().reshape(1) for v in stack.values()])  # fmt: skip
        host = flat.cpu()
        for key, value in zip(keys[len(keys) - len(stack) :], host[-len(stack) :], strict=True):
            self.log(key, value, logger=False, prog_bar=key in prog_bar)
        if trainer.sanity_checking:
            return
        connector = trainer._logger_connector
        connector._callback_metrics.update(zip(keys, host.unbind(), strict=True))
        connector.log_metrics(dict(zip(keys, host.tolist(), strict=True)))

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        out = self._step(batch, eager=True)
        targets = {
            "acc": batch["labels"],
            "iia": batch["iit_labels"],
            "strict_acc": batch["labels"],
        }
        for metric, part in zip(METRICS, PARTS, strict=True):
            hits, valid, rows = member_hits(out[f"preds_{part}"], targets[metric])
            self.val_metrics[metric].update(hits, valid)
            self.val_metrics[metric + "_seq"].update(rows)

    def on_validation_epoch_end(self) -> None:
        values = {}
        for name, metric in self.val_metrics.items():
            values[f"val/{name}"] = metric.compute()
            metric.reset()
        worst = {f"stack/val_{name}_min": values[f"val/{name}"].min() for name in METRICS}
        self._emit(values, worst)

    def thresholds_met(self, metrics: dict[str, Tensor]) -> bool:
        return self.members_meeting_thresholds(metrics) == self.n_members

    def members_meeting_thresholds(self, metrics: dict[str, Tensor]) -> int:
        return sum(_thresholds_met(t, metrics, f"/m{m}") for m, t in enumerate(self.trains))

    def configure_optimizers(self) -> Any:
        t = self.train_cfg
        opt = torch.optim.AdamW(self.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, t.lr_factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_before_optimizer_step(self, optimizer) -> None:
        clip = self.train_cfg.grad_clip
        if not clip:
            return
        grads = [p.grad for p in self.stacked if p.grad is not None]
        norms = torch.stack([g.pow(2).flatten(1).sum(1) for g in grads]).sum(0).sqrt()  # [members]
        coef = (clip / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view(-1, *([1] * (g.ndim - 1))))

    # ---- data (the module is its own data source: one stream per member) -----
    def train_batch(self, step: int) -> dict[str, Tensor]:
        """Each member's global batch ``step``; under DDP this rank's rows of it
        (:func:`~interpeq.training.datamodule.shard_batch`), as ``fit_member`` shards."""
        t = self._trainer
        rank, world = (t.global_rank, t.world_size) if t is not None else (0, 1)
        drawn = [s.draw_train(step) for s in self.samplers]
        batches = data.label_batches(self.samplers, drawn)  # once per task, not per member
        return _stack([shard_batch(b, rank, world) for b in batches])

    def train_dataloader(self) -> DataLoader:
        """A stack of ``data.WORKER_FROM`` or more members draws its batches in worker
        processes (:func:`~interpeq.training.datamodule.data_workers`): drawing is Python
        on CPU generators, in the training thread it would cap a GPU's step rate. Workers
        take steps in turn: the same batches in the same order as without them."""
        world = self.trainer.world_size
        check_world(self.train_cfg, world)
        workers = data.data_workers(self.n_members, world)
        return DataLoader(
            _Stream(self), batch_size=None, num_workers=workers,
            prefetch_factor=4 if workers else None,
            pin_memory=workers > 0 and self.device.type == "cuda",
        )  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        sets = [s.fixed_set(s.train.val_size, "val") for s in self.samplers]
        return DataLoader(
            [_stack(list(b)) for b in zip(*sets, strict=True)], batch_size=None, num_workers=0
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["interpeq_data_step"] = self.trainer.global_step

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.start_step = int(checkpoint.get("interpeq_data_step", 0))


def _stack(batches: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    return {k: torch.stack([b[k] for b in batches]) for k in batches[0]}


def member_checkpoint(
    module: StackedSIITModule, m: int, global_step: int, stopped: bool
) -> dict[str, Any]:
    """A checkpoint of member ``m`` in the format ``fit_member`` writes and reads."""
    import lightning

    single = SIITModule(
        task=module.tasks[m],
        model=module.cfgs[m],
        siit=module.trains[m],
        correspondence=module.corrs[m].to_dict(),
    )
    single.net.load_state_dict(module.member_state_dict(m))
    return {
        "epoch": 0,
        "global_step": global_step,
        "pytorch-lightning_version": lightning.__version__,
        "state_dict": {k: v.cpu() for k, v in single.state_dict().items()},
        "hyper_parameters": dict(single.hparams),
        "callbacks": {
            "ThresholdStopping": {
                "stopped": stopped,
                "stopped_at": global_step if stopped else None,
            }
        },
        "interpeq_train_seconds": module.train_seconds,
        "interpeq_stacked": True,
    }


def fit_stacked(
    members: Sequence[Member],
    model: HookedTransformerConfig,
    *,
    ckpt_dir: Path,
    member_dirs: Sequence[Path] | None = None,
    logger: Any = False,
    callbacks: Sequence[Callback] = (),
    trainer_kwargs: dict[str, Any] | None = None,
    compile_mode: str | None = None,
) -> list[FitResult]:
    """Train ``members`` (each ``(task, correspondence, train[, model_config])``) stacked.

    Without its own model config, member ``m`` is initialised from
    ``model.replace(seed=train.seed)``. Checkpoints (and resumes) in ``ckpt_dir/stacked``;
    each member's final weights go to ``member_dirs[m]/last.ckpt`` (default
    ``ckpt_dir/member<m>``), its held-out metrics are measured on the training device.
    One :class:`FitResult` per member; ``compile_mode`` compiles the fused step.
    """
    if any(m[2].pretrain_steps for m in members):  # the zoo trains these alone
        raise ValueError("pretrain_steps needs a member trained alone (fit_member), not stacked")
    ckpt_dir = Path(ckpt_dir)
    module = StackedSIITModule(members, model, compile_mode=compile_mode)
    dirs = (
        [Path(d) for d in member_dirs]
        if member_dirs
        else [ckpt_dir / f"member{m}" for m in range(module.n_members)]
    )
    if len(dirs) != module.n_members:
        raise ValueError(f"member_dirs has {len(dirs)} entries for {module.n_members} members")
    stack_dir = ckpt_dir / "stacked"
    stack_dir.mkdir(parents=True, exist_ok=True)
    last = stack_dir / "last.ckpt"
    train = module.train_cfg
    ckpt = load_checkpoint(last, "this stacked group") if last.exists() else None
    from interpeq.training.fit import _finished

    if ckpt is not None and _finished(ckpt, train):
        module.load_state_dict(ckpt["state_dict"])
        module.on_load_checkpoint(ckpt)
        steps = int(ckpt["global_step"])
    else:
        trainer = trainer_for(train, stack_dir, logger, callbacks, trainer_kwargs)
        trainer.fit(module, ckpt_path=str(last) if ckpt is not None else None, weights_only=True)
        trainer.save_checkpoint(last, weights_only=False)  # full state: resumable
        steps = trainer.global_step
    results = []
    module = module.cpu()
    device = training_device(trainer_kwargs)
    for m, net in enumerate(module.unstack()):
        if rank_zero_only.rank == 0:  # DDP: one writer (every rank has these weights)
            dirs[m].mkdir(parents=True, exist_ok=True)
            torch.save(member_checkpoint(module, m, steps, stopped=True), dirs[m] / "last.ckpt")
        metrics = evaluate(
            net.eval().to(device), module.tasks[m], module.corrs[m], module.trains[m]
        )
        net = net.cpu()
        metrics.update(steps=float(steps), seconds=float(module.train_seconds))
        results.append(FitResult(model=net, metrics=metrics))
    return results
