"""Launchers: where the members of a zoo train.

``local`` (default) trains one member (or stacked group) after another in this process
(:func:`interpeq.zoo.runner.run_zoo`). ``ray`` turns each member, or each stacked group
of members (:func:`interpeq.zoo.train.stack_groups`: the same groups as ``local``, so
the same metrics for the same seeds), into one Ray task with ``num_cpus`` /
``num_gpus`` resources. Without an address Ray starts on this machine
(``ray.init(num_cpus=workers * cpus_per_member)``, no dashboard, worker logs not
forwarded); with ``address`` (``auto``, ``HOST:6379`` or ``ray://HOST:10001``) the
tasks run on an existing Ray cluster, as many nodes and GPUs as it has.

**The zoo folder stays the single source of truth.** A Ray task calls the same
:func:`~interpeq.zoo.train.train_member` / :func:`~interpeq.zoo.train.train_stacked`
as the local runner, so it checkpoints into ``.partial/<member>`` and moves the
finished member into place with one atomic ``os.replace``; a rerun skips finished
members and resumes interrupted ones from their last checkpoint, whichever launcher
ran them. On a cluster the zoo root must be on a filesystem every node mounts at
the same path (NFS, Lustre, ...).

**Concurrent writers.** Several tasks write into one zoo folder at once:

* member folders: each task writes only its own ``.partial/<member>`` and
  ``<member>`` folders; the final rename is atomic;
* ``index.json`` is a read-modify-write, which two writers would race on (both read
  the old index, each adds its member, the last rename wins and drops the other's
  entry). So a task never writes it (:class:`WorkerStore`): the **driver** is the
  only writer, adding each member from the metrics the task returns. A driver killed
  between a member's rename and its index entry leaves a finished member outside the
  index; :func:`reconcile_index` (run at the start and end of every Ray launch) adds
  every finished member folder missing from the index, from its own files;
* ``events.jsonl`` is append-only: each task appends whole lines under an exclusive
  ``flock`` of ``.events.lock`` (one ``O_APPEND`` write is atomic on a local disk, not
  on every network filesystem; the lock makes it so on NFS, which maps ``flock`` to
  its byte-range locks);
* one driver per zoo folder: a Ray launch holds an exclusive ``flock`` on
  ``.driver.lock`` and refuses to start while another holds it (the kernel releases
  the lock of a killed driver).

Each task also appends a ``placed`` event per member with the Ray node, the assigned
resources and GPU ids (an audit of placement). A task trains on its GPU when Ray
assigned it one and CUDA sees it; otherwise on CPU (``accelerator="cpu"``), so fake
GPU resources (``ray.init(num_gpus=4)`` on a CPU machine) schedule but never touch
CUDA. A Ray worker process that dies mid-task (killed, out of memory) makes Ray retry
the task (``max_retries``), which resumes from the member's last checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from interpeq._ray import (
    LAUNCHERS,
    bounded_map,
    check_resources,
    in_task_setup,
    ray_session,
    require_ray,
)
from interpeq.zoo.spec import MemberSpec
from interpeq.zoo.store import ZooStore, read_json
from interpeq.zoo.train import GroupRun, train_group

TASK_RETRIES = 2


# ----------------------------------------------------------------------------- checks


def check_launcher(
    launcher: str,
    workers: int | None = None,
    gpus_per_member: float | None = None,
    address: str | None = None,
    cpus_per_member: float = 1.0,
) -> None:
    """Clear errors for a bad launcher configuration, before anything starts."""
    if launcher not in LAUNCHERS:
        raise ValueError(f"unknown launcher {launcher!r}; choose one of {list(LAUNCHERS)}")
    if workers is not None and (
        not isinstance(workers, int) or isinstance(workers, bool) or workers < 1
    ):
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    for name, value in (("gpus_per_member", gpus_per_member), ("cpus_per_member", cpus_per_member)):
        if value is None and name == "gpus_per_member":  # default: see member_gpus
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if cpus_per_member == 0 and not gpus_per_member:
        raise ValueError("a member needs some resources: cpus_per_member or gpus_per_member > 0")
    if launcher == "local":
        extra = []
        if workers not in (None, 1):
            extra.append(f"workers={workers}")
        if gpus_per_member:
            extra.append(f"gpus_per_member={gpus_per_member}")
        if address:
            extra.append(f"address={address!r}")
        if extra:
            raise ValueError(
                f"{', '.join(extra)} need(s) the Ray launcher (--launcher ray); the local "
                "launcher trains one member at a time in this process"
            )


# ----------------------------------------------------------------------------- store


class WorkerStore(ZooStore):
    """A :class:`ZooStore` for one of several concurrent writers (see the module doc):
    never writes ``index.json`` (the driver does) and appends events under a lock."""

    def update_index(self, member_id: str, spec_dict: dict, metrics: dict) -> None:
        return None

    def log_event(self, event: str, member_id: str, **extra: Any) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with _flock(self.dir / ".events.lock"):
            super().log_event(event, member_id, **extra)


@contextlib.contextmanager
def _flock(path, *, blocking: bool = True) -> Iterator[bool]:
    """An exclusive ``flock`` on ``path`` (created); yields whether it was acquired."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        yield True
        return
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def reconcile_index(store: ZooStore, members: Sequence[MemberSpec]) -> list[str]:
    """Add every finished member folder missing from ``index.json`` (from the member's
    own ``member.json`` / ``metrics.json``); returns the ids added."""
    index = store.read_index()["members"] if (store.dir / "index.json").exists() else {}
    added = []
    for m in members:
        if m.id not in index and store.is_finished(m.id):
            mdir = store.member_dir(m.id)
            store.update_index(
                m.id, read_json(mdir / "member.json"), read_json(mdir / "metrics.json")
            )
            added.append(m.id)
    return added


