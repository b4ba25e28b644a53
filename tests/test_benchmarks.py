"""The GPU suite (the script a lent GPU runs): its CPU-sized smoke mode runs end to end
under a budget, a section that raises does not cost the sections after it, and a
budget too small for a section skips it with one line."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"


def test_gpu_suite_smoke_runs_and_prints_its_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH / "gpu_suite.py"), "--smoke", "--budget", "60"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={"WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    head, table = proc.stdout.split("\n== ", 1)
    assert "device: CPU; torch " in head
    for row in (
        "stacked vs one at a time (full step)",
        "similarity matrix",
        "the check needs a GPU",
    ):
        assert row in head and row in table  # printed when measured, repeated at the end
    assert "timed: the full Lightning training step" in head
    # what the budget has no room for is skipped with its line, never silently dropped
    for name, row in (("tracking", "tracking overhead"), ("toy", "scaled toy reproduction")):
        assert row in table or f"section {name} skipped: needs ~" in head
    assert "skipped compile-default: needs a GPU (CUDA)" in table
    assert "0 section(s) failed" in table


@pytest.fixture
def suite(monkeypatch):
    """``gpu_suite`` imported in-process, every section replaced by a stub that
    reports one row (the real ones are the smoke test's)."""
    monkeypatch.syspath_prepend(str(BENCH))
    import gpu_sections
    import gpu_suite

    for sec in gpu_suite.SECTIONS:
        monkeypatch.setattr(
            gpu_sections, sec.fn, lambda a, d, r, n=sec.name: gpu_sections.report(n, "ran")
        )
    return gpu_suite, gpu_sections


def test_a_failing_section_does_not_stop_the_others(suite, monkeypatch, capsys):
    gpu_suite, gpu_sections = suite

    def boom(args, device, root):
        gpu_sections.report("stacking figure before the error", "1.00x")
        raise RuntimeError("CUDA out of memory (fake)")

    monkeypatch.setattr(gpu_sections, "stacking", boom)
    code = gpu_suite.main(["--smoke", "--budget", "0"])
    out = capsys.readouterr().out
    assert code == 1
    assert "section stacking failed: RuntimeError: CUDA out of memory (fake)" in out
    table = out.split("\n== ", 1)[1]
    assert "FAILED  stacking: RuntimeError: CUDA out of memory (fake)" in table
    assert "stacking figure before the error" in table  # what it measured is kept
    for name in ("similarity", "tracking", "toy"):
        assert f"{name:48s} ran" in table
    assert "1 section(s) failed" in table


def test_a_tiny_budget_skips_sections_with_one_line(suite, capsys):
    gpu_suite, _ = suite
    code = gpu_suite.main(["--smoke", "--budget", "7"])
    out = capsys.readouterr().out
    assert code == 0
    assert "section tracking skipped: needs ~50 s, " in out
    assert "s left of the budget" in out
    table = out.split("\n== ", 1)[1]
    assert "skipped tracking: needs ~50 s" in table and "skipped toy: needs ~120 s" in table
    assert "section stacking skipped: needs ~20 s, 7 s left of the budget" in out
    assert f"{'similarity':48s} ran" in table  # what fits still runs


def test_a_section_past_its_limit_is_stopped(suite, monkeypatch, capsys):
    gpu_suite, gpu_sections = suite
    monkeypatch.setattr(gpu_suite, "SECTIONS", [gpu_suite.Section("slow", "slow", 1, 0.1)])
    monkeypatch.setattr(gpu_suite, "OVERRUN", 0.0)
    monkeypatch.setattr(gpu_suite, "GRACE", 0.5)
    monkeypatch.setattr(gpu_sections, "slow", lambda *a: time.sleep(30), raising=False)
    code = gpu_suite.main(["--smoke", "--budget", "0"])
    out = capsys.readouterr().out
    assert code == 1
    assert "section slow failed: SectionTimeout: still running after 0 s, stopped" in out
