"""A non-editable install works away from the repository: the configs are package data,
the callbacks are ``interpeq.callbacks`` (no top-level ``callbacks`` module), and the
demo writes into the working directory's ``checkpoints/``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The package built as a wheel and installed (without dependencies) into a folder."""
    base = tmp_path_factory.mktemp("install")
    wheels, target = base / "wheels", base / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore::UserWarning"}
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)]
    subprocess.run(build, check=True, env=env, cwd=base)
    (wheel,) = wheels.glob("interpeq-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    return target


def test_wheel_layout(installed):
    assert (installed / "interpeq" / "callbacks" / "tracker.py").is_file()
    assert (installed / "interpeq" / "configs" / "zoo" / "demo.yaml").is_file()
    assert (installed / "interpeq" / "configs" / "experiment" / "toy_cpu.yaml").is_file()
    assert not (installed / "callbacks").exists()
    assert not (installed / "configs").exists()


def test_demo_from_an_empty_folder(installed, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed), "WANDB_MODE": "disabled"}
    probe = (
        "import interpeq, interpeq.callbacks; print(interpeq.__file__, interpeq.callbacks.__file__)"
    )
    where = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert where.returncode == 0, where.stderr
    assert all(p.startswith(str(installed)) for p in where.stdout.split()), where.stdout
    run = subprocess.run(
        [sys.executable, "-m", "interpeq.cli", "demo", "--max-steps", "30", "--no-progress"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = tmp_path / "checkpoints" / "demo"
    assert (out / "index.json").is_file()
    assert (out / "equivalence" / "matrix.csv").is_file()
    assert list((out / "tracking").glob("*/equivalence_curve.json"))
