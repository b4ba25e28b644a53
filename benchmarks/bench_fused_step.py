"""The training step's speed against another revision, side by side.

Why: the fused (stacked) step and the hooked model compute the forward pass through
one definition (``interpeq.models.functional``); a change there must not slow either
down. Times, in fresh interpreters that import ``interpeq`` from this tree and from a
git worktree of ``--before``, alternating A B A B ``--rounds`` times (machine noise
spreads over both sides):

* ``fused``: one optimiser step (forward, backward, clipping, AdamW) of ``--members``
  stacked default-size members (d_model 64, batch 128), the zoo's stacked step;
* ``hooked``: the same step of one member through ``siit_forward`` and hooks
  (``SIITModule`` with ``impl="hooks"``, the reference path).

    python benchmarks/bench_fused_step.py --before f88e980
"""

from __future__ import annotations

import argparse
import statistics

import torch
from _common import REPO, members_of, run_in_tree, stack_of, step_time, worktree

from interpeq.models import HookedTransformerConfig


def _measure(members: int, batch: int, steps: int) -> dict:
    """Median seconds per step of the fused stack and of one hooked member (one thread)."""
    from interpeq.training import SIITModule

    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    model = HookedTransformerConfig()
    module, batches = stack_of(members, model, cpu, batch)
    fused = step_time(module, batches, steps, cpu)
    task, corr, train = members_of(1, model, batch)[0]
    single = SIITModule(task=task, model=model, siit=train, correspondence=corr.to_dict())
    single.impl = "hooks"
    drawn = [module.samplers[0].train_batch(step) for step in range(2)]
    hooked = step_time(single, drawn, steps, cpu)
    return {"fused": fused, "hooked": hooked}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="git ref of the code to compare against")
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    trees = {"before": worktree(args.before), "after": REPO}
    times: dict[str, dict[str, list[float]]] = {name: {"fused": [], "hooked": []} for name in trees}
    call = f"_measure({args.members}, {args.batch}, {args.steps})"
    for _ in range(args.rounds):
        for name, tree in trees.items():
            for key, value in run_in_tree(tree, "bench_fused_step", call).items():
                times[name][key].append(value)
    print(f"{args.members} stacked members, batch {args.batch}, 1 thread, {args.rounds} rounds A/B")
    for key in ("fused", "hooked"):
        before, after = (statistics.median(times[n][key]) for n in ("before", "after"))
        spread = max(times["after"][key]) / min(times["after"][key]) - 1
        print(
            f"  {key:6s} before {before * 1e3:8.2f} ms/step  after {after * 1e3:8.2f} ms/step  "
            f"after/before {after / before:.3f}  (after's spread over rounds {spread:.1%})"
        )


if __name__ == "__main__":
    main()
