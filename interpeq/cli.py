"""The ``interpeq`` command: parses arguments and dispatches; no logic lives here.

Each subcommand's implementation is imported lazily so that ``interpeq --help`` is fast.

The boundary (:func:`run_command`) is the one place that decides what a failure looks
like to the user:

* Expected failures (a bad config value or task name, a missing, truncated or damaged
  file: ``ValueError``, ``OSError``, YAML and safetensors errors) print one line on
  stderr, ``interpeq <cmd>: error: <what, which file or key, the fix>``, plus a hint
  that ``--debug`` shows the traceback, and exit 2. The messages themselves are written
  where the failure is detected (they name the file and the fix); the boundary only
  flattens them onto one line.
* Ctrl-C / SIGTERM (:mod:`interpeq.interrupts`) stop the subcommand; it may say where
  it stopped and how to resume (``interpeq zoo`` does), and the exit code is 130 / 143.
* Anything else is a bug: its traceback is always shown (hiding it would only make a
  report harder), followed by one line saying so; exit 1.

``--debug`` (anywhere in the arguments, e.g. ``interpeq --debug zoo ...``; removed
before dispatch) or ``INTERPEQ_DEBUG=1`` prints the full traceback of expected
failures and interrupts too. Subcommands that catch their own ``ValueError`` and print
``interpeq <cmd>: error: ...`` keep doing so; whatever they let through lands here.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import statistics
import sys
import traceback

# name -> (module:function taking argv, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "tasks": (
        "interpeq.tasks.cli:main",
        "list every task, composed algorithm and behaviour-matched pair with its variables "
        "(--tasks FILE: load, validate and list your own task file first)",
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
    "calibrate": (
        "interpeq.compare.calibrate:main",
        "false rejections, power, AUROC and a p-value QQ plot of a zoo whose groups are known",
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
        epilog="Run 'interpeq <command> --help' for a command's own options. Errors are one "
        "line; '--debug' anywhere (or INTERPEQ_DEBUG=1) shows the full traceback.",
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


def _strip_debug(argv: list[str]) -> tuple[list[str], bool]:
    """``--debug`` may stand anywhere (``interpeq --debug zoo ...``); it is removed
    before dispatch and sets ``INTERPEQ_DEBUG=1``, which does the same."""
    from interpeq.interrupts import debug_enabled

    rest = [a for a in argv if a != "--debug"]
    if len(rest) != len(argv):
        os.environ["INTERPEQ_DEBUG"] = "1"  # subcommands (and their workers) see it too
    return rest, debug_enabled()


def quiet_known_warnings() -> None:
    """Hide warnings that are not the user's business (they concern library internals)."""
    import warnings

    # torch deprecates LeafSpec, which Lightning's _pytree still uses once per fit
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*deprecated", category=FutureWarning)


def _one_line(err: BaseException) -> str:
    """The error's message on one line (at most ~3 lines of terminal width)."""
    if isinstance(err, OSError) and err.filename and err.strerror:
        text = f"{err.filename}: {err.strerror}"
        if isinstance(err, FileNotFoundError):
            text += " (check the path, or create it first)"
    else:
        text = str(err) or type(err).__name__
    text = " ".join(text.split())
    return text if len(text) <= 600 else text[:597] + "..."


#: ValueError subclasses raised by the standard library on our own data (a median of
#: nothing): bugs, whatever their base class says
_BUG_ERRORS: tuple[type[BaseException], ...] = (statistics.StatisticsError,)


def _expected_errors() -> tuple[type[BaseException], ...]:
    """What a user's input, files or disk can cause (bad config, missing or damaged
    files); everything else is a bug and keeps its traceback."""
    expected: list[type[BaseException]] = [ValueError, OSError]
    try:
        import yaml

        expected.append(yaml.YAMLError)
    except ImportError:  # pragma: no cover - yaml is a dependency
        pass
    try:
        from safetensors import SafetensorError

        expected.append(SafetensorError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(expected)


def run_command(command: str, func, argv: list[str], debug: bool) -> int:
    """Run one subcommand behind the boundary described in the module doc."""
    from interpeq.interrupts import (
        Interrupted,
        exit_code_for,
        received,
        stop_message,
        stop_on_signals,
    )

    prefix = f"interpeq {command}"
    try:
        with stop_on_signals():
            return int(func(argv) or 0)
    except (Interrupted, KeyboardInterrupt) as err:
        if debug:
            traceback.print_exc()
        signum = getattr(err, "signum", None) or received()
        print(stop_message(prefix, signum), file=sys.stderr)
        return exit_code_for(signum)
    except SystemExit as err:
        signum = received()
        if signum and err.code not in (0, None):  # a library turned the signal into an exit
            print(stop_message(prefix, signum), file=sys.stderr)
            return exit_code_for(signum)
        raise
    except _expected_errors() as err:
        if isinstance(err, _BUG_ERRORS):  # ValueErrors that no input explains
            return _internal_error(prefix)
        if debug:
            traceback.print_exc()
        print(f"{prefix}: error: {_one_line(err)}", file=sys.stderr)
        if not debug:
            print("  (rerun with --debug for the traceback)", file=sys.stderr)
        return 2
    except Exception:
        return _internal_error(prefix)


def _internal_error(prefix: str) -> int:
    """A bug: the traceback, then one line saying so (exit 1)."""
    err = sys.exc_info()[1]
    traceback.print_exc()
    print(
        f"{prefix}: internal error ({type(err).__name__}), a bug in interpeq: "
        "please report it with the traceback above",
        file=sys.stderr,
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    argv, debug = _strip_debug(list(sys.argv[1:] if argv is None else argv))
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
    quiet_known_warnings()
    set_cpu_threads()
    target, _ = SUBCOMMANDS[argv[0]]
    module_name, func_name = target.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    return run_command(argv[0], func, argv[1:], debug)


if __name__ == "__main__":
    raise SystemExit(main())
