"""A table of every task, matched alternative and algorithm (for ``interpeq tasks``)."""

from __future__ import annotations

from typing import Any

from interpeq.tasks.base import Task
from interpeq.tasks.catalog import REGISTRY, get_task
from interpeq.tasks.compose import get_algorithm, list_algorithms


def _row(task: Task, kind: str, stages: tuple[str, ...]) -> dict[str, Any]:
    m = task.model
    return {
        "name": task.name,
        "kind": kind,
        "stages": stages,
        "variables": [(v, m[v].kind, m.depth(v)) for v in m.intermediate],
        "doc": task.doc.splitlines()[0] if task.doc else "",
    }


def describe() -> list[dict[str, Any]]:
    """Rows ``{name, kind, stages, variables: [(name, kind, depth)], doc}``.

    ``kind`` is ``task``, ``matched`` (a behaviour-matched alternative) or
    ``algorithm``; ``doc`` is the first line of the definition.
    """
    rows = [_row(get_task(n), s.kind, (n,)) for n, s in REGISTRY.items()]
    for name in list_algorithms():
        alg = get_algorithm(name)
        rows.append(_row(alg, "algorithm", tuple(s.name for s in alg.stages)))
    return rows