# ----------------------------------------------------------------------------- ray


def _train_group_task(
    group: Sequence[MemberSpec], root: str, name: str, run: GroupRun
) -> list[tuple[dict, dict]]:
    """Body of one Ray task: train a member (or stacked group) into the zoo folder and
    return ``(member.json, metrics)`` per member for the driver to index."""
    import dataclasses
    import logging

    import ray

    if not os.environ.get("INTERPEQ_VERBOSE"):
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    store = WorkerStore(root, name)
    ctx = ray.get_runtime_context()
    assigned, gpu_ids, on_gpu = in_task_setup()
    device = {"accelerator": "gpu", "devices": 1} if on_gpu else {"accelerator": "cpu"}
    run = dataclasses.replace(run, trainer_kwargs={**(run.trainer_kwargs or {}), **device})
    # A retry (the first attempt's worker died) skips members the attempt finished; the
    # rest of a stacked group then resume alone from their own checkpoints.
    todo = [m for m in group if not store.is_finished(m.id)]
    for m in todo:
        store.log_event(
            "placed",
            m.id,
            node=ctx.get_node_id(),
            host=socket.gethostname(),
            resources=assigned,
            gpu_ids=gpu_ids,
            accelerator="gpu" if on_gpu else "cpu",
        )
    failed = train_or_split(todo, store, run, whole=len(todo) == len(group))
    out = []
    for m in group:
        if m.id in failed:
            out.append(({"id": m.id, "failed": failed[m.id]}, None))
            continue
        mdir = store.member_dir(m.id)
        out.append((read_json(mdir / "member.json"), read_json(mdir / "metrics.json")))
    return out


def is_oom(err: BaseException) -> bool:
    """A CUDA out-of-memory error (its own class in recent torch, a RuntimeError before)."""
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(err, oom) or (
        isinstance(err, RuntimeError) and "CUDA out of memory" in str(err)
    )


def _train(todo: list[MemberSpec], store: ZooStore, run: GroupRun, whole: bool) -> None:
    if len(todo) > 1 and whole:
        train_group(todo, store, run)
    else:  # what a first attempt left: each resumes alone from its own checkpoint
        for member in todo:
            train_group([member], store, run)


def train_or_split(
    todo: list[MemberSpec], store: ZooStore, run: GroupRun, whole: bool = True
) -> dict[str, str]:
    """Train ``todo`` (a stacked group, or members alone); on a CUDA out-of-memory error
    retry once as two stacks of half the size, and report the members that still do
    not fit as failed (``{id: reason}``, a ``failed`` event each) instead of failing
    the task: Ray would retry it as it was, and the driver would cancel the launch."""
    try:
        _train(todo, store, run, whole)
        return {}
    except Exception as err:
        if not is_oom(err):
            raise
        reason = f"CUDA out of memory with {len(todo)} member(s) on this GPU"
    _free_cuda(todo, store)
    half = (len(todo) + 1) // 2
    for part in [todo[:half], todo[half:]] if len(todo) > 1 else []:
        part = [m for m in part if not store.is_finished(m.id)]
        if not part:
            continue
        try:
            store.log_event("oom_retry", part[0].id, stacked=len(part), before=len(todo))
            _train(part, store, run, whole=True)
        except Exception as err:
            if not is_oom(err):
                raise
            _free_cuda(part, store)
    failed = {m.id: reason for m in todo if not store.is_finished(m.id)}
    for member_id, why in failed.items():
        store.log_event("failed", member_id, error=why)
    return failed


