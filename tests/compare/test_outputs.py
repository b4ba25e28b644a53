"""interpeq compare keeps every comparison: other kinds of comparison (impls, one-sided,
probes, units) get their own folder, other numbers (m, alpha, ...) are refused unless
--overwrite; the summary says which options made it."""

import csv
import json

import pytest

from interpeq.compare import main
from interpeq.compare.run import options_folder
from tests.conftest import tiny_zoo


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory):
    return tiny_zoo(tmp_path_factory.mktemp("root"), "outs", ["add_next"]).path


def test_option_folders_are_named_by_the_non_default_kind_options():
    assert options_folder({}) == ""
    assert options_folder({"impls": "auto", "one_sided": False, "m": 20}) == ""  # defaults
    assert options_folder({"impls": "intervention"}) == "impls-intervention"
    assert options_folder({"impls": "training"}) == "impls-training"
    assert options_folder({"one_sided": True, "probes": "uniform"}) == "one-sided-probes-uniform"
    assert options_folder({"probes": "algorithm_1/stage0"}) == "probes-algorithm_1.stage0"


def test_two_comparisons_with_different_options_keep_both(zoo_dir, capsys):
    base = [str(zoo_dir), "--logger", "none", "--no-progress", "--m", "6", "--n-probes", "48"]
    eq = zoo_dir / "equivalence"
    assert main(base) == 0
    out = capsys.readouterr().out
    assert f"options: n_probes=48, m=6 (units: members) -> {eq}" in out
    # one group of 2 members: no calibrated null, its one pair undecidable (not equivalent)
    assert "within-group pairs  rejected 0 / equivalent 0 / undecidable 1" in out
    assert "1 pair(s) undecidable (in add_next)" in out and "at least 4 members" in out
    with open(eq / "decisions.csv") as fh:
        assert [row[2:] for row in csv.reader(fh)][1:] == [["", "undecidable"], ["undecidable", ""]]
    first = (eq / "results.json").read_bytes()

    assert main([*base, "--one-sided"]) == 0
    out = capsys.readouterr().out
    assert f"-> {eq / 'one-sided'}" in out
    assert (eq / "results.json").read_bytes() == first  # the first comparison is kept
    second = json.loads((eq / "one-sided" / "results.json").read_text())["summary"]
    assert second["one_sided"] is True
    assert second["non_default_options"] == {"n_probes": 48, "m": 6, "one_sided": True}

    assert main([*base, "--m", "7"]) == 2  # other numbers, same folder: refused
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(eq) in err[0] and "m=6 (now m=7)" in err[0]
    assert "--overwrite" in err[0] and "--out" in err[0]
    assert (eq / "results.json").read_bytes() == first

    assert main([*base, "--m", "7", "--overwrite"]) == 0
    capsys.readouterr()
    assert json.loads((eq / "results.json").read_text())["summary"]["m"] == 7
    assert json.loads((eq / "one-sided" / "results.json").read_text())["summary"]["m"] == 6
