"""What the step-time benchmarks share: a stack of default-size members on a device,
and the median seconds per optimiser step (synchronised on CUDA, so a figure is the
step's wall time and not the time to queue its kernels)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from interpeq.models import HookedTransformerConfig
from interpeq.tasks import list_tasks
from interpeq.training import TrainConfig, resolve_task, sample_correspondence
from interpeq.training.stacked import StackedSIITModule, _stack

REPO = Path(__file__).resolve().parents[1]


def worktree(ref: str) -> Path:
    """A git worktree of ``ref`` (the code before a change), made once under the temp folder."""
    tree = Path(tempfile.gettempdir()) / f"interpeq_before_{ref}"
    if not tree.exists():
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), ref],
            check=True, capture_output=True,
        )  # fmt: skip
    return tree


def run_in_tree(tree: Path, bench: str, call: str) -> dict:
    """``bench.call`` (a benchmark module of this folder and a call returning a dict)
    in a fresh interpreter that imports ``interpeq`` from ``tree``; its result."""
    here = str(Path(__file__).resolve().parent)
    code = (
        f"import sys; sys.path.insert(0, {str(tree)!r}); sys.path.insert(0, {here!r}); "
        f"import json, {bench} as b; print('RESULT' + json.dumps(b.{call}))"
    )
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    if not lines:
        raise RuntimeError(f"measurement in {tree} failed: {proc.stderr[-1500:]}")
    return json.loads(lines[-1][len("RESULT") :])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def members_of(n: int, model: HookedTransformerConfig, batch: int) -> list[tuple]:
    """``n`` members ``(task, correspondence, train)``: the tasks in turn, member ``m``
    seeded ``m`` (its correspondence too), so every benchmark times the same members."""
    tasks = list_tasks(kind="task")
    train = TrainConfig(batch_size=batch, max_steps=1000)
    members = []
    for m in range(n):
        task = tasks[m % len(tasks)]
        corr = sample_correspondence(resolve_task(task).task, model, seed=m)
        members.append((task, corr, train.replace(seed=m)))
    return members


def stack_of(n: int, model: HookedTransformerConfig, device: torch.device, batch: int):
    """:func:`members_of` stacked on ``device``, and two stacked training batches to
    alternate between."""
    module = StackedSIITModule(members_of(n, model, batch), model).to(device)
    batches = [
        _stack([{k: v.to(device) for k, v in s.train_batch(step).items()} for s in module.samplers])
        for step in range(2)
    ]
    return module, batches


def step_time(module, batches, steps: int, device: torch.device, step_fn=None) -> float:
    """Seconds per optimiser step (median of ``steps`` after two warm-up steps)."""
    opt = module.configure_optimizers()["optimizer"]
    run = step_fn or module._step
    times = []
    for k in range(steps + 2):
        sync(device)
        start = time.perf_counter()
        out = run(batches[k % len(batches)])
        opt.zero_grad()
        out["loss"].sum().backward()
        module.on_before_optimizer_step(opt)
        opt.step()
        sync(device)
        if k >= 2:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]
