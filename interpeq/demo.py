"""``interpeq demo``: the main job end to end, small enough for a CPU in minutes.

For now (foundation): sample a task, run a randomly initialised hooked transformer,
patch a component, and print the cached shapes. Later stages extend this to training
a zoo, tracking equivalence and comparing.
"""

from __future__ import annotations

import argparse

import torch

from interpeq.models import AttnHead, HookedTransformer, HookedTransformerConfig, patch_components
from interpeq.tasks import get_task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interpeq demo", description=__doc__)
    parser.add_argument("--task", default="sort_ascending")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    task = get_task(args.task)
    base, source = task.sample_pairs(8, seed=args.seed)
    model = HookedTransformer(HookedTransformerConfig(seed=args.seed)).eval()
    variable = task.model.intermediate[0]
    print(f"task {task.name}: {task.doc.splitlines()[0]}")
    print(f"  base tokens   {base[0].tolist()}\n  labels        {task.labels(base)[0].tolist()}")
    print(
        f"  intervene {variable!r} from source -> {task.intervene(base, source, [variable])[0].tolist()}"
    )
    with torch.no_grad():
        logits, cache = model.run_with_cache(
            base, names_filter=lambda n: "resid" in n or n.endswith("hook_z")
        )
        patched = patch_components(model, base, source, [AttnHead(0, 0)])
    print(f"random model logits {tuple(logits.shape)}; cached {len(cache)} hooks:")
    for name, act in cache.items():
        print(f"  {name:28s} {tuple(act.shape)}")
    print(f"patching L0H0 from source moves logits by {(patched - logits).abs().max():.4f}")
    return 0
