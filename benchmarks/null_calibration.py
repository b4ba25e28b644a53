"""The null calibration table of docs/calibration.md (section 3), from simulated zoos.

For each null (``auto``: the calibrated default; ``intervention``: the raw draws;
``switch``: the rule before calibration), each coefficient of variation ``v`` and each
draw-to-member ratio ``c``: the false-rejection rate of equivalent pairs with its
standard error, and the power on pairs of two groups ``delta`` times farther apart
than members (:mod:`interpeq.equivalence.nullsim`). Prints a markdown table.

    .venv/bin/python benchmarks/null_calibration.py [--reps 20000] [--k 4] [--rho 0.0]
"""

from __future__ import annotations

import argparse
import time

import torch

from interpeq.equivalence.nullsim import RULES, calibration_table

CS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=20000, help="simulated zoos per cell")
    p.add_argument("--k", type=int, default=4, help="members per group")
    p.add_argument("--rho", type=float, default=0.0, help="share of variance from members")
    p.add_argument("--deltas", default="2,3,5", help="separations for the power columns")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    deltas = tuple(float(x) for x in args.deltas.split(","))
    start = time.perf_counter()
    rows = calibration_table(
        CS, (0.2, 0.33), reps=args.reps, k=args.k, rho=args.rho, deltas=deltas, rules=RULES
    )
    power = [f"power@{d:g}" for d in deltas]
    print(
        f"k = {args.k} members per group, rho = {args.rho}, m = 40, alpha = 0.05, "
        f"{args.reps} simulated zoos per cell"
    )
    print(
        "| null | v | "
        + " | ".join(f"c = {c:g}" for c in CS)
        + " | "
        + " | ".join(f"power, delta = {d:g} (c = 1)" for d in deltas)
        + " |"
    )
    print("|---" * (2 + len(CS) + len(deltas)) + "|")
    for rule in RULES:
        for v in (0.2, 0.33):
            mine = [r for r in rows if r["rule"] == rule and r["v"] == v]
            at_one = next(r for r in mine if r["c"] == 1.0)
            cells = [f"{r['frr']:.3f}" for r in mine]
            print(
                f"| {rule} | {v:g} | "
                + " | ".join(cells)
                + " | "
                + " | ".join(f"{at_one[k]:.2f}" for k in power)
                + " |"
            )
    print(
        f"standard error of each rate <= {max(r['se'] for r in rows):.4f}; "
        f"{time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
