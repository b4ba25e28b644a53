"""``interpeq compare <zoo> [--against <zoo>]``: parse, run :func:`compare_zoo`, print."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from interpeq._ray import LAUNCHERS
from interpeq.compare.log import finish_logger
from interpeq.compare.options import FOLDER_OPTIONS, OPTION_DEFAULTS, CompareOptions, add_arguments
from interpeq.compare.run import compare_zoo, load_zoo_with_tasks, output_dir
from interpeq.interrupts import debug_enabled
from interpeq.report import LOGGER_KINDS, make_logger
from interpeq.zoo.store import DEFAULT_ROOT, load_zoo


def check_overwrite(za, args: argparse.Namespace) -> None:
    """Refuse to replace a comparison that was made with other options (a ``ValueError``
    naming the folder, the differing options and the two ways out)."""
    zb = load_zoo(args.against, args.root) if args.against else None
    kind = {k: getattr(args, k) for k in FOLDER_OPTIONS}
    out = output_dir(za, zb, args.out, kind)
    try:
        before = json.loads((out / "results.json").read_text())["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # nothing there (or not a comparison we can read): nothing to keep
    keys = [k for k in OPTION_DEFAULTS if k != "units"]
    differ = [k for k in keys if k in before and before[k] != getattr(args, k)]
    if differ:
        then = ", ".join(f"{k}={before[k]}" for k in differ)
        now = ", ".join(f"{k}={getattr(args, k)}" for k in differ)
        raise ValueError(
            f"{out} holds a comparison made with {then} (now {now}); pass --overwrite to "
            "replace it, or --out <folder> to keep both"
        )


def load_task_files_for(args: argparse.Namespace):
    """Load the ``--tasks`` files and the zoo (and ``--against``), checked against the
    task files they were trained with (:func:`load_zoo_with_tasks`)."""
    za = load_zoo_with_tasks(args.zoo, args.root, args.tasks, f"interpeq compare {args.zoo}")
    if args.against:
        load_zoo_with_tasks(args.against, args.root, [], f"interpeq compare {args.zoo}")
    return za


def build_parser() -> argparse.ArgumentParser:
    """``interpeq compare``'s flags: what to compare, how to test, where to write, how
    to run."""
    parser = argparse.ArgumentParser(
        prog="interpeq compare",
        description="Pairwise congruity over a zoo's members (or composed-algorithm chains), grouped by "
        "interpretation; writes matrix.csv, results.json and matrix.png into <root>/<zoo>/equivalence/.",
    )
    _add_inputs(parser)
    add_arguments(parser)
    _add_outputs(parser)
    _add_launch_options(parser)
    return parser


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "zoo", nargs="?", help="zoo folder or name under --root (e.g. smoke); or --models"
    )
    parser.add_argument(
        "--models",
        metavar="YAML",
        help="compare the models a manifest names instead of a zoo: zoo members and "
        "TransformerLens checkpoints, with their groups, circuits and probes "
        "(docs/your-models.md)",
    )
    parser.add_argument("--against", help="compare every unit of <zoo> with every unit of this zoo")
    parser.add_argument(
        "--tasks",
        action="append",
        default=[],
        metavar="FILE",
        help="the task file a zoo of your own tasks was trained with (builds its probes; "
        "checked against the SHA-256 the zoo recorded; repeatable; docs/your-task.md)",
    )
    parser.add_argument(
        "--root", default=str(DEFAULT_ROOT), help="zoo root folder (default: checkpoints)"
    )


def _add_outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        help="output folder (default <root>/<zoo>/equivalence, with a subfolder named by the "
        "non-default --impls / --one-sided / --probes / --units / --representation / "
        "--similarity, e.g. equivalence/impls-training)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a comparison in the output folder made with other options "
        "(--n-probes, --m, --alpha, --seed); without it such a folder is kept and this is an error",
    )
    parser.add_argument(
        "--logger",
        default="wandb",
        choices=LOGGER_KINDS,
        help="wandb (offline without an account), csv or none",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _add_launch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        default="local",
        help="ray: split the pairs into blocks over Ray workers (same files; "
        "pip install 'interpeq[ray]'; docs/scaling.md)",
    )
    parser.add_argument("--workers", type=int, default=1, help="ray: workers (default 1)")
    parser.add_argument(
        "--address", help="ray: a Ray cluster ('auto', HOST:6379 or ray://HOST:10001)"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        options = CompareOptions.from_args(args)  # bad values first, then the folder
        if (args.zoo is None) == (args.models is None):
            raise ValueError("give a zoo or --models <manifest.yaml> (one of the two)")
        if args.models:
            return _compare_manifest(args, options)
        za = load_task_files_for(args)
        if not args.overwrite:
            check_overwrite(za, args)
        logger = _logger(za, args)
        result = compare_zoo(
            za, args.against, **options.kwargs(), out_dir=args.out, root=args.root,
            logger=logger, progress=not args.no_progress, workers=args.workers,
            launcher=args.launcher, address=args.address,
        )  # fmt: skip
    except ValueError as err:
        if debug_enabled():  # --debug: the traceback, from the interpeq boundary
            raise
        print(f"interpeq compare: error: {err}", file=sys.stderr)
        return 2
    print(result.summary_text())
    finish_logger(logger)
    return 0


def _compare_manifest(args: argparse.Namespace, options: CompareOptions) -> int:
    """``--models``: the manifest's models (:mod:`interpeq.compare.manifest`)."""
    from types import SimpleNamespace

    from interpeq.compare.manifest import compare_models

    for flag in ("against", "launcher", "tasks"):
        if getattr(args, flag) not in (None, "local", []):
            raise ValueError(f"--{flag} does not apply to --models (a manifest names its models)")
    name = Path(args.models).stem
    out = Path(args.out) if args.out else Path(args.root) / name
    logger = _logger(SimpleNamespace(name=name, path=out), args)
    result = compare_models(
        args.models, options, root=args.root, out_dir=args.out, logger=logger,
        progress=not args.no_progress,
    )  # fmt: skip
    print(result.summary_text())
    finish_logger(logger)
    return 0


def _logger(za, args: argparse.Namespace):
    """The comparison's W&B (or CSV) run, configured with every flag."""
    return make_logger(
        args.logger,
        run_name=f"{za.name}-compare" + (f"-vs-{Path(args.against).name}" if args.against else ""),
        group=za.name,
        job_type="compare",
        config={k: v for k, v in vars(args).items() if k not in ("no_progress",)},
        tags=[f"zoo:{za.name}", "compare"],
        save_dir=za.path,
    )
