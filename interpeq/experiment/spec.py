"""One zoo YAML describes the whole experiment: the zoo and five sections.

* the zoo keys (:class:`~interpeq.zoo.ZooSpec`: ``name``, ``tasks``, ``seeds``, ...);
* ``trainer:`` Lightning ``Trainer`` arguments (``accelerator`` default ``auto``,
  ``devices``, ``precision``, ...); the step count, validation interval, logger and
  callbacks are interpeq's (set them through ``train:``, ``logger:``, ``tracking:``);
* ``logger:`` ``wandb`` | ``csv`` | ``none``, or ``{kind, project, entity, tags}``; one
  run per member (stacked or not), W&B offline without an account;
* ``tracking:`` the equivalence tracker while members train: ``references`` (selectors
  of other zoos, ``"<zoo>:task=...,setting=...,seed=..."``, or of *this* zoo,
  ``"self:seed=0"``: those members train first and every other member is tracked
  against them, grouped by task), ``every_n_steps``, ``n_probes``, ``m``, ``alpha``,
  ``background`` (default true: each capture is analysed beside training);
* ``compare:`` the comparison after training (``enabled`` plus the options of
  :func:`interpeq.compare.compare_zoo`); ``compare: true`` turns it on with defaults;
* ``retry:`` thresholds a member must meet and what happens when it does not
  (:class:`~interpeq.zoo.retry.RetrySpec`).

Each section is validated like the zoo keys (unknown keys are listed). ``overrides``
(``{"trainer.devices": 2, "logger": "csv"}``, what the CLI's ``--set`` gives) apply on
top of the file, before validation.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from interpeq.compare.options import OPTION_DEFAULTS, CompareOptions, check_options
from interpeq.zoo.retry import RetrySpec
from interpeq.zoo.spec import SECTION_KEYS, ZooSpec

LOGGER_KEYS = {"kind", "project", "entity", "tags"}
TRACKING_KEYS = {
    "references",
    "every_n_steps",
    "n_probes",
    "m",
    "alpha",
    "seed",
    "one_sided",
    "impls",
    "include_unconverged",
    "background",
}
# Trainer arguments interpeq sets itself (from train:, logger:, tracking:).
RESERVED_TRAINER = {"max_steps", "callbacks", "logger", "default_root_dir", "val_check_interval"}


@dataclass(frozen=True)
class LoggerSpec:
    kind: str = "none"
    project: str = "interpeq"
    entity: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrackingSpec:
    references: Any
    every_n_steps: int = 500  # as ActivationCapture: short runs set their own
    n_probes: int = OPTION_DEFAULTS["n_probes"]  # the comparison's options and defaults
    m: int = OPTION_DEFAULTS["m"]  # (interpeq.compare.options), checked there too
    alpha: float = OPTION_DEFAULTS["alpha"]
    seed: int = OPTION_DEFAULTS["seed"]
    one_sided: bool = OPTION_DEFAULTS["one_sided"]
    impls: str = "auto"  # the calibrated null (docs/calibration.md); "intervention": raw draws
    include_unconverged: bool = False
    background: bool = True  # analyse captures in a worker thread while training goes on


@dataclass(frozen=True)
class CompareSpec(CompareOptions):
    """The ``compare:`` section: whether to compare after training, and the comparison's
    options (:class:`~interpeq.compare.options.CompareOptions`, declared and checked
    there)."""

    enabled: bool = False

    def options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`interpeq.compare.compare_zoo`."""
        return self.kwargs()


COMPARE_KEYS = {f.name for f in fields(CompareSpec)}


