"""The GPU checks of interpeq, in one command that fits a short device lease.

    python benchmarks/gpu_suite.py                 # on a GPU machine (CUDA), --budget 480
    python benchmarks/gpu_suite.py --smoke --budget 60   # CPU-sized: checks the script

Sections (``gpu_sections.py``), cheap and informative first, the two cold compiles last:

1. **stacking**: full Lightning training steps (``Trainer.fit``: data, ``training_step``
   with its metrics, hooks, backward, clip, AdamW) of 1, 8, 64 and 256 default-size
   members stacked, against one member's full step times ``n``; the math alone
   (``_step`` + backward + AdamW on pre-drawn batches) beside it. Goal: >= 30x at 64.
2. **similarity**: the 256-model ridge similarity matrix on the GPU vs the CPU, and the
   GPU's values checked against the CPU's (tolerance ``gpu_sections.SIM_TOL``).
3. **tracking**: a stacked group of 8 trained with capture + tracker vs without.
4. **toy**: the wall time of a scaled ``interpeq reproduce toy`` (``--no-toy`` skips it).
5. **compile-default**, **compile-reduce-overhead**: the zoo YAML's ``compile:`` modes
   on 64 stacked members vs eager (GPU only).

Why this shape: a lease is 15 minutes, machine start included, and ends when it ends.
So every figure is printed the moment it is measured; a section that raises prints
``section <name> failed: ...`` and the next one runs; before each section its cost
estimate is checked against what is left of ``--budget`` (skipped if it does not
fit), and a section still running well past its estimate, or past the budget, is
stopped. The summary repeats every figure and lists failed and skipped sections; the
exit code is 1 if any section failed.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import gpu_sections
import torch


@dataclass(frozen=True)
class Section:
    """A section: the name of its function in ``gpu_sections`` (looked up when it runs,
    so a test can replace it) and its cost estimates in seconds."""

    name: str
    fn: str
    gpu_s: float
    smoke_s: float
    needs_cuda: bool = False


# Cost estimates, seconds. GPU: not yet measured on a lent GPU; split from the old
# suite's 5-8 min whole run (two cold compiles of 64 stacked members being most of it,
# bench_compile.py) with the stacking fits' module builds (256 members: ~0.1 s each on
# CPU) and data worker start-up on top; replace them with a run's figures. Smoke:
# measured on the 2-core development machine under a concurrent test suite
# (2026-12-06: 19.4, 5.4, 47.9 and 117.2 s), rounded up; with --budget 60 the smoke
# run's tracking and toy sections are skipped there.
SECTIONS = [
    Section("stacking", "stacking", gpu_s=120, smoke_s=20),
    Section("similarity", "similarity", gpu_s=45, smoke_s=6),
    Section("tracking", "tracking", gpu_s=90, smoke_s=50),
    Section("toy", "toy", gpu_s=120, smoke_s=120),
    Section("compile-default", "compile_default", gpu_s=150, smoke_s=0, needs_cuda=True),
    Section(
        "compile-reduce-overhead", "compile_reduce_overhead", gpu_s=150, smoke_s=0, needs_cuda=True
    ),
]
OVERRUN, GRACE = 2.0, 60.0  # a section is stopped at OVERRUN x its estimate + GRACE s,
# or at the budget's end, whichever comes first


class SectionTimeout(Exception):
    """Raised in the main thread (SIGALRM) when a section runs past its limit."""


def _alarm(limit: float | None):
    """Arm SIGALRM to raise :class:`SectionTimeout` after ``limit`` seconds (None: off);
    returns the previous handler to restore."""
    if limit is None or not hasattr(signal, "SIGALRM"):
        return None

    def fire(signum, frame):
        raise SectionTimeout(f"still running after {limit:.0f} s, stopped")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, max(limit, 0.01))
    return old


def _disarm(old) -> None:
    if old is not None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_sections(args, device: torch.device, root: Path) -> tuple[list, list]:
    """Run every section that fits the budget; returns (failed, skipped) as
    ``(name, reason)`` lists. One section's exception never stops the next."""
    failed, skipped = [], []
    start = time.perf_counter()
    for sec in SECTIONS:
        if sec.name == "toy" and args.no_toy or sec.name.startswith("compile") and args.no_compile:
            skipped.append((sec.name, "switched off"))
            print(f"section {sec.name} skipped: switched off", flush=True)
            continue
        if sec.needs_cuda and device.type != "cuda":
            skipped.append((sec.name, "needs a GPU (CUDA)"))
            print(f"section {sec.name} skipped: needs a GPU (CUDA)", flush=True)
            continue
        est = sec.smoke_s if args.smoke else sec.gpu_s
        left = args.budget - (time.perf_counter() - start) if args.budget > 0 else None
        if left is not None and est > left:
            why = f"needs ~{est:.0f} s, {max(left, 0):.0f} s left of the budget"
            skipped.append((sec.name, why))
            print(f"section {sec.name} skipped: {why}", flush=True)
            continue
        limit = OVERRUN * est + GRACE if left is None else min(OVERRUN * est + GRACE, left)
        print(f"\n-- {sec.name} (estimate ~{est:.0f} s) --", flush=True)
        t0 = time.perf_counter()
        old = _alarm(limit)
        try:
            getattr(gpu_sections, sec.fn)(args, device, root)
        except Exception as err:  # noqa: BLE001 - report it, run the next section
            line = f"{type(err).__name__}: {err}".splitlines()[0][:300]
            failed.append((sec.name, line))
            print(f"section {sec.name} failed: {line}", flush=True)
        finally:
            _disarm(old)
        print(f"-- {sec.name}: {time.perf_counter() - t0:.1f} s --", flush=True)
    return failed, skipped


def summary(header: str, seconds: float, failed: list, skipped: list) -> None:
    """The figures again, in one table, and what did not run or did not finish."""
    print(f"\n== {header}; {seconds:.0f} s in all ==")
    for name, value in gpu_sections.ROWS:
        print(f"{name:48s} {value}")
    for name, why in failed:
        print(f"FAILED  {name}: {why}")
    for name, why in skipped:
        print(f"skipped {name}: {why}")
    print(f"{len(failed)} section(s) failed, {len(skipped)} skipped", flush=True)


def parse(argv: list[str] | None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="CPU-sized: checks the script")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per stack size")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument(
        "--budget", type=float, default=480,
        help="seconds for all sections (0: no limit); default 480 leaves a 15-min lease "
        "room for the machine's start and the 600 s command limit room for imports",
    )  # fmt: skip
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--no-toy", action="store_true")
    args = parser.parse_args(argv)
    args.steps = args.steps or (3 if args.smoke else 10)
    args.batch = args.batch or (16 if args.smoke else 128)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the suite; the exit code is 1 if a section failed (skipped ones do not count)."""
    args = parse(argv)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    card = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    header = f"device: {card}; torch {torch.__version__}; {when}; smoke={args.smoke}"
    print(f"{header}; budget {args.budget:.0f} s", flush=True)
    root = Path(tempfile.mkdtemp(prefix="gpu_suite_"))
    gpu_sections.ROWS.clear()
    start = time.perf_counter()
    failed, skipped = run_sections(args, device, root)
    summary(header, time.perf_counter() - start, failed, skipped)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
