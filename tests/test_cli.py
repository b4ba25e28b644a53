"""The console script: help, task listing, unknown commands."""

import subprocess
import sys

from interpeq.cli import SUBCOMMANDS, main


def test_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


def test_tasks_lists_tasks_algorithms_and_pairs(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "Tasks (11)" in out and "Composed algorithms (6)" in out
    assert "Behaviour-matched pairs (3)" in out
    for name in ["sort_ascending", "divide_by_max", "algorithm_6", "all_equal ~ all_equal_minmax"]:
        assert name in out


def test_unknown_command_is_clear_error():
    proc = subprocess.run(
        [sys.executable, "-m", "interpeq.cli", "tran"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "unknown command 'tran'" in proc.stderr
