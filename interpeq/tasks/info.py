"""A table of every task, matched alternative and algorithm (for ``interpeq tasks``)."""

from __future__ import annotations

from typing import Any

from interpeq.tasks.base import Task
from interpeq.tasks.catalog import REGISTRY, get_task
from interpeq.tasks.compose import get_algorithm, list_algorithms
from interpeq.tasks.user import min_layers


def _row(task: Task, kind: str, stages: tuple[str, ...], source: str = "") -> dict[str, Any]:
    m = task.model
    return {
        "name": task.name,
        "kind": kind,
        "stages": stages,
        "variables": [(v, m[v].kind, m.depth(v)) for v in m.intermediate],
        "doc": task.doc.splitlines()[0] if task.doc else "",
        "min_layers": int(min_layers(m)),
        "file": source,
    }


def describe() -> list[dict[str, Any]]:
    """Rows ``{name, kind, stages, variables: [(name, kind, depth)], doc}``.

    ``kind`` is ``task``, ``matched`` (a behaviour-matched alternative), ``user`` (from
    a loaded task file, named in ``file``) or ``algorithm``; ``doc`` is the first line
    of the definition; ``min_layers`` the fewest layers that can hold it.
    """
    rows = [
        _row(get_task(n), "user" if s.source else s.kind, (n,), s.source)
        for n, s in REGISTRY.items()
    ]
    for name in list_algorithms():
        alg = get_algorithm(name)
        rows.append(_row(alg, "algorithm", tuple(s.name for s in alg.stages)))
    return rows
