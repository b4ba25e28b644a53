"""Task files: a user's own tasks and interpretations, loaded only on request.

A task file is plain Python that registers builders with
:func:`interpeq.tasks.catalog.register` (see ``examples/my_task.py`` and
``docs/your-task.md``). It runs code, so it is loaded only by an explicit action of
the person at the keyboard (``--tasks <file>`` on ``interpeq tasks`` / ``zoo`` /
``compare``, or :func:`load_task_file`), never because a zoo YAML or a zoo folder
names a task: those are shared between labs, and reading them must not run code.

A zoo trained with a task file records the file's name and SHA-256 (``index.json``
``task_files``, each member's ``member.json`` ``task_file``); :func:`check_recorded`
turns a later run without the file, or with other content, into one line naming the
file, both hashes and the fix. Every failure while loading (a syntax error, an
exception at import, an interpretation that fails validation) is one ``ValueError``
line naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import sys
import traceback
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from interpeq.tasks import catalog
from interpeq.tasks.base import INPUT, OUTPUT, CausalModel, Task, Variable
from interpeq.tasks.compose import list_algorithms


@dataclass(frozen=True)
class TaskFile:
    """A loaded task file: where it is, its content hash and the tasks it registered."""

    path: Path
    sha256: str
    tasks: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.path.name

    def record(self) -> dict[str, Any]:
        """What a zoo stores about the file (no path: zoos move between machines)."""
        return {"name": self.name, "sha256": self.sha256, "tasks": list(self.tasks)}


_FILES: dict[Path, TaskFile] = {}  # resolved path -> the file's latest load


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_task_file(path: str | Path) -> TaskFile:
    """Run a task file and validate every task it registers; returns what it added.

    Loading the same file again replaces its tasks (an edited file is re-read). On any
    failure the file's tasks are removed again and a one-line ``ValueError`` names the
    file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"task file {str(path)!r} does not exist (--tasks takes a .py file)")
    if path.suffix != ".py":
        raise ValueError(f"task file {str(path)!r}: expected a Python file ending in .py")
    source = path.read_bytes()
    key = path.resolve()
    if key in _FILES:
        _unregister(_FILES.pop(key).tasks)
    before = set(catalog.REGISTRY)
    try:
        _execute(path, source)
        added = tuple(n for n in catalog.REGISTRY if n not in before)
        if not added:
            raise ValueError(
                f"task file {path}: registers no task; decorate a builder with "
                "@register('my_task') from interpeq.tasks.catalog"
            )
        for name in added:
            if name in list_algorithms():
                raise ValueError(
                    f"task file {path.name}: task {name!r} clashes with the shipped algorithm "
                    "of that name; rename it"
                )
            validate_task(name, path.name)
    except BaseException:
        _unregister([n for n in catalog.REGISTRY if n not in before])
        raise
    loaded = TaskFile(path, hashlib.sha256(source).hexdigest(), added)
    _FILES[key] = loaded
    _clear_caches()
    return loaded


def load_task_files(paths: Iterable[str | Path] | None) -> list[TaskFile]:
    """:func:`load_task_file` for each of ``paths`` (``--tasks`` may repeat)."""
    return [load_task_file(p) for p in paths or []]


def unload_task_files() -> None:
    """Forget every loaded task file and its tasks (tests; a long-lived session)."""
    for loaded in _FILES.values():
        _unregister(loaded.tasks)
    _FILES.clear()
    _clear_caches()


def loaded_files() -> list[TaskFile]:
    return list(_FILES.values())


def file_of(task_name: str) -> TaskFile | None:
    """The loaded task file that defines ``task_name`` (``None``: a shipped task)."""
    return next((f for f in _FILES.values() if task_name in f.tasks), None)


def _execute(path: Path, source: bytes) -> None:
    """Run the file as a module of its own; exceptions become one line with the line number."""
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as err:
        raise ValueError(
            f"task file {path}: syntax error at line {err.lineno}: {err.msg}"
        ) from None
    module = types.ModuleType(f"interpeq_task_file_{path.stem}")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module  # dataclasses and pickling look modules up here
    catalog.LOADING.append(path.name)
    try:
        exec(code, module.__dict__)
    except ValueError as err:
        if str(err).startswith(f"task file {path.name}"):
            raise  # a register() error: already names the file
        raise ValueError(f"task file {path}: {_where(err, path)}{err}") from None
    except Exception as err:
        raise ValueError(
            f"task file {path}: {type(err).__name__} while importing it, {_where(err, path)}{err}"
        ) from None
    finally:
        catalog.LOADING.pop()


def _where(err: BaseException, path: Path) -> str:
    lines = [f.lineno for f in traceback.extract_tb(err.__traceback__) if f.filename == str(path)]
    return f"line {lines[-1]}: " if lines else ""


def _unregister(names: Iterable[str]) -> None:
    for name in list(names):
        spec = catalog.REGISTRY.get(name)
        if spec is not None and spec.source:
            del catalog.REGISTRY[name]
    _clear_caches()


def _clear_caches() -> None:
    """Forget tasks built from an earlier version of a file (``get_task`` caches)."""
    catalog.get_task.cache_clear()
    config = sys.modules.get("interpeq.training.config")
    if config is not None:
        config.resolve_task.cache_clear()


# ------------------------------------------------------------------ validation


