"""Dict round-trips for the frozen config dataclasses (model, training), in one place.

Configs arrive from JSON/YAML written by other labs: unknown keys are an error that
lists the valid ones, never silently ignored.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def from_dict(cls: type[T], data: Any, what: str) -> T:
    """``cls(**data)`` after checking that ``data`` is a mapping of known field names."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a mapping, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {what} keys {unknown}; valid keys: {sorted(known)}")
    return cls(**data)
