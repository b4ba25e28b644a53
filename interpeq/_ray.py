"""Ray, for the two places that scale out: the zoo launcher and the distributed compare.

One copy of what both need: connecting (a running session, a cluster address, or a
small local Ray), a bounded map of jobs over Ray tasks (at most ``limit`` in flight,
results in job order, queued work cancelled on failure or Ctrl-C), and the set-up a
task does on its worker (torch threads = the CPUs Ray assigned it; its GPU when Ray
assigned one and CUDA sees it). Ray is optional (``pip install 'interpeq[ray]'``):
nothing imports it until a launcher asks for it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

LAUNCHERS = ("local", "ray")  # where zoo members and comparison blocks run
RAY_INSTALL_HINT = "pip install 'interpeq[ray]'"
# interpeq's Ray objects are small (member specs, metrics, representations): a local
# Ray needs no large shared-memory object store (Ray's default is 30% of the RAM).
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2


def require_ray():
    """``import ray``, or a ValueError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError(
            f"the Ray launcher needs Ray, which is not installed: {RAY_INSTALL_HINT}"
        ) from None
    return ray


def connect_ray(
    *,
    num_cpus: float | None = None,
    address: str | None = None,
    object_store_memory: int | None = LOCAL_OBJECT_STORE_BYTES,
) -> tuple[Any, bool]:
    """``(ray, started)``: a running Ray session as is, else a connection to ``address``
    (or ``$RAY_ADDRESS``), else a new local Ray (``num_cpus``; no dashboard, no usage
    stats, worker logs kept in Ray's session folder, the GPUs it detects).
    ``started`` says whether this call initialised Ray."""
    ray = require_ray()
    if ray.is_initialized():
        return ray, False
    address = address or os.environ.get("RAY_ADDRESS") or None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env_vars = {k: v for k, v in os.environ.items() if k.startswith(("WANDB_", "INTERPEQ_")) and v}
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": "WARNING",
        "runtime_env": {"env_vars": env_vars} if env_vars else None,
    }
    if address:
        kwargs["address"] = address
    else:
        kwargs.update(num_cpus=num_cpus, object_store_memory=object_store_memory)
    ray.init(**kwargs)
    return ray, True


@contextlib.contextmanager
def ray_session(**kwargs: Any) -> Iterator[Any]:
    """:func:`connect_ray` as a context: shuts down only a Ray it started."""
    ray, started = connect_ray(**kwargs)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def check_resources(ray: Any, what: str, **need: float) -> None:
    """A clear error when one task asks for more of a resource than the cluster has
    (Ray would otherwise wait forever): ``need`` maps ``CPU`` / ``GPU`` to amounts."""
    have = ray.cluster_resources()
    for kind, amount in need.items():
        if amount and have.get(kind, 0) < amount:
            raise ValueError(
                f"each {what} asks for {amount:g} {kind}(s) but the Ray cluster has "
                f"{have.get(kind, 0):g}: no {what} could ever be placed"
            )


def bounded_map(
    ray: Any,
    task: Any,
    jobs: Sequence[tuple],
    limit: int,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """``task.remote(*job)`` for every job, at most ``limit`` in flight; the results in
    job order. ``on_result(k, result)`` runs on the driver as each job ``k`` returns.
    On any failure (or Ctrl-C) what is still running is cancelled and nothing queued
    starts."""
    out: list[Any] = [None] * len(jobs)
    queue, pending = list(enumerate(jobs)), {}
    try:
        while queue or pending:
            while queue and len(pending) < max(1, limit):
                k, job = queue.pop(0)
                pending[task.remote(*job)] = k
            done, _ = ray.wait(list(pending), num_returns=1)
            k = pending.pop(done[0])
            out[k] = ray.get(done[0])
            if on_result is not None:
                on_result(k, out[k])
    finally:
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref)
    return out


def in_task_setup() -> tuple[dict[str, float], list[str], bool]:
    """Inside a Ray task: torch threads = the CPUs Ray assigned it. Returns
    ``(assigned resources, GPU ids, use CUDA)``; CUDA only when Ray assigned a GPU and
    torch sees one, so fake GPU resources on a CPU machine schedule but never touch it."""
    import ray
    import torch

    assigned = ray.get_runtime_context().get_assigned_resources()
    torch.set_num_threads(max(1, int(assigned.get("CPU", 1))))
    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    return assigned, gpu_ids, bool(gpu_ids) and torch.cuda.is_available()
