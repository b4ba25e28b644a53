"""Reference models of the equivalence tracker, from the forms users write.

A spec is a zoo member (``interpeq.zoo.Member``), a :class:`interpeq.zoo.Zoo` (all its
members), a path to a member folder or to a zoo folder, a zoo name under the root,
either with a selector ``"<zoo>:task=algorithm_1,setting=D,seed=0"`` (``task`` also
matches every stage of an algorithm), a dict ``{"zoo": ..., "task": ..., "setting":
..., "seed": ...}``, or a ``(model, correspondence)`` pair; or a list or mapping
``{group: spec}`` of these. Members flagged ``converged: false`` are left out (with a
warning naming them) unless ``include_unconverged=True``: a reference that never
learned its task would make every curve against it meaningless.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interpeq.tasks.names import path_safe
from interpeq.zoo.store import DEFAULT_ROOT, find_zoo

SELECTOR_KEYS = ("task", "setting", "seed")


@dataclass
class Reference:
    id: str
    group: str
    model: Any  # HookedTransformer
    correspondence: Any
    task: str | None = None


def _from_member(m: Any, group: str | None) -> Reference:
    return Reference(m.id, group or m.task_name, m.model, m.correspondence, m.task_name)


def _select(zoo: Any, selector: Mapping[str, Any], label: str, keep_unconverged: bool) -> list:
    task, setting, seed = (selector.get(k) for k in SELECTOR_KEYS)
    members = zoo.select(task=task, setting=setting)
    if seed is not None:
        members = [m for m in members if m.seed == int(seed)]
    if not members:
        raise ValueError(
            f"reference {label!r}: no member of zoo {zoo.name!r} matches task={task!r}, "
            f"setting={setting!r}, seed={seed!r}; tasks there: {sorted({m.task_name for m in zoo})}, "
            f"settings: {sorted({m.setting for m in zoo})}, seeds: {sorted({m.seed for m in zoo})}"
        )
    if keep_unconverged:
        return members
    dropped = [m.id for m in members if not m.converged]
    if dropped:
        warnings.warn(
            f"reference {label!r}: leaving out {len(dropped)} member(s) that did not converge "
            f"({', '.join(dropped[:5])}); include_unconverged=True "
            "(tracking.include_unconverged: true) keeps them",
            RuntimeWarning,
            stacklevel=2,
        )
    kept = [m for m in members if m.id not in dropped]
    if not kept:
        raise ValueError(
            f"reference {label!r}: every matching member of zoo {zoo.name!r} missed its "
            "thresholds (converged: false); retrain them (a zoo YAML's retry: section) or keep "
            "them with include_unconverged=True (tracking.include_unconverged: true)"
        )
    return kept


def _parse_selector(text: str, label: str) -> dict[str, str]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq or key not in SELECTOR_KEYS:
            raise ValueError(
                f"reference {label!r}: bad selector {part!r}; use "
                "task=<name>,setting=<D|A|C|B>,seed=<int>"
            )
        out[key] = value
    return out


def _resolve_one(spec: Any, group: str | None, root: Path, keep: bool) -> list[Reference]:
    from interpeq.zoo import Member, Zoo

    if isinstance(spec, Member):
        return [_from_member(spec, group)]
    if isinstance(spec, Zoo):
        return [_from_member(m, group) for m in spec]
    if isinstance(spec, tuple) and len(spec) == 2 and hasattr(spec[0], "cfg"):
        return [Reference(group or "reference", group or "reference", spec[0], spec[1])]
    if isinstance(spec, Mapping):
        if "zoo" not in spec:
            raise ValueError(
                f"reference {dict(spec)!r}: a dict needs a 'zoo' key (plus task/setting)"
            )
        path = find_zoo(spec["zoo"], root)
        if path is None:
            raise ValueError(
                f"reference zoo {spec['zoo']!r} does not exist (nor under {str(root)!r})"
            )
        zoo = Zoo.load(path)
        return [_from_member(m, group) for m in _select(zoo, spec, str(spec), keep)]
    if isinstance(spec, (str, Path)):
        text = str(spec)
        selector: dict[str, str] = {}
        head, sep, tail = text.rpartition(":")
        if sep and "=" in tail:
            text, selector = head, _parse_selector(tail, str(spec))
        path = Path(text)
        if path.is_dir() and (path / "member.json").is_file():
            zoo = Zoo.load(path.parent)
            return [_from_member(zoo[path.name], group)]
        zpath = find_zoo(text, root)
        if zpath is None:
            raise ValueError(
                f"reference {str(spec)!r} does not exist: give a zoo member folder, a zoo folder, "
                f"a zoo name under {str(root)!r} (optionally ':task=...,setting=...'), or a Member"
            )
        zoo = Zoo.load(zpath)
        return [_from_member(m, group) for m in _select(zoo, selector, str(spec), keep)]
    if isinstance(spec, Sequence):
        return [r for s in spec for r in _resolve_one(s, group, root, keep)]
    raise ValueError(
        f"cannot use {type(spec).__name__} as a reference; give a path, zoo name, Member, Zoo, "
        "dict(zoo=..., task=..., setting=...) or (model, correspondence)"
    )


def resolve_references(
    references: Any, root: str | Path = DEFAULT_ROOT, *, include_unconverged: bool = False
) -> dict[str, list[Reference]]:
    """``{group: [Reference, ...]}`` from the accepted forms (see the module doc)."""
    keep = include_unconverged
    root = Path(root)
    if isinstance(references, Mapping) and "zoo" not in references:
        refs = [r for g, spec in references.items() for r in _resolve_one(spec, str(g), root, keep)]
    else:
        refs = _resolve_one(references, None, root, keep)
    if not refs:
        raise ValueError("no reference models given")
    groups: dict[str, list[Reference]] = {}
    for r in refs:
        r.group = path_safe(r.group)
        groups.setdefault(r.group, []).append(r)
    return groups
