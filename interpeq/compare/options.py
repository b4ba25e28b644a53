"""The options of a comparison, declared once: :class:`CompareOptions`.

Each option is one field with its default, its help text and its check. Everything that
takes comparison options reads them through this class:

* the ``interpeq compare`` flags (:func:`add_arguments`, help and defaults from here);
* the ``compare:`` section of a zoo / experiment YAML
  (:class:`interpeq.experiment.CompareSpec` extends this class) and the reproduce
  studies' ``compare:`` (:class:`interpeq.reproduce.config.CompareSettings` takes its
  defaults and checks from here);
* :func:`interpeq.compare.compare_zoo`'s keyword arguments (:meth:`CompareOptions.kwargs`;
  ``tests/test_structure.py`` checks that its defaults are these);
* the output folder's name (:data:`FOLDER_OPTIONS`) and the options ``results.json``
  records and ``interpeq compare`` refuses to overwrite (:data:`OPTION_DEFAULTS`).

A bad value from any source (flag, ``--set``, YAML, Python) is one ``ValueError`` line
naming the key, the value and what is valid.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from interpeq.compare.units import PROBE_KINDS, UNIT_KINDS
from interpeq.equivalence.defaults import DEFAULT_ALPHA, DEFAULT_M, check_level
from interpeq.equivalence.pairwise import IMPL_SOURCES
from interpeq.equivalence.representations import REPRESENTATIONS, representation_options
from interpeq.equivalence.similarity import SIMILARITY_METHODS


def _int_at_least(low: int) -> Callable[[str, Any], None]:
    def check(key: str, v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{key} must be an int >= {low}, got {v!r}")

    return check


def _any_int(key: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{key} must be an int, got {v!r}")


def _probability(key: str, v: Any) -> None:
    check_level(v, key)


def _flag(key: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise ValueError(f"{key} must be true or false, got {v!r}")


def _one_of(choices: tuple[str, ...]) -> Callable[[str, Any], None]:
    def check(key: str, v: Any) -> None:
        if v not in choices:
            raise ValueError(f"{key} must be one of {list(choices)}, got {v!r}")

    return check


def _probe_kind(key: str, v: Any) -> None:
    if not isinstance(v, str) or not v:
        raise ValueError(
            f"{key} must be {' or '.join(PROBE_KINDS)} or a task name, got {v!r}"
        )  # a task name is checked against the catalogue when the probes are drawn


def _representation(key: str, v: Any) -> None:
    try:
        representation_options(str(v))
    except ValueError as err:
        raise ValueError(f"{key}: {err}") from None


def _option(default: Any, help: str, check: Callable, kind: str = "", **cli: Any) -> Any:
    """A field with its help, its check and its kind: ``folder`` (names the output
    subfolder when not at its default), ``tuning`` (the test's numbers: recorded, and a
    folder holding other numbers is not overwritten), or neither."""
    return field(default=default, metadata={"help": help, "check": check, "kind": kind, **cli})


@dataclass(frozen=True)
class CompareOptions:
    """How a comparison runs (docs/method.md sections 6-8). Field order is the order of
    the output folder's name parts."""

    n_probes: int = _option(256, "probe inputs", _int_at_least(5), "tuning")
    m: int = _option(DEFAULT_M, "co-implementations per model", _int_at_least(1), "tuning")
    alpha: float = _option(DEFAULT_ALPHA, "test level", _probability, "tuning")
    seed: int = _option(0, "seed of the probes, draws and ridge splits", _any_int, "tuning")
    impls: str = _option(
        "auto",
        "co-implementations: auto (the calibrated null: resample-patched copies rescaled to "
        "the spread between the group's members), intervention (the copies as they are), or "
        "training (the other units of the same group; needs >= 3 units per group)",
        _one_of(IMPL_SOURCES), "folder", choices=IMPL_SOURCES,
    )  # fmt: skip
    one_sided: bool = _option(False, "one-sided congruity min(1, 2(1-p))", _flag, "folder")
    probes: str = _option("mixture", "mixture, uniform, or a task name", _probe_kind, "folder")
    units: str = _option(
        "auto", "members or composed-algorithm chains", _one_of(UNIT_KINDS), "folder",
        choices=UNIT_KINDS,
    )  # fmt: skip
    representation: str = _option(
        "residual",
        "what is read from each model: "
        + "; ".join(f"{k}: {v}" for k, v in REPRESENTATIONS.items())
        + " (docs/mechanisms.md)",
        _representation, "folder", metavar="{" + ",".join(REPRESENTATIONS) + "}",
    )  # fmt: skip
    similarity: str = _option(
        "ridge",
        "ridge (linear predictivity both ways), paper (the paper code's score) or linear CKA",
        _one_of(SIMILARITY_METHODS), "folder", choices=SIMILARITY_METHODS,
    )  # fmt: skip
    reference: bool = _option(
        False,
        "also the paper code's statistic: the fraction of circuit-patched copies of each "
        "model farther from the other model (reference_fraction; beside the test)",
        _flag,
    )
    include_unconverged: bool = _option(
        False, "also compare members flagged converged: false (left out by default)", _flag
    )

    def __post_init__(self) -> None:
        check_options({f.name: getattr(self, f.name) for f in fields(CompareOptions)})

    def kwargs(self) -> dict[str, Any]:
        """The options as :func:`interpeq.compare.compare_zoo` keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(CompareOptions)}

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CompareOptions:
        return cls(**{f.name: getattr(args, f.name) for f in fields(CompareOptions)})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_options(values: dict[str, Any], section: str = "compare") -> None:
    """The checks of :class:`CompareOptions` on ``values`` (any subset of its fields),
    errors naming ``<section>.<key>``: the tracker's options share them."""
    known = {f.name: f for f in fields(CompareOptions)}
    for key, value in values.items():
        known[key].metadata["check"](f"{section}.{key}", value)


