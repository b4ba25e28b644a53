"""The best device for work outside Lightning (comparisons, tracking references).

Lightning picks the training device (``accelerator="auto"``); representations,
co-implementations and the ridge engine run where this says: the GPU where torch sees
one, else the CPU (``"auto"``), or the device named.
"""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or ``None``) -> ``cuda`` if available, else ``cpu``; anything else as
    ``torch.device``, with a clear error for a device torch cannot use."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no GPU; use 'auto' or 'cpu'")
    return dev


def barrier() -> None:
    """Wait for every rank of the process group (nothing when none is up)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
