"""What the calibrated null costs: ``pairwise_congruity`` with ``impls="auto"`` against the
raw draws (``impls="intervention"``) on one zoo's units, interleaved (ABBA) in one run.

Both arms compute the same co-implementation distances and pair similarities (fresh
units each time); the calibrated arm adds, per pair, the rescaling of each side's draws
to its group's between-member spread. Prints each arm's total and their ratio.

    .venv/bin/python benchmarks/bench_null_overhead.py checkpoints/seeds_check [--rounds 2]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from interpeq.compare.units import member_units, probe_tokens, sort_units
from interpeq.equivalence import compute_unit, pairwise_congruity
from interpeq.zoo.store import load_zoo


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("zoo", help="a trained zoo folder (e.g. checkpoints/seeds_check)")
    p.add_argument("--rounds", type=int, default=2, help="ABBA rounds")
    p.add_argument("--n-probes", type=int, default=256)
    p.add_argument("--m", type=int, default=40)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    zoo = load_zoo(args.zoo)
    units = sort_units(member_units(list(zoo), "members"))
    tokens = probe_tokens([u.input_task for u in units], args.n_probes, 0, "mixture")
    computed = [compute_unit(u, tokens, args.m, 0) for u in units]
    totals = {"auto": 0.0, "intervention": 0.0}
    for _ in range(args.rounds):
        for impls in ("auto", "intervention", "intervention", "auto"):
            fresh = copy.deepcopy(computed)  # no cached co-implementation distances
            start = time.perf_counter()
            pairwise_congruity(fresh, impls=impls)
            totals[impls] += time.perf_counter() - start
    n = len(computed)
    print(f"{n} units, {n * (n - 1) // 2} pairs, m = {args.m}, {args.rounds} ABBA rounds")
    for impls, t in totals.items():
        print(f"  impls={impls:12s} {t:7.2f} s")
    print(f"  calibrated / raw: {totals['auto'] / totals['intervention']:.3f}")


if __name__ == "__main__":
    main()