def _free_cuda(group: Sequence[MemberSpec], store: ZooStore) -> None:
    """After an out-of-memory error: drop the failed stack's work folder and cached
    CUDA blocks so that the smaller retry starts clean."""
    import gc
    import shutil

    import torch

    from interpeq.zoo.train import _stack_dir

    if len(group) > 1:
        shutil.rmtree(_stack_dir(group, store), ignore_errors=True)
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def member_gpus(gpus_per_member: float | None, say: Callable[[str], None] | None = None) -> float:
    """GPUs per member task: the user's value, else one GPU per task where the driver
    sees CUDA (said once) and none on a CPU machine."""
    if gpus_per_member is not None:
        return gpus_per_member
    import torch

    if not torch.cuda.is_available():
        return 0.0
    (say or _stderr)(
        f"ray: CUDA is available ({torch.cuda.device_count()} GPU(s) here): one GPU per "
        "member task (one member or stacked group each); --gpus-per-member 0.5 packs two"
    )
    return 1.0


def _stderr(text: str) -> None:
    import sys

    print(text, file=sys.stderr)


def run_groups_ray(
    groups: Sequence[Sequence[MemberSpec]],
    store: ZooStore,
    members: Sequence[MemberSpec],
    *,
    workers: int | None = None,
    gpus_per_member: float | None = None,
    cpus_per_member: float = 1.0,
    address: str | None = None,
    run: GroupRun | None = None,
    on_done: Callable[[Sequence[MemberSpec]], None] | None = None,
) -> dict[str, str]:
    """Train ``groups`` as Ray tasks (at most ``workers`` in flight), index each member
    as its task returns, and reconcile the index with the folder (module doc); returns
    the members that failed (CUDA out of memory even in a smaller stack): id -> reason.
    ``gpus_per_member=None``: one GPU per task where CUDA is available (:func:`member_gpus`)."""
    check_launcher("ray", workers, gpus_per_member, address, cpus_per_member)
    gpus_per_member = member_gpus(gpus_per_member) if groups else 0.0
    failed: dict[str, str] = {}
    require_ray()
    store.dir.mkdir(parents=True, exist_ok=True)
    with _flock(store.dir / ".driver.lock", blocking=False) as mine:
        if not mine:
            raise ValueError(
                f"another 'interpeq zoo' is training into {store.dir} (it holds "
                f"{store.dir / '.driver.lock'}); run one driver per zoo folder"
            )
        reconcile_index(store, members)
        if groups:
            n_cpus = workers if workers is not None else (os.cpu_count() or 1)
            with ray_session(num_cpus=n_cpus * cpus_per_member, address=address) as ray:
                _run(
                    ray,
                    groups,
                    store,
                    workers=workers,
                    gpus_per_member=gpus_per_member,
                    cpus_per_member=cpus_per_member,
                    run=run or GroupRun(),
                    on_done=on_done,
                    failed=failed,
                )
        reconcile_index(store, members)
    for member_id, why in failed.items():
        _stderr(f"ray: member {member_id} failed: {why}; rerun to retry it (or lower max_stack)")
    return failed


def _run(
    ray,
    groups,
    store,
    *,
    workers,
    gpus_per_member,
    cpus_per_member,
    run,
    on_done,
    failed,
) -> None:
    check_resources(ray, "member", GPU=gpus_per_member, CPU=cpus_per_member)
    task = ray.remote(_train_group_task).options(
        num_cpus=cpus_per_member,
        num_gpus=gpus_per_member,
        max_retries=TASK_RETRIES,
        retry_exceptions=False,
        name="interpeq-zoo-member",
    )
    root = str(store.dir.parent.resolve())  # workers may run elsewhere
    jobs = [(list(g), root, store.name, run) for g in groups]

    def index(k: int, rows: list[tuple[dict, dict]]) -> None:
        for spec_dict, metrics in rows:
            if metrics is None:
                failed[spec_dict["id"]] = spec_dict["failed"]
                continue
            store.update_index(spec_dict["id"], spec_dict, metrics)
        if on_done is not None:
            on_done(groups[k])

    bounded_map(ray, task, jobs, workers if workers is not None else len(jobs), index)
