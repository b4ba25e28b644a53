"""Units: what the pairwise test compares — one model, or a chain of stage models.

A :class:`ModelUnit` holds the models (one per stage of a composed algorithm, in
order) and their correspondences; :func:`compute_unit` turns it into a :class:`Unit`:
its representation on the shared probe tokens and ``m`` co-implementations. A
chain's representation concatenates its stages' (stage k+1 runs on stage k's
predicted tokens, :func:`~interpeq.equivalence.representations`); its
co-implementations concatenate each stage's, computed on the base chain's stage
inputs (by strictness a co-implementation's outputs equal the base stage's, so these
are the inputs it would see). Plain torch: the zoo, the tracker and the language-model
study all build units the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from interpeq.equivalence.defaults import DEFAULT_M
from interpeq.equivalence.impls import co_implementations
from interpeq.equivalence.representations import representation_options, representations
from interpeq.tasks.names import parse_stage


@dataclass
class Unit:
    """What the pairwise test needs of one model (or chain)."""

    id: str
    group: str
    reprs: Tensor  # [n, D]
    impls: Tensor  # [m, n, D]
    meta: dict[str, Any] = field(default_factory=dict)
    self_d: Tensor | None = None  # [m] distances to its co-implementations (filled lazily)


@dataclass
class ModelUnit:
    """A unit before its representations are computed: one or more stage models."""

    id: str
    group: str
    models: list  # HookedTransformer, one per stage
    correspondences: list
    tasks: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def input_task(self) -> str:
        """The task whose sampler feeds the unit: the algorithm for a chain."""
        t = self.tasks[0]
        stage = parse_stage(t)
        return stage[0] if stage and len(self.tasks) > 1 else t


def check_vocab(
    models: Sequence[tuple[str, Any]], tokens: Tensor | None = None, *, outputs: bool = False
) -> None:
    """Every model reads the same vocabulary and context length (``outputs``: and writes
    the same output vocabulary) as the first, and ``tokens`` fit each of them.

    ``models``: ``(label, model)`` pairs; ``model.cfg`` has ``d_vocab``, ``n_ctx``,
    ``d_vocab_out``. Congruity compares models on one set of probe inputs, so a model
    that cannot read them is an error naming it, before any representation is computed.
    """

    def shape(cfg) -> str:
        out = f" -> {cfg.d_vocab_out}" if outputs else ""
        return f"vocabulary {cfg.d_vocab}{out} / context {cfg.n_ctx}"

    def key(cfg) -> tuple:
        return (cfg.d_vocab, cfg.n_ctx) + ((cfg.d_vocab_out,) if outputs else ())

    ref_label, ref = None, None
    for label, model in models:
        cfg = model.cfg
        if ref is None:
            ref_label, ref = label, cfg
        elif key(cfg) != key(ref):
            raise ValueError(
                f"{label} reads {shape(cfg)} but {ref_label} reads {shape(ref)}: "
                "congruity needs every model on the same probe inputs"
            )
        if tokens is not None and (int(tokens.max()) >= cfg.d_vocab or tokens.shape[1] > cfg.n_ctx):
            raise ValueError(
                f"{label}: probe tokens (max {int(tokens.max())}, length {tokens.shape[1]}) do not "
                f"fit its vocabulary {cfg.d_vocab} / context {cfg.n_ctx}"
            )


def stage_inputs(models: Sequence, tokens: Tensor) -> list[Tensor]:
    """Inputs each stage of a chain sees: stage k+1 reads stage k's predicted tokens."""
    inputs = [tokens]
    with torch.no_grad():
        for model in models[:-1]:
            was = model.training
            model.eval()
            logits = model(inputs[-1])
            model.train(was)
            inputs.append(torch.cat([tokens[:, :1], logits[:, 1:].argmax(-1)], dim=1))
    return inputs


def compute_unit(
    u: ModelUnit,
    tokens: Tensor,
    m: int = DEFAULT_M,
    seed: int = 0,
    representation: str = "residual",
) -> Unit:
    """Representations and ``m`` co-implementations of a model (or chain) on ``tokens``.

    ``representation`` names what is read from each model
    (:data:`~interpeq.equivalence.representations.REPRESENTATIONS`); the base model and
    its co-implementations are read the same way. The tensors come back on the CPU:
    units are compared in batches whose ridge engine chooses its own device, and a zoo
    of them must fit in host memory, not GPU memory.
    """
    opts = representation_options(representation)
    models = u.models if len(u.models) > 1 else u.models[0]
    reprs = representations(models, tokens, **opts)
    if m == 0:  # co-implementations by training only: none drawn by intervention
        return Unit(
            u.id, u.group, reprs.cpu(), reprs.new_zeros(0, *reprs.shape).cpu(), dict(u.meta)
        )
    inputs = stage_inputs(u.models, tokens)
    impls = torch.cat(
        [
            co_implementations(model, corr, x, m, seed + k, **opts)
            for k, (model, corr, x) in enumerate(
                zip(u.models, u.correspondences, inputs, strict=True)
            )
        ],
        dim=-1,
    )
    return Unit(u.id, u.group, reprs.cpu(), impls.cpu(), dict(u.meta))
