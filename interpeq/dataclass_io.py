"""Dict round-trips for the frozen config dataclasses (model, training), in one place.

Configs arrive from JSON/YAML written by other labs: unknown keys are an error that
lists the valid ones, never silently ignored.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


NUMBER_FIELDS = {"int": int, "int | None": int, "float": float, "float | None": float}


def from_dict(cls: type[T], data: Any, what: str) -> T:
    """``cls(**data)`` after checking that ``data`` is a mapping of known field names
    whose numbers are numbers (a YAML ``3e-3`` arrives as a string and is read as the
    number it spells; ``abc`` is one clear error naming the key)."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown {what} keys {unknown}; valid keys: {sorted(fields)}")
    return cls(**{k: _number(v, fields[k].type, f"{what} key {k!r}") for k, v in data.items()})


def _number(value: Any, kind: Any, label: str) -> Any:
    """``value`` as the number its field holds (int or float), or a clear error."""
    want = NUMBER_FIELDS.get(kind) if isinstance(kind, str) else None
    if (
        want is None
        or value is None
        or (isinstance(value, (int, float)) and not isinstance(value, bool))
    ):
        if want is not None and isinstance(value, bool):
            raise ValueError(f"{label} must be a number, got {value!r}")
        return value
    try:
        number = float(value) if want is float else int(str(value), 10)
    except (TypeError, ValueError):
        noun = "a number" if want is float else "an integer"
        raise ValueError(f"{label} must be {noun}, got {value!r}") from None
    return number
