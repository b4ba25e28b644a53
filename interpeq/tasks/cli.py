"""``interpeq tasks``: list tasks, composed algorithms and behaviour-matched pairs.

``--tasks <file>`` loads a task file first (docs/your-task.md), validates it and lists
its tasks under "Your tasks" with the file's SHA-256: the check to run after editing one.
"""

from __future__ import annotations

import argparse
import json

from interpeq.tasks.info import describe
from interpeq.tasks.matched import list_matched_pairs
from interpeq.tasks.user import load_task_files

SECTIONS = (
    ("user", "Your tasks (--tasks)"),
    ("task", "Tasks"),
    ("matched", "Behaviour-matched alternatives"),
    ("algorithm", "Composed algorithms"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="interpeq tasks",
        description="List every task, composed algorithm and behaviour-matched pair with its variables "
        "(name:kind@depth; kind = component type it may align to).",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--tasks",
        action="append",
        default=[],
        metavar="FILE",
        help="a task file (Python with @register-ed builders) to load, validate and list "
        "first; repeatable (docs/your-task.md)",
    )
    args = parser.parse_args(argv)
    files = load_task_files(args.tasks)
    rows = describe()
    pairs = list_matched_pairs()
    if args.json:
        out = {"tasks": rows, "matched_pairs": pairs, "task_files": [f.record() for f in files]}
        print(json.dumps(out, indent=2, default=str))
        return 0
    for f in files:
        print(f"Task file {f.path} (sha256 {f.sha256}): {', '.join(f.tasks)}")
    for kind, title in SECTIONS:
        selected = [r for r in rows if r["kind"] == kind]
        if kind == "user" and not selected:
            continue
        print(f"{title} ({len(selected)}):")
        for row in selected:
            variables = " ".join(
                f"{name}:{vkind}@{depth}" for name, vkind, depth in row["variables"]
            )
            stages = f" [{' -> '.join(row['stages'])}]" if kind == "algorithm" else ""
            print(f"  {row['name']:24s}{stages} {row['doc']}")
            print(f"  {'':24s} variables: {variables}")
            if kind == "user":
                print(f"  {'':24s} from {row['file']}; needs >= {row['min_layers']} layer(s)")
        print()
    print(
        f"Behaviour-matched pairs ({len(pairs)}): same input-output behaviour, different mechanism"
    )
    for a, b in pairs:
        print(f"  {a} ~ {b}")
    return 0
