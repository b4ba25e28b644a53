"""The ``interpeq`` command: parses arguments and dispatches; no logic lives here.

Each subcommand's implementation is imported lazily so that ``interpeq --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# name -> (module:function taking argv, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "tasks": (
        "interpeq.tasks.cli:main",
        "list every task, composed algorithm and behaviour-matched pair with its variables",
    ),
    "fit": (
        "interpeq.training.fit_cli:main",
        "train one model with SIIT (LightningCLI: --config, dotted overrides, --print_config)",
    ),
    "zoo": (
        "interpeq.zoo.cli:main",
        "train every member of a zoo YAML, resumably, into checkpoints/<zoo>/",
    ),
    "compare": (
        "interpeq.compare.cli:main",
        "pairwise congruity over a zoo's members, grouped by interpretation -> checkpoints/<zoo>/equivalence/",
    ),
    "reproduce": (
        "interpeq.reproduce.cli:main",
        "reproduce the paper's toy result (or a study) with one command -> checkpoints/<zoo>/report/",
    ),
    "demo": ("interpeq.demo:main", "run the main job end to end on a small scale (CPU is enough)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interpeq",
        description="Interpretive equivalence: do two networks implement the same mechanistic interpretation?",
        epilog="Run 'interpeq <command> --help' for a command's own options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (_, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def set_cpu_threads() -> None:
    """One intra-op CPU thread unless the user asks for more.

    interpeq's models are tiny: a forward is many small kernels, where OpenMP threads
    gain little and, on a busy machine, spin against other processes; a loaded 2-core
    CPU ran a forward 30x slower with 2 threads than with 1. ``INTERPEQ_NUM_THREADS`` (or
    ``OMP_NUM_THREADS``) overrides; GPU work is unaffected.
    """
    import torch

    wanted = os.environ.get("INTERPEQ_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "1"
    try:
        torch.set_num_threads(max(1, int(wanted)))
    except ValueError:
        raise SystemExit(
            f"interpeq: INTERPEQ_NUM_THREADS must be a positive integer, got {wanted!r}"
        ) from None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    if argv[0] not in SUBCOMMANDS:
        parser.error(f"unknown command {argv[0]!r}; choose one of {sorted(SUBCOMMANDS)}")
    if not os.environ.get("INTERPEQ_VERBOSE"):
        # Lightning's banners (GPU available, tips, checkpoint notices) drown the progress
        # bars of zoo runs; warnings and errors still show. INTERPEQ_VERBOSE=1 restores them.
        # Lightning sets its loggers' levels when first imported: import it first.
        import lightning.pytorch  # noqa: F401

        for name in ("lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)
    set_cpu_threads()
    target, _ = SUBCOMMANDS[argv[0]]
    module_name, func_name = target.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    return int(func(argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
