"""``interpeq tasks``: list tasks, composed algorithms and behaviour-matched pairs."""

from __future__ import annotations

import argparse
import json

from interpeq.tasks.info import describe
from interpeq.tasks.matched import list_matched_pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="interpeq tasks",
        description="List every task, composed algorithm and behaviour-matched pair with its variables "
        "(name:kind@depth; kind = component type it may align to).",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    rows = describe()
    pairs = list_matched_pairs()
    if args.json:
        print(json.dumps({"tasks": rows, "matched_pairs": pairs}, indent=2, default=str))
        return 0
    for kind, title in (
        ("task", "Tasks"),
        ("matched", "Behaviour-matched alternatives"),
        ("algorithm", "Composed algorithms"),
    ):
        selected = [r for r in rows if r["kind"] == kind]
        print(f"{title} ({len(selected)}):")
        for row in selected:
            variables = " ".join(
                f"{name}:{vkind}@{depth}" for name, vkind, depth in row["variables"]
            )
            stages = f" [{' -> '.join(row['stages'])}]" if kind == "algorithm" else ""
            print(f"  {row['name']:24s}{stages} {row['doc']}")
            print(f"  {'':24s} variables: {variables}")
        print()
    print(
        f"Behaviour-matched pairs ({len(pairs)}): same input-output behaviour, different mechanism"
    )
    for a, b in pairs:
        print(f"  {a} ~ {b}")
    return 0
