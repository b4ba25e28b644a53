"""Task files (interpeq.tasks.user): a user's task trains and compares from the CLI; bad
files, bad interpretations and tampered files fail in one line; a YAML never imports one."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from interpeq.cli import main
from interpeq.tasks import get_task, load_task_file
from interpeq.tasks.user import unload_task_files

TASK = '''
from interpeq.tasks.base import Variable
from interpeq.tasks.catalog import register, shift_right, zeros_col


@register("ut_prev_plus_one")
def build(L, V):
    """y_i = (x_{i-1} + 1) mod V."""
    return [
        Variable("prev", ("x",), lambda x: shift_right(x, zeros_col(x)), "attn", "x_{i-1}"),
        Variable("output", ("prev",), lambda p: (p + 1) % V, "mlp", "(prev + 1) mod V"),
    ]
'''

ZOO = """
name: {name}
tasks: [{tasks}]
seeds: [0, 1]
settings: [D]
model: {{n_layers: 2, d_model: 16, n_heads: 2, d_head: 8, d_mlp: 32}}
train: {{max_steps: 10, batch_size: 16, val_every: 10, val_size: 32, test_size: 32}}
logger: none
tracking:
  references: ["self:seed=0"]
  every_n_steps: 5
  n_probes: 32
  m: 4
  impls: intervention
  include_unconverged: true  # 10 steps learn nothing: this tests the mechanics
compare: false
"""

COMPARE = ["--logger", "none", "--no-progress", "--include-unconverged", "--n-probes", "32"]


@pytest.fixture(autouse=True)
def _forget_task_files():
    yield
    unload_task_files()


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def zoo_yaml(tmp: Path, name: str, tasks: str) -> Path:
    return write(tmp / f"{name}.yaml", ZOO.format(name=name, tasks=tasks))


def error_line(capsys) -> str:
    """The one error line (the boundary may add its '--debug' hint below it)."""
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A zoo of the user task and a shipped one, trained from the CLI (tracker on)."""
    tmp = tmp_path_factory.mktemp("user_zoo")
    task_file = write(tmp / "my_tasks.py", TASK)
    config = zoo_yaml(tmp, "mine", "ut_prev_plus_one, add_index")
    argv = ["zoo", "--config", str(config), "--tasks", str(task_file), "--root", str(tmp)]
    assert main([*argv, "--no-progress"]) == 0
    unload_task_files()
    return tmp, task_file, config


def test_user_task_zoo_records_file_and_compares(trained, capsys):
    tmp, task_file, _ = trained
    index = json.loads((tmp / "mine" / "index.json").read_text())
    record = index["task_files"]["my_tasks.py"]
    assert record["tasks"] == ["ut_prev_plus_one"] and len(record["sha256"]) == 64
    member = json.loads((tmp / "mine" / "ut_prev_plus_one-D-s1" / "member.json").read_text())
    assert member["task_file"]["sha256"] == record["sha256"]
    assert "task_file" not in json.loads(
        (tmp / "mine" / "add_index-D-s0" / "member.json").read_text()
    )
    argv = ["compare", "mine", "--root", str(tmp), "--tasks", str(task_file), *COMPARE]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ut_prev_plus_one ~ add_index" in out or "add_index ~ ut_prev_plus_one" in out
    assert (tmp / "mine" / "equivalence" / "results.json").is_file()


def test_tampered_task_file_is_detected_on_reload(trained, capsys):
    tmp, task_file, config = trained
    original = task_file.read_text()
    try:
        task_file.write_text(original.replace("(p + 1) % V", "(p + 2) % V"))
        argv = ["compare", "mine", "--root", str(tmp), "--tasks", str(task_file), *COMPARE]
        assert main(argv) == 2
        line = error_line(capsys)
        old = json.loads((tmp / "mine" / "index.json").read_text())["task_files"]["my_tasks.py"]
        assert "my_tasks.py" in line and "changed since training" in line
        assert old["sha256"][:16] in line
        zoo = ["zoo", "--config", str(config), "--tasks", str(task_file), "--root", str(tmp)]
        assert main(zoo) == 2
        assert "changed since training" in error_line(capsys)
    finally:
        task_file.write_text(original)


