"""The paper's own toy construction, beside ours (docs/method.md section 13).

The reference code (alansun17904/interp-equiv, ``left/algo.py``,
``left/encoding_interp_bw.py``) does not resample a model's *non-circuit*
components: it patches its *circuit* components with activations from other
(corrupted) inputs, counted back from the last stage of a composed algorithm, and
counts how often a target model is more similar to the base model than to its
patched copy. Here:

* :func:`circuit_draws`: ``m`` copies of a unit with random subsets of the circuit of
  its **last stage** patched from other probe inputs
  (:func:`~interpeq.equivalence.impls.circuit_patches`); the earlier stages of a chain
  keep their representation (their outputs feed the last stage unchanged);
* :func:`reference_fraction`: per direction the fraction of draws ``j`` with
  ``similarity(a, b) > similarity(a*_j, b)`` (:func:`~interpeq.equivalence.selectivity`),
  and their mean.

What each tests: our congruity asks whether ``b`` sits among ``a``'s co-implementations
(models that keep ``a``'s interpretation), a rank test with a p-value. The fraction
asks whether breaking ``a``'s circuit moves ``a`` away from ``b``: near 1 when ``b``
shares what that circuit computes, near 0.5 when ``b`` is indifferent to it. It has no
null distribution of its own and no decision; it is reported for comparison with the
paper, not as a test.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from interpeq.equivalence.congruity import selectivity
from interpeq.equivalence.defaults import DEFAULT_M
from interpeq.equivalence.impls import circuit_patches
from interpeq.equivalence.representations import representation_options, representations
from interpeq.equivalence.units import ModelUnit, Unit, stage_inputs


def circuit_draws(
    u: ModelUnit,
    tokens: Tensor,
    m: int = DEFAULT_M,
    seed: int = 0,
    representation: str = "residual",
) -> Tensor:
    """``[m, n, D]``: the unit's representation with its last stage's circuit patched."""
    opts = representation_options(representation)
    inputs = stage_inputs(u.models, tokens)
    last = circuit_patches(u.models[-1], u.correspondences[-1], inputs[-1], m, seed, **opts)
    if len(u.models) == 1:
        return last.cpu()
    with torch.no_grad():
        earlier = torch.cat(
            [
                representations(model, x, **opts)
                for model, x in zip(u.models[:-1], inputs[:-1], strict=True)
            ],
            dim=-1,
        )
    return torch.cat([earlier.expand(m, *earlier.shape), last], dim=-1).cpu()


def reference_fraction(
    a: Unit, b: Unit, draws_a: Tensor, draws_b: Tensor, *, seed: int = 0, **ridge: Any
) -> dict[str, float]:
    """``{"reference_fraction", "reference_fraction_a", "reference_fraction_b"}``: the
    fraction of ``a``'s circuit-patched copies farther from ``b`` than ``a`` is (and the
    reverse), and their mean."""
    fa = selectivity(a.reprs, draws_a, b.reprs, seed=seed, **ridge)
    fb = selectivity(b.reprs, draws_b, a.reprs, seed=seed, **ridge)
    return {
        "reference_fraction": (fa + fb) / 2,
        "reference_fraction_a": fa,
        "reference_fraction_b": fb,
    }