@dataclass(frozen=True)
class ExperimentSpec:
    zoo: ZooSpec
    trainer: dict[str, Any] = field(default_factory=dict)
    logger: LoggerSpec = field(default_factory=LoggerSpec)
    tracking: TrackingSpec | None = None
    compare: CompareSpec = field(default_factory=CompareSpec)
    retry: RetrySpec = field(default_factory=RetrySpec)
    source: str | None = None

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentSpec:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"zoo config {str(path)!r} does not exist")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ValueError(f"zoo config {str(path)!r} is not valid YAML: {err}") from None
        try:
            return cls.from_dict(data, default_name=path.stem, overrides=overrides, source=path)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    @classmethod
    def from_dict(
        cls,
        data: Any,
        *,
        default_name: str = "zoo",
        overrides: dict[str, Any] | None = None,
        source: str | Path | None = None,
    ) -> ExperimentSpec:
        if not isinstance(data, dict):
            raise ValueError("a zoo config must be a mapping")
        data = apply_overrides(data, overrides or {})
        return cls(
            zoo=ZooSpec.from_dict(data, default_name=default_name),
            trainer=_trainer(data.get("trainer")),
            logger=_logger(data.get("logger")),
            tracking=_tracking(data.get("tracking")),
            compare=_compare(data.get("compare")),
            retry=_retry(data.get("retry")),
            source=str(source) if source is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The resolved experiment (what ``--print-config`` prints)."""
        z = self.zoo
        zoo = {
            "name": z.name,
            "tasks": list(z.tasks),
            "seeds": list(z.seeds),
            "settings": list(z.settings),
            "model": z.base_model().to_dict(),
            "architectures": dict(z.architectures),
            "train": dict(z.train),
            "task_train": dict(z.task_train),
            "stacked": z.stacked,
            "max_stack": z.max_stack,
            "compile": z.compile or False,
            "seed_namespace": z.seed_namespace,
        }
        logger = asdict(self.logger)
        logger["tags"] = list(self.logger.tags)
        return {
            **zoo,
            "trainer": {"accelerator": "auto", "devices": 1, **self.trainer},
            "logger": logger,
            "tracking": asdict(self.tracking) if self.tracking else None,
            "compare": asdict(self.compare),
            "retry": self.retry.to_dict(),
        }


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": v}`` sets ``data["a"]["b"] = v`` (a copy; sections created as needed)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for dotted, value in overrides.items():
        head, _, rest = dotted.partition(".")
        if not rest:
            out[head] = value
            continue
        section = out.get(head)
        if section is None or isinstance(section, (bool, str)):
            section = {} if not isinstance(section, str) else {"kind": section}
            if head == "compare" and out.get(head) is True:
                section = {"enabled": True}
        if not isinstance(section, dict):
            raise ValueError(f"cannot set {dotted!r}: {head!r} is not a mapping")
        out[head] = apply_overrides(section, {rest: value})
    return out


def _mapping(data: Any, name: str, keys: set[str]) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"'{name}' must be a mapping with keys {sorted(keys)}")
    unknown = sorted(set(data) - keys)
    if unknown:
        raise ValueError(f"unknown {name} keys {unknown}; valid: {sorted(keys)}")
    return dict(data)


def _trainer(data: Any) -> dict[str, Any]:
    import lightning as L

    valid = set(inspect.signature(L.Trainer.__init__).parameters) - {"self"} - RESERVED_TRAINER
    out = _mapping(data, "trainer", valid)
    return out


def _logger(data: Any) -> LoggerSpec:
    from interpeq.report import LOGGER_KINDS

    if data is None or isinstance(data, str):
        data = {"kind": data or "none"}
    d = _mapping(data, "logger", LOGGER_KEYS)
    kind = d.get("kind", "none")
    if kind not in LOGGER_KINDS:
        raise ValueError(f"unknown logger {kind!r}; choose one of {list(LOGGER_KINDS)}")
    tags = d.get("tags") or []
    if not isinstance(tags, list):
        raise ValueError(f"logger.tags must be a list of strings, got {tags!r}")
    return LoggerSpec(
        kind=kind,
        project=str(d.get("project") or "interpeq"),
        entity=d.get("entity"),
        tags=tuple(map(str, tags)),
    )


def _tracking(data: Any) -> TrackingSpec | None:
    if data is None or data is False:
        return None
    d = _mapping(data, "tracking", TRACKING_KEYS)
    if not d.get("references"):
        raise ValueError(
            "tracking needs 'references', e.g. references: ['self:seed=0'] (seed 0 of every "
            "task of this zoo, trained first) or ['other_zoo:task=add_index']"
        )
    spec = TrackingSpec(**d)
    _positive_int(spec.every_n_steps, "tracking.every_n_steps")
    shared = ("n_probes", "m", "alpha", "seed", "one_sided", "include_unconverged")
    check_options({k: getattr(spec, k) for k in shared}, "tracking")
    if spec.impls not in ("auto", "intervention"):
        raise ValueError(
            f"tracking.impls must be 'auto' or 'intervention', got {spec.impls!r} (the trained "
            "model is alone in its group, so the training null has nothing to rank against)"
        )
    if not isinstance(spec.background, bool):
        raise ValueError(f"tracking.background must be true or false, got {spec.background!r}")
    return spec


def _compare(data: Any) -> CompareSpec:
    if data is None or isinstance(data, bool):
        return CompareSpec(enabled=bool(data))
    return CompareSpec(**{"enabled": True, **_mapping(data, "compare", COMPARE_KEYS)})


def _retry(data: Any) -> RetrySpec:
    return RetrySpec.from_dict(data)


def _positive_int(v: Any, name: str) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")


__all__ = ["SECTION_KEYS", "CompareSpec", "ExperimentSpec", "LoggerSpec", "TrackingSpec"]
