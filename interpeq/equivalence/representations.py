"""Representations of models on probe inputs (docs/method.md section 4).

``representations(model, tokens)`` -> ``[n, D]`` float32: the accumulated residual
stream (after the embedding and after every block, ``L + 1`` states), each passed
through the model's final layer norm, averaged over the *content* positions (the BOS
position 0 is excluded by default: it carries no input information and would only
add a constant offset), and concatenated over layers: ``D = (L + 1) * d_model``.

Options: ``layers`` (indices into the ``L + 1`` states), ``positions="mean"`` (the
default), ``"all"`` (every content position's state, concatenated: ``D = (L + 1) *
(pos - 1) * d_model``), ``"last"`` or an int, ``apply_ln=False``, ``include_bos=True``.
:data:`REPRESENTATIONS` names the choices the comparison offers
(:func:`representation_options` turns a name into these options).

A **chain** ``representations([m0, m1, ...], tokens)`` runs stage ``k + 1`` on stage
``k``'s *predicted* tokens: the argmax of its logits at positions ``1..`` behind the
original BOS column (as :meth:`interpeq.tasks.compose.Algorithm.stage_inputs` builds
stage inputs, but from predictions, not labels), and concatenates the stages'
representations along features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def _check_tokens(tokens: Tensor) -> None:
    if not isinstance(tokens, Tensor) or tokens.ndim != 2 or tokens.dtype.is_floating_point:
        raise ValueError(
            f"tokens must be an integer tensor [batch, pos], got "
            f"{getattr(tokens, 'dtype', type(tokens).__name__)} {tuple(getattr(tokens, 'shape', ()))}"
        )
    if tokens.shape[0] == 0:
        raise ValueError("tokens has no rows")


# the representations a comparison can use (``interpeq compare --representation``)
REPRESENTATIONS = {
    "residual": "every residual state (embedding + each block), mean over content positions",
    "no-embedding": "the states after each block only (the embedding state left out)",
    "per-position": "every residual state at every content position, concatenated",
    "layer-K": "the residual state K alone (0 = embedding, K = after block K)",
}


def representation_options(name: str) -> dict:
    """The :func:`representations` options of a named representation
    (:data:`REPRESENTATIONS`); ``"layer-K"`` for any ``K >= 0``. ``layers`` given as
    ``"blocks"`` means every state after the embedding (resolved per model)."""
    if name == "residual":
        return {}
    if name == "no-embedding":
        return {"layers": "blocks"}
    if name == "per-position":
        return {"positions": "all"}
    k = name.removeprefix("layer-")
    if name.startswith("layer-") and k.isdigit():
        return {"layers": [int(k)]}
    raise ValueError(
        f"unknown representation {name!r}; choose one of residual, no-embedding, "
        "per-position, layer-K (K = 0 for the embedding, 1.. for the blocks)"
    )


def resolve_layers(model, layers):
    """``"blocks"`` -> the states after each block (``1 .. L``); a list is checked."""
    n_states = model.cfg.n_layers + 1
    if layers == "blocks":
        return list(range(1, n_states))
    if layers is not None and any(not 0 <= k < n_states for k in layers):
        raise ValueError(
            f"layers {list(layers)} out of range: the model has {n_states} residual states "
            f"(0 = embedding .. {n_states - 1})"
        )
    return layers


def check_positions(positions, n_pos: int, include_bos: bool):
    if positions in ("mean", "last", "all"):
        if positions in ("mean", "all") and not include_bos and n_pos < 2:
            raise ValueError(f"positions={positions!r} without BOS needs at least 2 positions")
        return positions
    if isinstance(positions, int) and not isinstance(positions, bool):
        if not -n_pos <= positions < n_pos:
            raise ValueError(f"positions={positions} out of range for {n_pos} positions")
        return positions
    raise ValueError(f"positions must be 'mean', 'all', 'last' or an int, got {positions!r}")


def reduce_residuals(
    model,
    cache: dict[str, Tensor],
    names: list[str],
    *,
    positions="mean",
    apply_ln: bool = True,
    include_bos: bool = False,
) -> Tensor:
    """``[batch, len(names) * d_model]`` from cached residual states ``[batch, pos, d_model]``."""
    outs = []
    for name in names:
        x = cache[name]
        if apply_ln:
            x = model.ln_final(x)
        if positions == "mean":
            x = (x if include_bos else x[:, 1:]).mean(1)
        elif positions == "all":
            x = (x if include_bos else x[:, 1:]).flatten(1)
        elif positions == "last":
            x = x[:, -1]
        else:
            x = x[:, positions]
        outs.append(x)
    return torch.cat(outs, dim=-1)


@torch.no_grad()
def representations(
    model,
    tokens: Tensor,
    *,
    layers: Sequence[int] | str | None = None,
    positions: str | int = "mean",
    apply_ln: bool = True,
    include_bos: bool = False,
    batch_size: int = 1024,
) -> Tensor:
    """``[n, D]`` representation of ``model`` (or a chain of stage models) on ``tokens``.

    See the module docstring. Runs under ``torch.no_grad()`` in eval mode (the
    model's training flag is restored), in chunks of ``batch_size`` rows.
    """
    _check_tokens(tokens)
    if isinstance(model, (list, tuple)):
        if not model:
            raise ValueError("model: an empty chain of stage models")
        outs, inputs = [], tokens
        for k, stage in enumerate(model):
            rep, logits = _single(
                stage,
                inputs,
                layers,
                positions,
                apply_ln,
                include_bos,
                batch_size,
                want_logits=k + 1 < len(model),
            )
            outs.append(rep)
            if logits is not None:
                inputs = torch.cat([tokens[:, :1], logits[:, 1:].argmax(-1)], dim=1)
        return torch.cat(outs, dim=-1)
    return _single(model, tokens, layers, positions, apply_ln, include_bos, batch_size)[0]


def _single(model, tokens, layers, positions, apply_ln, include_bos, batch_size, want_logits=False):
    names = model.residual_hook_names(resolve_layers(model, layers))
    positions = check_positions(positions, tokens.shape[1], include_bos)
    was_training = model.training
    model.eval()
    try:
        reps, logits = [], []
        for lo in range(0, tokens.shape[0], batch_size):
            out, cache = model.run_with_cache(tokens[lo : lo + batch_size], names_filter=names)
            reps.append(
                reduce_residuals(
                    model,
                    cache,
                    names,
                    positions=positions,
                    apply_ln=apply_ln,
                    include_bos=include_bos,
                )
            )
            if want_logits:
                logits.append(out)
    finally:
        model.train(was_training)
    return torch.cat(reps).float(), (torch.cat(logits) if want_logits else None)
