"""Input checks and the hold-out split shared by every similarity (ridge and CKA).

Errors name the argument (``reprs[3]``, ``source``...) so that a bad representation
is reported where the user passed it, not deep inside a factorisation.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

DEFAULT_ALPHAS = torch.logspace(-3, 5, 17, dtype=torch.float64)

_MIN_TRAIN = 3
_MIN_TEST = 2


def check_representation(x: Any, name: str, *, n: int | None = None) -> Tensor:
    """Validate a ``[n, D]`` representation matrix; return it as a float64 tensor.

    Raises ``ValueError`` naming ``name`` for: not 2-D, no rows, no features, NaN/inf,
    every feature constant, or (with ``n``) a row count different from ``n``.
    """
    if not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(x)
        except Exception as exc:  # noqa: BLE001 - re-raised with the argument name
            raise ValueError(f"{name} must be a [n, D] tensor, got {type(x).__name__}") from exc
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [n, D] tensor, got shape {tuple(x.shape)}")
    if not (x.dtype.is_floating_point or x.dtype in (torch.int64, torch.int32, torch.bool)):
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {tuple(x.shape)})")
    if x.shape[0] == 0:
        raise ValueError(f"{name} has no rows (shape {tuple(x.shape)})")
    if n is not None and x.shape[0] != n:
        raise ValueError(
            f"{name} has {x.shape[0]} rows but {n} were expected: every representation "
            "must hold the same probe inputs in the same order"
        )
    x = x.detach().to(torch.float64)
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} NaN/inf value(s)")
    if x.shape[0] > 1 and not bool((x.amax(0) > x.amin(0)).any()):
        raise ValueError(f"{name}: every feature is constant over the probe rows")
    return x


def check_alphas(alphas: Any) -> Tensor:
    if alphas is None:
        return DEFAULT_ALPHAS.clone()
    a = torch.as_tensor(alphas, dtype=torch.float64).reshape(-1)
    if a.numel() == 0 or not bool(torch.isfinite(a).all()) or bool((a <= 0).any()):
        raise ValueError(
            f"alphas must be a nonempty sequence of finite positive numbers, got {alphas!r}"
        )
    return a


def split_indices(n: int, test_fraction: float = 0.1, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``(train, test)`` row indices (each sorted) of the seeded hold-out split."""
    if not isinstance(test_fraction, (float, int)) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    n_test = math.ceil(test_fraction * n)
    if n_test < _MIN_TEST or n - n_test < _MIN_TRAIN:
        need = max(_MIN_TRAIN + _MIN_TEST, math.ceil(_MIN_TEST / test_fraction))
        raise ValueError(
            f"too few probe rows: n={n} gives {n - n_test} train / {n_test} test rows at "
            f"test_fraction={test_fraction}; need >= {_MIN_TRAIN} train and >= {_MIN_TEST} "
            f"test rows (n >= {need})"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    return perm[n_test:].sort().values, perm[:n_test].sort().values