def validate_task(name: str, source: str) -> Task:
    """Build a registered task at the default sizes and run it once on samples.

    Catches, in one line naming the file and task: a builder that does not return
    :class:`Variable` s, an interpretation the causal model refuses (unknown parent,
    cycle, a kind no component has), and outputs that are not tokens.
    """
    where = f"task file {source}: task {name!r}"
    spec = catalog.REGISTRY[name]
    try:
        variables = spec.build(catalog.SEQ_LEN - 1, catalog.N_VALUES)
        if not isinstance(variables, (list, tuple)) or not all(
            isinstance(v, Variable) for v in variables
        ):
            raise ValueError(
                f"the builder must return a list of Variable, got {type(variables).__name__}"
            )
        task = Task(name, CausalModel(variables), spec.sampler, doc=spec.doc)
        tokens = task.sample(8, seed=0)
        values = task.run(tokens)
        labels = task.labels(tokens)
    except Exception as err:
        raise ValueError(f"{where}: {' '.join(str(err).split()) or type(err).__name__}") from None
    for var, value in values.items():
        if not isinstance(value, torch.Tensor) or value.shape[:1] != tokens.shape[:1]:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(
                f"{where}: variable {var!r} must give a [batch, ...] tensor, got {shape}"
            )
    out = labels[:, 1:]
    if out.shape != tokens[:, 1:].shape or bool(((out < 0) | (out >= task.d_vocab_out)).any()):
        raise ValueError(
            f"{where}: 'output' must be [batch, L] tokens in 0..{task.d_vocab_out - 1}, got "
            f"shape {tuple(out.shape)}, values {sorted(set(out.flatten().tolist()))[:8]}"
        )
    return task


def earliest_stages(model: CausalModel, attn_only: bool = False) -> dict[str, float]:
    """The earliest forward-pass stage each variable can sit at under the correspondence's
    depth and kind rules (:mod:`interpeq.training.correspondence`): a head at ``2 *
    layer``, an MLP at ``2 * layer + 1``, strictly after its parents. ``inf``: an
    ``mlp`` variable in an attention-only model."""
    stages: dict[str, float] = {INPUT: -1}
    for var in model.variables:
        s = 1 + max(stages[p] for p in var.parents)
        if var.kind == "attn" and s % 2:
            s += 1
        elif var.kind == "mlp":
            s = float("inf") if attn_only else s + (s % 2 == 0)
        stages[var.name] = s
    return stages


def min_layers(model: CausalModel, attn_only: bool = False) -> float:
    """The fewest layers a model needs to hold the interpretation (``inf``: never)."""
    return max(earliest_stages(model, attn_only).values()) // 2 + 1


def check_reachable(task: Task, cfg: Any) -> None:
    """One line when ``cfg`` (a model config) cannot hold ``task``'s interpretation:
    a variable deeper than its layers allow, or an ``mlp`` variable without MLPs."""
    attn_only = bool(getattr(cfg, "attn_only", False))
    loaded = file_of(task.name)
    where = f"task file {loaded.name}: task {task.name!r}" if loaded else f"task {task.name!r}"
    stages = earliest_stages(task.model, attn_only)
    for var in (*task.model.intermediate, OUTPUT):
        if stages[var] == float("inf"):
            raise ValueError(
                f"{where}: variable {var!r} has kind 'mlp' but the model is attention-only "
                "(attn_only: true); give it kind 'attn' or 'any', or a model with MLPs"
            )
        if stages[var] // 2 + 1 > cfg.n_layers:
            chain = _deepest_chain(task.model, var)
            raise ValueError(
                f"{where}: variable {var!r} (depth {task.model.depth(var)}: {chain}) needs "
                f"at least {int(stages[var] // 2 + 1)} layers but the model has {cfg.n_layers} "
                "(a head reads only earlier layers, an MLP the heads of its own layer and "
                "earlier); add layers (model.n_layers) or shorten the chain"
            )


def _deepest_chain(model: CausalModel, var: str) -> str:
    chain = [var]
    while chain[-1] != INPUT:
        parents = model[chain[-1]].parents
        chain.append(max(parents, key=model.depth))
    return " <- ".join(f"{n}:{model[n].kind}" if n != INPUT else n for n in chain)


# ------------------------------------------------------------- zoo records


def check_recorded(records: Mapping[str, Any], zoo: str, command: str) -> None:
    """One line when a zoo's recorded task files (``index.json`` ``task_files``:
    name -> ``{sha256, tasks}``) are not loaded now, or were loaded with other content."""
    for fname, rec in records.items():
        want = str(rec.get("sha256", ""))
        tasks = list(rec.get("tasks") or [])
        candidates = [f for f in _FILES.values() if set(tasks) & set(f.tasks)]
        candidates = candidates or [f for f in _FILES.values() if f.name == fname]
        if not candidates:
            raise ValueError(
                f"zoo {zoo!r} was trained with task file {fname} (sha256 {want[:16]}, tasks "
                f"{tasks}); pass it: {command} --tasks {fname} (task files are never loaded "
                "from a zoo or a YAML)"
            )
        have = candidates[0]
        if have.sha256 != want:
            raise ValueError(
                f"task file {have.path} has sha256 {have.sha256[:16]} but zoo {zoo!r} was "
                f"trained with {fname} sha256 {want[:16]}: the file changed since training; "
                "pass the file the zoo was trained with, or train the changed tasks into a "
                "new zoo (another 'name:' in the YAML)"
            )


def missing_task_error(name: str, records: Mapping[str, Any], command: str) -> ValueError:
    """The error for a task name that is neither shipped nor loaded (a YAML names it)."""
    for fname, rec in records.items():
        if name in (rec.get("tasks") or []):
            return ValueError(
                f"task {name!r} is defined in task file {fname} (sha256 "
                f"{str(rec.get('sha256', ''))[:16]}, recorded by the zoo); pass it: {command} "
                f"--tasks {fname} (a zoo YAML never loads code)"
            )
    return ValueError(
        f"unknown task {name!r}: not a shipped task ({', '.join(catalog.list_tasks())}) nor one "
        f"of a loaded task file; if a task file defines it, pass {command} --tasks <file> "
        "(a zoo YAML never loads code)"
    )
