"""The GPU suite's CPU-sized smoke mode runs end to end (the script a lent GPU runs)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_suite_smoke_runs_and_prints_its_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_suite.py"), "--smoke", "--no-toy", "--steps", "1"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={"WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stdout.split("== ")[-1]
    for row in ("stacked vs one at a time", "similarity matrix", "tracking overhead"):
        assert row in table
