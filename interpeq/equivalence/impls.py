"""Co-interpretive implementations by intervention (docs/method.md section 6, GetImpl).

``co_implementations(model, correspondence, tokens, m, seed)`` -> ``[m, n, D]``: the
representations of ``m`` variants of ``model``, each with a random nonempty subset
of its *non-circuit* components resample-patched (all positions) from counterfactual
inputs. Draw ``j``: every non-circuit component is included with probability
``p_include`` (redrawn while the subset is empty); the counterfactual source of probe
row ``i`` is row ``perm_j[i]`` of ``tokens`` for a random permutation ``perm_j`` (i.e.
resampled from the other probe inputs). All draws come from
``torch.Generator().manual_seed(seed)``. The sources' activations come from one clean
pass over the ``n`` probes; the ``m * n`` patched forwards run batched, a different
component subset per row (``patch_hooks(..., select=...)``).

``circuit_patches`` does the same with *circuit* components (for :func:`selectivity`).
The circuit is read from ``correspondence``: a sequence of components or any object
with a ``.circuit`` attribute.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from interpeq.equivalence.defaults import DEFAULT_M
from interpeq.equivalence.representations import (
    _check_tokens,
    check_positions,
    reduce_residuals,
    resolve_layers,
)
from interpeq.models.components import Component, patch_hooks, required_hooks

# Rows per patched forward on a CPU: a few thousand tokens keep each layer's activations
# in cache (the elementwise ops, GELU and softmax, dominate there); measured 0.74 s vs
# 0.87 s at 1024 rows for m=40 draws of 256 probes. Other devices keep 1024 rows.
CPU_BATCH_ROWS = 256


def circuit_of(correspondence) -> list[Component]:
    """The circuit's components from a correspondence or a sequence of components."""
    circuit = getattr(correspondence, "circuit", correspondence)
    if isinstance(circuit, Component):
        circuit = [circuit]
    try:
        comps = list(circuit)
    except TypeError:
        raise ValueError(
            "correspondence must be a sequence of Components or have a .circuit attribute, "
            f"got {type(correspondence).__name__}"
        ) from None
    out = []
    for c in comps:
        if isinstance(c, str):
            c = Component.parse(c)
        if not isinstance(c, Component):
            raise ValueError(f"correspondence: {c!r} is not a Component")
        out.append(c)
    return out


def co_implementations(
    model,
    correspondence,
    tokens: Tensor,
    m: int = DEFAULT_M,
    seed: int = 0,
    *,
    p_include: float = 0.5,
    **repr_opts,
) -> Tensor:
    """``[m, n, D]`` representations of ``m`` non-circuit resample-patched variants.

    ``repr_opts`` (``layers``, ``positions``, ``apply_ln``, ``include_bos``,
    ``batch_size``) mean what they mean in :func:`representations`; the default
    ``batch_size`` is ``CPU_BATCH_ROWS`` rows on a CPU and 1024 elsewhere (the
    numbers do not depend on it).
    """
    circuit = set(circuit_of(correspondence))
    model.check_components(list(circuit))
    pool = [c for c in model.components() if c not in circuit]
    if not pool:
        raise ValueError(
            "correspondence: the circuit covers every component of the model, so there are "
            "no non-circuit components to resample for co-implementations"
        )
    return _resampled(model, pool, tokens, m, seed, p_include, **repr_opts)


def circuit_patches(
    model,
    correspondence,
    tokens: Tensor,
    m: int = DEFAULT_M,
    seed: int = 0,
    *,
    p_include: float = 0.5,
    **repr_opts,
) -> Tensor:
    """``[m, n, D]`` representations with random subsets of *circuit* components patched
    (options as :func:`co_implementations`)."""
    pool = sorted(set(circuit_of(correspondence)), key=lambda c: c.sort_key())
    if not pool:
        raise ValueError("correspondence: the circuit is empty")
    model.check_components(pool)
    return _resampled(model, pool, tokens, m, seed, p_include, **repr_opts)


def _clean_activations(model, tokens: Tensor, names: list[str], batch_size: int) -> dict:
    """``{hook: [n, ...]}`` activations of the unpatched model on every probe row.

    A draw's counterfactual source for probe ``i`` is probe ``perm[i]`` run through the
    same model, so the sources of all ``m * n`` patched rows are rows of this one pass
    over the ``n`` probes (indexed by each draw's permutation), not ``m * n`` forwards.
    """
    parts: dict[str, list[Tensor]] = {}
    for lo in range(0, tokens.shape[0], batch_size):
        _, cache = model.run_with_cache(tokens[lo : lo + batch_size], names_filter=names)
        for name, act in cache.items():
            parts.setdefault(name, []).append(act)
    return {name: torch.cat(acts) for name, acts in parts.items()}


@torch.no_grad()
def _resampled(
    model,
    pool,
    tokens,
    m,
    seed,
    p_include,
    *,
    layers: Sequence[int] | str | None = None,
    positions: str | int = "mean",
    apply_ln: bool = True,
    include_bos: bool = False,
    batch_size: int | None = None,
) -> Tensor:
    _check_tokens(tokens)
    batch_size = batch_size or (CPU_BATCH_ROWS if tokens.device.type == "cpu" else 1024)
    if not isinstance(m, int) or isinstance(m, bool) or m < 1:
        raise ValueError(f"m must be a positive int, got {m!r}")
    if not 0 < p_include <= 1:
        raise ValueError(f"p_include must be in (0, 1], got {p_include!r}")
    n = tokens.shape[0]
    positions = check_positions(positions, tokens.shape[1], include_bos)
    gen = torch.Generator().manual_seed(int(seed))
    masks = torch.zeros(m, len(pool), dtype=torch.bool)
    perms = torch.empty(m, n, dtype=torch.long)
    for j in range(m):
        while not masks[j].any():
            masks[j] = torch.rand(len(pool), generator=gen) < p_include
        perms[j] = torch.randperm(n, generator=gen)
    names = model.residual_hook_names(resolve_layers(model, layers))
    device = tokens.device
    draw = torch.arange(m).repeat_interleave(n)  # row r of the m*n batch = (draw, probe)
    probe = torch.arange(n).repeat(m)
    src_rows = perms[draw, probe]
    was_training = model.training
    model.eval()
    try:
        clean = _clean_activations(model, tokens, required_hooks(pool), batch_size)
        outs = []
        for lo in range(0, m * n, batch_size):
            sl = slice(lo, lo + batch_size)
            base = tokens[probe[sl].to(device)]
            rows = src_rows[sl].to(device)
            src_cache = {name: act[rows] for name, act in clean.items()}
            hooks = patch_hooks(src_cache, pool, masks[draw[sl]].to(device))
            with model.hooks(hooks):
                _, cache = model.run_with_cache(base, names_filter=names)
            outs.append(
                reduce_residuals(
                    model,
                    cache,
                    names,
                    positions=positions,
                    apply_ln=apply_ln,
                    include_bos=include_bos,
                )
            )
    finally:
        model.train(was_training)
    return torch.cat(outs).float().reshape(m, n, -1)