def test_zoo_needs_its_task_file(trained, capsys):
    tmp, task_file, config = trained
    assert main(["compare", "mine", "--root", str(tmp), *COMPARE]) == 2
    assert "--tasks my_tasks.py" in error_line(capsys)
    assert main(["calibrate", "mine", "--root", str(tmp), *COMPARE]) == 2
    assert "--tasks my_tasks.py" in error_line(capsys)
    assert main(["zoo", "--config", str(config), "--root", str(tmp)]) == 2
    assert "--tasks my_tasks.py" in error_line(capsys)
    calibrate = ["calibrate", "mine", "--root", str(tmp), "--tasks", str(task_file), *COMPARE]
    try:
        assert main(calibrate) == 0
        assert (tmp / "mine" / "calibration" / "calibration.json").is_file()
    finally:
        unload_task_files()


def test_yaml_alone_never_imports_the_task_file(tmp_path, capsys):
    marker = tmp_path / "imported.marker"
    body = TASK.replace("ut_prev_plus_one", "ut_marker")
    write(tmp_path / "ut_marker.py", f"open({str(marker)!r}, 'w').close()\n{body}")
    config = zoo_yaml(tmp_path, "marker", "ut_marker")
    assert main(["zoo", "--config", str(config), "--root", str(tmp_path)]) == 2
    line = error_line(capsys)
    assert "'ut_marker'" in line and "--tasks" in line
    assert not marker.exists() and not (tmp_path / "marker").exists()


BAD = {
    "syntax": ("def build(L, V:\n", "syntax error at line 1"),
    "import": ("import math\nraise RuntimeError('boom')\n", "RuntimeError"),
    "unknown_parent": (
        TASK.replace('("prev",), lambda p', '("prve",), lambda p'),
        "unknown parent(s) ['prve']",
    ),
    "cycle": (
        TASK.replace('Variable("prev", ("x",)', 'Variable("prev", ("output",)'),
        "cycle",
    ),
    "kind": (TASK.replace('"attn", "x_{i-1}"', '"conv", "x_{i-1}"'), "cannot be placed"),
    "duplicate": (TASK.replace("ut_prev_plus_one", "sort_ascending"), "clashes with the shipped"),
    "output_range": (TASK.replace("(p + 1) % V", "p + V"), "'output' must be"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_task_file_fails_in_one_line(case, tmp_path, capsys):
    text, expected = BAD[case]
    path = write(tmp_path / f"bad_{case}.py", text)
    assert main(["tasks", "--tasks", str(path)]) == 2
    line = error_line(capsys)
    assert f"bad_{case}.py" in line and expected in line, line
    assert "ut_prev_plus_one" not in __import__("interpeq.tasks").tasks.list_tasks()


def test_unreachable_depth_fails_in_one_line(tmp_path, capsys):
    deep = TASK.replace(
        'Variable("output", ("prev",)',
        'Variable("prev2", ("prev",), lambda p: p, "attn", ""),\n'
        '        Variable("prev3", ("prev2",), lambda p: p, "attn", ""),\n'
        '        Variable("output", ("prev3",)',
    )
    task_file = write(tmp_path / "deep.py", deep)
    config = zoo_yaml(tmp_path, "deep", "ut_prev_plus_one")
    assert (
        main(["zoo", "--config", str(config), "--tasks", str(task_file), "--root", str(tmp_path)])
        == 2
    )
    line = error_line(capsys)
    assert "deep.py" in line and "'prev3'" in line and "at least 3 layers" in line, line


def test_python_api_loads_and_reloads(tmp_path):
    path = write(tmp_path / "api.py", TASK)
    loaded = load_task_file(path)
    assert loaded.tasks == ("ut_prev_plus_one",)
    task = get_task("ut_prev_plus_one")
    assert task.labels(task.sample(4, seed=0))[:, 1].eq(1).all()  # y_0 = prev_0 + 1 = 1
    path.write_text(TASK.replace("(p + 1) % V", "(p + 2) % V"))
    assert load_task_file(path).sha256 != loaded.sha256  # reloading replaces, no clash
    task = get_task("ut_prev_plus_one")
    assert task.labels(task.sample(4, seed=0))[:, 1].eq(2).all()
