"""Zoo specifications: a YAML file -> the list of members to train.

A zoo names tasks (or composed algorithms, whose stages become tasks), seeds, and
which of the four settings of docs/method.md section 11 to draw for each:

- ``D``: fixed architecture and correspondence; only the seed varies;
- ``A``: the architecture is drawn from ``architectures`` ranges (default correspondence);
- ``C``: fixed architecture; the correspondence varies within each variable's layer;
- ``B``: both vary.

``train`` holds the training hyper-parameters of every member; ``task_train`` overrides
them per task, keyed by a catalogue task name (applies to that task and to every
algorithm stage that is that task) or by an exact entry of the member list
(``algorithm_5/stage0``, applied last), e.g. ``task_train: {any_duplicate: {lr: 0.001}}``.
``task_model`` does the same for the architecture (``model`` keys: ``n_layers``,
``d_model``, ``n_heads``, ``d_head``, ``d_mlp``, ...), e.g. ``task_model:
{sort_descending: {d_model: 64, d_mlp: 256}}``: a task that does not converge at the
zoo's size gets its own size without growing every other member (the toy's sort
stages). Overriding ``d_model`` or ``n_heads`` without ``d_head`` sets ``d_head =
d_model // n_heads``. Each member's recorded config (``member.json``) holds the
resolved model; settings A and B draw from ``architectures`` around the task's model.
Bad keys, values or task names are one-line errors naming the section, the task and
the valid choices, before any training is spent.

Every draw is seeded from ``(seed namespace, task, setting, seed)`` with a stable hash,
so the same YAML always yields the same members, in any process, on any machine. The
namespace is a constant unless ``seed_namespace`` sets it, not the zoo's name: a
member is one model whatever zoo holds it (zoos trained when seeds derived from the
name reproduce with ``seed_namespace: <that name>``). ``max_stack`` caps how many
members train as one stacked model (default: by device, see
:func:`interpeq.zoo.train.default_max_stack`); ``compile`` (``false``, ``true`` or a
``torch.compile`` mode) compiles a stacked group's fused step, which changes how fast a
member trains, not what it is.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from interpeq.models import HookedTransformerConfig
from interpeq.seeds import member_seed as stable_seed
from interpeq.tasks.names import member_id, stage_name
from interpeq.training.fused import compile_mode

SETTINGS = {
    "D": "fixed architecture and correspondence, seed varies",
    "A": "architecture varies",
    "C": "correspondence varies within a layer",
    "B": "architecture and correspondence vary",
}
ZOO_KEYS = {
    "name",
    "tasks",
    "algorithms",
    "seeds",
    "settings",
    "model",
    "architectures",
    "train",
    "task_train",
    "task_model",
    "stacked",
    "max_stack",
    "compile",
    "seed_namespace",
}
# Sections of the same YAML that describe the rest of the experiment; read by
# interpeq.experiment.spec, ignored by the zoo spec itself.
SECTION_KEYS = ("trainer", "logger", "tracking", "compare", "retry")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
DEFAULT_SEED_NAMESPACE = "interpeq"
ARCH_KEYS = {
    "n_layers",
    "d_model",
    "n_heads",
    "d_head",
    "d_mlp",
    "act_fn",
    "attention",
    "normalization",
}


def check_zoo_name(name: Any) -> str:
    """A zoo name is one plain path component: letters, digits, ``-``, ``_``, ``.`` (not
    starting with ``.``); zoo YAMLs are shared between labs, and a name like ``../x``
    or ``/abs`` must never make interpeq write outside the output root."""
    if not isinstance(name, str) or not _PLAIN_NAME.match(name) or ".." in name:
        raise ValueError(
            f"zoo name {name!r} is not a plain name: use letters, digits, '-', '_' and '.' "
            "(no '/', no '..', not starting with '.'), e.g. name: my_zoo"
        )
    return name


@dataclass(frozen=True)
class MemberSpec:
    """One model to train: everything needed to reproduce it."""

    zoo: str
    task: str
    setting: str
    seed: int
    model: HookedTransformerConfig
    correspondence: Any  # interpeq.training.Correspondence
    train: Any  # interpeq.training.TrainConfig

    @property
    def id(self) -> str:
        return member_id(self.task, self.setting, self.seed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "zoo": self.zoo,
            "task": self.task,
            "setting": self.setting,
            "seed": self.seed,
            "model": self.model.to_dict(),
            "correspondence": self.correspondence.to_dict(),
            "train": self.train.to_dict(),
        }


@dataclass
class ZooSpec:
    name: str
    tasks: list[str]
    seeds: list[int]
    settings: list[str]
    model: dict[str, Any] = field(default_factory=dict)
    architectures: dict[str, list[Any]] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    task_train: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_model: dict[str, dict[str, Any]] = field(default_factory=dict)
    stacked: bool = True
    max_stack: int | None = None
    compile: str | None = None
    seed_namespace: str | None = None

    @property
    def seed_root(self) -> str:
        """What member seeds derive from besides task, setting and seed.

        Not the zoo's name (by default): a member is one model whatever zoo holds it, so
        renaming a zoo or copying a member's entry into another zoo keeps its seeds.
        ``seed_namespace: <old zoo name>`` reproduces the seeds of zoos trained before
        (when seeds derived from the name)."""
        return self.seed_namespace if self.seed_namespace is not None else DEFAULT_SEED_NAMESPACE

    @classmethod
    def from_yaml(cls, path: str | Path) -> ZooSpec:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"zoo config {str(path)!r} does not exist")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ValueError(f"zoo config {str(path)!r} is not valid YAML: {err}") from None
        return cls.from_dict(data, default_name=path.stem)

    @classmethod
    def from_dict(cls, data: Any, default_name: str = "zoo") -> ZooSpec:
        from interpeq.tasks import get_algorithm, list_algorithms, list_tasks
        from interpeq.training import resolve_task

        if not isinstance(data, dict):
            raise ValueError(
                "a zoo config must be a mapping with keys " + ", ".join(sorted(ZOO_KEYS))
            )
        unknown = sorted(set(data) - ZOO_KEYS - set(SECTION_KEYS))
        if unknown:
            raise ValueError(
                f"unknown zoo config keys {unknown}; valid keys: {sorted(ZOO_KEYS)} and the "
                f"experiment sections {list(SECTION_KEYS)}"
            )
        tasks = list(data.get("tasks") or [])
        for name in tasks:
            resolve_task(name)  # raises ValueError listing valid tasks
        for name in data.get("algorithms") or []:
            algo = get_algorithm(name)  # raises ValueError listing valid algorithms
            tasks.extend(stage_name(name, k) for k in range(len(algo.stages)))
        if not tasks:
            raise ValueError(
                f"a zoo needs 'tasks' or 'algorithms'; tasks: {list_tasks()}; algorithms: {list_algorithms()}"
            )
        settings = [str(s).upper() for s in data.get("settings", ["D"])]
        bad = [s for s in settings if s not in SETTINGS]
        if bad:
            raise ValueError(
                f"unknown zoo setting(s) {bad}; valid: "
                + "; ".join(f"{k} = {v}" for k, v in SETTINGS.items())
            )
        seeds = data.get("seeds", [0])
        if isinstance(seeds, int):
            seeds = list(range(seeds))
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise ValueError(f"'seeds' must be a list of ints or a count, got {seeds!r}")
        arch = dict(data.get("architectures") or {})
        bad_arch = sorted(set(arch) - ARCH_KEYS)
        if bad_arch:
            raise ValueError(f"unknown architecture keys {bad_arch}; valid: {sorted(ARCH_KEYS)}")
        if {"A", "B"} & set(settings) and not arch:
            raise ValueError(
                "settings A and B draw architectures: give 'architectures' ranges, e.g. {n_layers: [2, 3]}"
            )
        task_train = _task_overrides(data.get("task_train"), tasks, "task_train", _train_keys())
        task_model = _task_overrides(data.get("task_model"), tasks, "task_model", TASK_MODEL_KEYS)
        max_stack = data.get("max_stack")
        if max_stack is not None and (
            isinstance(max_stack, bool) or not isinstance(max_stack, int) or max_stack < 1
        ):
            raise ValueError(f"'max_stack' must be a positive int, got {max_stack!r}")
        compiled = compile_mode(data.get("compile"))
        namespace = data.get("seed_namespace")
        if namespace is not None and not isinstance(namespace, str):
            raise ValueError(f"'seed_namespace' must be a string, got {namespace!r}")
        spec = cls(
            name=check_zoo_name(data.get("name") or default_name),
            tasks=tasks,
            seeds=list(seeds),
            settings=settings,
            model=dict(data.get("model") or {}),
            architectures={k: list(v) if isinstance(v, list) else [v] for k, v in arch.items()},
            train=dict(data.get("train") or {}),
            task_train=task_train,
            task_model=task_model,
            stacked=bool(data.get("stacked", True)),
            max_stack=max_stack,
            compile=compiled,
            seed_namespace=namespace,
        )
        spec.base_model()  # validate early, before any training is spent
        for task_name in spec.tasks:
            spec.model_for(task_name)
            spec._check_train(task_name)
        return spec

    def _check_train(self, task_name: str) -> None:
        """One line for a bad training override of one entry, before any training."""
        from interpeq.tasks.names import parse_stage
        from interpeq.training import TrainConfig

        where = "train" if task_name not in self.tasks_with_train() else "task_train"
        try:
            cfg = TrainConfig.from_dict({**self.train_for(task_name), "seed": 0})
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where} of {task_name!r}: {err}") from None
        if cfg.pretrain_steps and not parse_stage(task_name):
            raise ValueError(
                f"{where} of {task_name!r}: pretrain_steps applies to algorithm stages (e.g. "
                f"algorithm_4/stage1), which pretrain on their task's own inputs; "
                f"{task_name!r} trains on its own inputs already"
            )

    def tasks_with_train(self) -> set[str]:
        """Member list entries that a ``task_train`` key applies to (error messages)."""
        from interpeq.training import resolve_task

        return {t for t in self.tasks if {t, resolve_task(t).task.name} & set(self.task_train)}

    def train_for(self, task_name: str) -> dict[str, Any]:
        """The training overrides of one member list entry: ``train``, then ``task_train``
        by catalogue task name, then by the exact entry."""
        from interpeq.training import resolve_task

        catalogue = resolve_task(task_name).task.name
        return {
            **self.train,
            **self.task_train.get(catalogue, {}),
            **self.task_train.get(task_name, {}),
        }

    def base_model(self) -> HookedTransformerConfig:
        return HookedTransformerConfig.from_dict(self.model)

    def model_for(self, task_name: str) -> HookedTransformerConfig:
        """The architecture of one member list entry: ``model``, then ``task_model`` by
        catalogue task name, then by the exact entry (as :meth:`train_for`)."""
        from interpeq.training import resolve_task

        catalogue = resolve_task(task_name).task.name
        changes = {**self.task_model.get(catalogue, {}), **self.task_model.get(task_name, {})}
        if not changes:
            return self.base_model()
        merged = {**self.model, **changes}
        if "d_head" not in changes and ({"d_model", "n_heads"} & set(changes)):
            base = self.base_model()
            d_model = merged.get("d_model", base.d_model)
            merged["d_head"] = max(1, d_model // merged.get("n_heads", base.n_heads))
        try:
            return HookedTransformerConfig.from_dict(merged)
        except (TypeError, ValueError) as err:
            raise ValueError(f"task_model[{task_name!r}] {changes}: {err}") from None

    def draw_architecture(self, task: str, setting: str, seed: int) -> HookedTransformerConfig:
        """A seeded architecture from the ranges, different from the base when the ranges allow."""
        base = self.model_for(task)
        rng = random.Random(stable_seed(self.seed_root, task, setting, seed, "arch"))
        for _ in range(32):
            changes = {
                key: rng.choice(values) for key, values in sorted(self.architectures.items())
            }
            if "d_head" not in self.architectures and (
                "d_model" in changes or "n_heads" in changes
            ):
                d_model = changes.get("d_model", base.d_model)
                n_heads = changes.get("n_heads", base.n_heads)
                changes["d_head"] = max(1, d_model // n_heads)
            cfg = base.replace(**changes)
            if not cfg.same_architecture(base):
                return cfg
        return cfg

    def members(self) -> list[MemberSpec]:
        from interpeq.training import (
            TrainConfig,
            default_correspondence,
            resolve_task,
            sample_correspondence,
        )

        out = []
        for task_name in self.tasks:
            task = resolve_task(task_name).task
            for setting in self.settings:
                for seed in self.seeds:
                    member_seed = stable_seed(self.seed_root, task_name, setting, seed)
                    cfg = self.model_for(task_name)
                    if setting in ("A", "B"):
                        cfg = self.draw_architecture(task_name, setting, seed)
                    cfg = cfg.replace(seed=member_seed)
                    if setting == "C":
                        corr = sample_correspondence(
                            task,
                            cfg,
                            seed=member_seed,
                            within_layer=default_correspondence(task, cfg),
                        )
                    elif setting == "B":
                        corr = sample_correspondence(task, cfg, seed=member_seed)
                    else:
                        corr = default_correspondence(task, cfg)
                    train = TrainConfig.from_dict(
                        {**self.train_for(task_name), "seed": member_seed}
                    )
                    out.append(MemberSpec(self.name, task_name, setting, seed, cfg, corr, train))
        ids = [m.id for m in out]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate member ids: list each task and seed once")
        return out


TASK_MODEL_KEYS = ARCH_KEYS | {"init_std"}


def _train_keys() -> set[str]:
    """The fields a ``task_train`` entry may override (TrainConfig's)."""
    import dataclasses

    from interpeq.training import TrainConfig

    return {f.name for f in dataclasses.fields(TrainConfig)}


def _task_overrides(
    data: Any, tasks: list[str], section: str, valid: set[str]
) -> dict[str, dict[str, Any]]:
    """Validate a per-task section (``task_model``): every key names a task of this zoo
    and maps to a mapping of ``valid`` keys; errors are one line naming the entry."""
    from interpeq.training import resolve_task

    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(
            f"'{section}' must map task names to overrides, e.g. "
            f"{{sort_descending: {{d_model: 64}}}}; got {data!r}"
        )
    names = set(tasks) | {resolve_task(t).task.name for t in tasks}
    out = {}
    for key, value in data.items():
        if key not in names:
            raise ValueError(
                f"{section} names {key!r}, which is not a task of this zoo; valid: {sorted(names)}"
            )
        if not isinstance(value, dict):
            raise ValueError(f"{section}[{key!r}] must be a mapping, got {value!r}")
        bad = sorted(set(value) - valid)
        if bad:
            raise ValueError(f"unknown {section}[{key!r}] keys {bad}; valid: {sorted(valid)}")
        out[str(key)] = dict(value)
    return out
