"""A zoo trained data-parallel (``trainer.devices: N``, ``trainer.strategy: ddp``).

Lightning's ``ddp`` strategy starts ranks 1..N-1 by re-running the whole command (here
``interpeq zoo ...``) when rank 0 reaches its first ``Trainer.fit``. Every rank then
walks the same list of member groups and joins the same fits (each trains its shard of
every global batch, see :mod:`interpeq.training.datamodule`), but only rank 0 writes
the zoo folder: the other ranks get a :class:`RankStore` whose writes do nothing.

**One plan for all ranks.** Rank 0 decides the groups (what is finished, what resumes,
what stacks) before anything trains, writes them to ``.partial/ddp-plan-<pid>.json``
and names that file in the environment (``INTERPEQ_ZOO_PLAN``), which Lightning copies
into the ranks it starts; before each group it also sets ``INTERPEQ_ZOO_GROUP``. A
rank started during group ``k`` reads the plan and begins at group ``k``, so it never
re-decides from a folder that rank 0 has been changing (finished checkpoints loaded
without a fit, members moved into place before the ranks existed).

**Barriers.** Every fit and every held-out evaluation is deterministic and the same
on every rank (same weights), so the ranks take the same retry decisions; the only
extra barriers are after rank 0 clears a retry's work folder (so that no rank reads a
stale checkpoint there) and at the end of each zoo run (every member written before
any rank loads the zoo). Later zoo runs of the same command (tracked references train
first) get their plan by broadcast. Ranks > 0 stop after training (``interpeq zoo``
compares in rank 0 alone) and :func:`close` destroys the process group.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interpeq.devices import barrier
from interpeq.zoo.spec import MemberSpec
from interpeq.zoo.store import ZooStore, read_json, write_json_atomic

PLAN_ENV, GROUP_ENV, CALL_ENV = "INTERPEQ_ZOO_PLAN", "INTERPEQ_ZOO_GROUP", "INTERPEQ_ZOO_CALL"
DDP_STRATEGIES = (None, "auto", "ddp", "ddp_find_unused_parameters_true")
_calls = 0  # zoo runs of this command so far, on this rank (share_plan)


def processes(trainer_kwargs: dict[str, Any] | None) -> int:
    """How many processes the Trainer options ask for on this machine (1: no DDP)."""
    kw = trainer_kwargs or {}
    devices = kw.get("devices", 1)
    if isinstance(devices, (list, tuple)):
        return len(devices)
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    if devices in (-1, "auto"):
        import torch

        gpu = kw.get("accelerator", "auto") in ("auto", "gpu", "cuda")
        return torch.cuda.device_count() if gpu and torch.cuda.is_available() else 1
    return devices if isinstance(devices, int) and devices > 1 else 1


def check_ddp(trainer_kwargs: dict[str, Any] | None, launcher: str) -> None:
    """One-line refusals, before anything trains, of what a DDP zoo cannot do."""
    kw = trainer_kwargs or {}
    nodes = kw.get("num_nodes", 1)
    if isinstance(nodes, int) and nodes > 1:
        raise ValueError(
            f"trainer.num_nodes={nodes}: a DDP zoo runs on one machine; spread members over "
            "machines with --launcher ray --address <cluster> instead"
        )
    if processes(kw) < 2:
        return
    if launcher != "local":
        raise ValueError(
            f"trainer.devices={kw.get('devices')} with --launcher {launcher}: a Ray task trains "
            "on one device; use --launcher local for a DDP zoo, or trainer.devices=1 with Ray "
            "(one member group per GPU)"
        )
    strategy = kw.get("strategy")
    if strategy not in DDP_STRATEGIES:
        raise ValueError(
            f"trainer.strategy={strategy}: a zoo trains on several devices only with "
            "trainer.strategy=ddp (ranks re-run the command); use trainer.strategy=ddp"
        )


def rank() -> int:
    """This process's global rank: 0 unless Lightning started it as another rank."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0)))


class RankStore(ZooStore):
    """The zoo folder as a rank > 0 sees it: reads as usual, writes nothing."""

    writes = False

    def log_event(self, event: str, member_id: str, **extra: Any) -> None:
        return None

    def finish(self, spec_dict: dict[str, Any], metrics: dict[str, float], model) -> Path:
        return self.member_dir(spec_dict["id"])

    def update_index(self, member_id: str, spec_dict: dict, metrics: dict) -> None:
        return None

    def discard(self, member_id: str) -> Path:
        raise RuntimeError("a DDP rank > 0 never moves members aside (rank 0 does)")


def share_plan(
    store: ZooStore, groups: list[list[MemberSpec]], members: Sequence[MemberSpec]
) -> tuple[ZooStore, list[list[MemberSpec]]]:
    """``(store to write through, groups to train)`` for this rank, in this zoo run.

    Once the ranks run, rank 0 broadcasts its groups (as member ids). Before that, rank
    0 writes them to a plan file named in the environment, which Lightning copies into
    the ranks it starts; such a rank skips the zoo runs of the command that rank 0
    finished before starting it (``INTERPEQ_ZOO_CALL``: e.g. tracked references that
    were all trained) and begins at the group rank 0 was training (module doc)."""
    import torch.distributed as dist

    global _calls
    _calls += 1
    mine = None if rank() == 0 else RankStore(store.dir.parent, store.name)
    ids = [[m.id for m in g] for g in groups]
    if dist.is_available() and dist.is_initialized():
        box = [ids]
        dist.broadcast_object_list(box, src=0)
        ids, start = box[0], 0
    elif mine is None:
        path = store.partial_dir / f"ddp-plan-{os.getpid()}.json"
        write_json_atomic(path, ids)
        os.environ.update({PLAN_ENV: str(path), CALL_ENV: str(_calls), GROUP_ENV: "0"})
        return store, groups
    elif int(os.environ.get(CALL_ENV, 0)) > _calls:
        return mine, []  # rank 0 finished this run before it started the ranks
    elif os.environ.get(PLAN_ENV) and int(os.environ.get(CALL_ENV, 0)) == _calls:
        ids, start = read_json(Path(os.environ[PLAN_ENV])), int(os.environ.get(GROUP_ENV, 0))
    else:
        raise ValueError(
            f"DDP rank {rank()} has no zoo plan ({PLAN_ENV} unset): start 'interpeq zoo' "
            "once, as rank 0, and let Lightning start the other ranks"
        )
    by_id = {m.id: m for m in members}
    return mine or store, [[by_id[i] for i in g] for g in ids[start:]]


def mark_group(k: int) -> None:
    """Rank 0 is about to train group ``k`` (what a rank started now begins with)."""
    if rank() == 0:
        os.environ[GROUP_ENV] = str(k)


def end_run(store: ZooStore) -> None:
    """End of one zoo run: every rank waits until rank 0 has written every member; rank
    0 removes its plan file. The process group stays up for a next zoo run of the same
    command (tracked references train first); :func:`close` ends it."""
    barrier()
    if rank() == 0 and os.environ.get(PLAN_ENV, "").startswith(str(store.partial_dir)):
        Path(os.environ[PLAN_ENV]).unlink(missing_ok=True)


def close() -> None:
    """End of the command on this rank: destroy the process group, without waiting
    for the other ranks (rank 0 may still compare; ranks > 0 are done)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
