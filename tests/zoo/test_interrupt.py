"""Ctrl-C (SIGINT) in the middle of a real ``interpeq zoo``: a clean stop (exit 130)
that says where it stopped and how to resume; the rerun finishes with every member
trained exactly once. (SIGTERM takes the same path, exit 143: tests/test_failures.py
checks the boundary's code for it without another zoo run.)"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

TINY = {
    "tasks": ["add_next"],
    "seeds": [0, 1],
    "settings": ["D"],
    "stacked": False,
    "model": {"n_layers": 2, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32},
    # enough steps that the signal lands while the second member trains
    "train": {"max_steps": 200, "batch_size": 32, "val_every": 10, "val_size": 64},
}


def finished_counts(events: Path) -> Counter:
    log = [json.loads(x) for x in events.read_text().splitlines()]
    return Counter(e["member"] for e in log if e["event"] == "finished")


def test_ctrl_c_mid_zoo_stops_cleanly_and_resumes_exactly_once(tmp_path):
    sig, name = signal.SIGINT, "stop"
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"name": name, **TINY}))
    root = tmp_path / "ck"
    events = root / name / "events.jsonl"
    cmd = [sys.executable, "-m", "interpeq.cli", "zoo", "--config", str(config)]
    cmd += ["--root", str(root), "--no-progress"]
    env = {**os.environ, "WANDB_MODE": "disabled", "INTERPEQ_DEBUG": ""}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second_ckpt = root / name / ".partial" / "add_next-D-s1" / "last.ckpt"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        started = events.exists() and events.read_text().count('"started"') >= 2
        if started and second_ckpt.is_file():
            break  # the first member finished, the second has checkpointed and trains on
        time.sleep(0.05)
    time.sleep(0.2)
    assert proc.poll() is None, "the run ended before the signal; make the zoo slower"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) <= 3 and "Traceback" not in err, err[-2000:]
    assert f"stopped by {signal.Signals(sig).name}" in lines[0]
    assert "1 of 2 members finished" in lines[0] and "add_next-D-s1" in lines[0]
    assert "resume is exact" in err and "interpeq zoo --config " + str(config) in err
    assert finished_counts(events) == {"add_next-D-s0": 1}
    assert second_ckpt.is_file()

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert finished_counts(events) == {f"add_next-D-s{s}": 1 for s in range(2)}
    log = [json.loads(x) for x in events.read_text().splitlines()]
    assert [e["event"] for e in log if e["member"] == "add_next-D-s1"] == [
        "started",
        "resumed",
        "finished",
    ]