def option_defaults(kind: str | None = None) -> dict[str, Any]:
    """``name -> default`` of every option (or those of one ``kind``), in field order."""
    return {
        f.name: f.default
        for f in fields(CompareOptions)
        if f.default is not MISSING and (kind is None or f.metadata["kind"] == kind)
    }


FOLDER_OPTIONS = option_defaults("folder")  # name the output subfolder when not default
TUNING_OPTIONS = tuple(option_defaults("tuning"))  # same folder; --overwrite to replace
OPTION_DEFAULTS = {**option_defaults("tuning"), **FOLDER_OPTIONS}  # recorded in results.json


def add_arguments(parser: argparse.ArgumentParser, names: Sequence[str] | None = None) -> None:
    """One ``--flag`` per option (or per option in ``names``), with its default and help
    from :class:`CompareOptions`; values are checked by the class, so a flag fails
    exactly as a YAML key does."""
    for f in fields(CompareOptions):
        if names is not None and f.name not in names:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata["help"]
        if f.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", help=help_text)
            continue
        kind = {"int": int, "float": float}.get(str(f.type), str)
        extra = {k: f.metadata[k] for k in ("choices", "metavar") if k in f.metadata}
        default = f" (default {f.default})" if "choices" not in extra else ""
        parser.add_argument(flag, type=kind, default=f.default, help=help_text + default, **extra)


def defaults_yaml() -> str:
    """``configs/compare/default.yaml``: the ``compare:`` section with every option at its
    default and its help as a comment (generated here, so the file cannot drift)."""
    import textwrap

    import yaml

    lines = [
        "# Every comparison option at its default: the compare: section of a zoo or experiment",
        "# YAML, the interpeq compare flags (--n-probes, ...). Generated from",
        "# interpeq.compare.options.CompareOptions (defaults_yaml); do not edit by hand.",
        "compare:",
    ]
    for f in fields(CompareOptions):
        lines += ["  # " + t for t in textwrap.wrap(f.metadata["help"], 86)]
        lines.append(
            f"  {f.name}: {yaml.safe_dump(f.default, default_flow_style=True).split(chr(10))[0]}"
        )
    return "\n".join(lines) + "\n"
