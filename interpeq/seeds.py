"""Seed derivation: every seed interpeq derives from names and numbers, in one place.

Python's ``hash()`` changes between processes, so seeds come from cryptographic digests
of their parts. Three schemes exist, each with its own digest and width, because each
already fixed the seeds of stored artefacts (zoo members, data splits, probe sets):
changing any of them would silently give every existing zoo different models and data.
So they stay bit-identical, side by side, named after what they seed:

* :func:`member_seed` (31-bit, SHA-256 of ``"|"``-joined parts): a zoo member's model,
  correspondence and training seed, and its drawn architecture;
* :func:`stream_seed` (63-bit, BLAKE2b of the parts' ``repr``): torch generators of
  training batches, probe sets and co-implementation draws (:func:`generator`);
* :func:`split_seed` (63-bit, SHA-256 of a task key): the rows of a task exported to a
  ``datasets.Dataset`` for one split.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

__all__ = ["generator", "member_seed", "split_seed", "stream_seed"]


def member_seed(*parts: Any) -> int:
    """A 31-bit seed from its parts, identical across processes (unlike ``hash``)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def stream_seed(*parts: int | str) -> int:
    """A 63-bit seed from a tuple of ints/strings (stable across runs and platforms)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def generator(*parts: int | str) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`stream_seed` of ``parts``."""
    return torch.Generator().manual_seed(stream_seed(*parts))


def split_seed(name: str, seq_len: int, n_values: int, seed: int, split: str) -> int:
    """A 63-bit seed for one split of a task (its name and shape), ``seed`` and ``split``."""
    key = f"interpeq|{name}|{seq_len}|{n_values}|{seed}|{split}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1
