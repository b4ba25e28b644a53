"""The IOI study's decisions: a family needs >= 4 models for the calibrated null (fewer:
undecidable pairs), and ``impls: intervention`` decides with the raw draws."""

import json
import math

import numpy as np
import pytest
from conftest import gpt2

from interpeq.lm.config import IOIConfig
from interpeq.lm.study import run_ioi

ALPHA, M = 0.45, 4  # smallest p-value with m = 4 draws: 2/5 <= alpha


@pytest.fixture(scope="module")
def more_gpt2(saved_models, tokenizer, tmp_path_factory):
    """Two more tiny GPT-2 models: with gpt2_a and gpt2_b a family of four."""
    root = tmp_path_factory.mktemp("more")
    paths = []
    for name, seed in (("gpt2_c", 4), ("gpt2_d", 5)):
        gpt2(len(tokenizer), seed).save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        paths.append(str(root / name))
    return [str(saved_models["gpt2_a"]), str(saved_models["gpt2_b"]), *paths]


def _run(models, tmp_path, impls):
    cfg = IOIConfig(models=models, n_prompts=40, m=M, alpha=ALPHA, impls=impls)
    return run_ioi(cfg, tmp_path, logger="none", progress=False)


def test_calibrated_null_decides_a_family_of_four_not_one_of_two(saved_models, more_gpt2, tmp_path):
    models = [*more_gpt2, str(saved_models["neox_a"]), str(saved_models["neox_b"])]
    summary = _run(models, tmp_path, "auto")
    fam = dict(zip(summary["models"], summary["families"], strict=True))
    for d in summary["decisions"]:
        fa, fb = fam[d["a"]], fam[d["b"]]
        assert d["null_a"] == ("calibrated" if fa == "gpt2" else "none")
        if fa == fb == "pythia":  # two models: neither side has a null
            assert d["decision"] == "undecidable" and d["min_p_value"] > ALPHA
            assert d["members_needed"] == 4 and math.isnan(d["congruity"])
        else:  # a GPT-2 side (four models) is calibrated: rejection was attainable
            assert d["min_p_value"] <= ALPHA
            assert d["decision"] in ("rejected", "equivalent")
    head = summary["headline"]
    assert head["within_pythia"]["n_undecidable"] == 1
    assert head["within_gpt2"]["n_undecidable"] == 0 and head["across"]["n_undecidable"] == 0
    assert "1 of 15 pairs are undecidable" in summary["note"]
    assert "(here: gpt2 4, pythia 2)" in summary["note"]
    assert summary["null_spread"]["gpt2"]["n_members"] == 4
    assert math.isfinite(summary["null_spread"]["gpt2"]["ratio"])


def test_intervention_null_decides_two_models_per_family(saved_models, tmp_path):
    models = [str(saved_models[k]) for k in ("gpt2_a", "gpt2_b", "neox_a", "neox_b")]
    summary = _run(models, tmp_path, "intervention")
    assert summary["note"] is None and len(summary["decisions"]) == 6
    for d in summary["decisions"]:
        assert d["null_a"] == d["null_b"] == "intervention"
        assert d["min_p_value"] <= ALPHA and d["decision"] in ("rejected", "equivalent")
        assert 0 <= d["congruity"] <= 1
    report = tmp_path / "ioi" / "report"
    assert json.loads((report / "summary.json").read_text())["impls"] == "intervention"
    with open(report / "matrix.csv") as f:
        rows = [line.split(",")[2:] for line in f.read().splitlines()[1:]]
    mat = np.array([[float(v) if v else np.nan for v in r] for r in rows])
    off = mat[~np.eye(4, dtype=bool)]
    assert ((off >= 0) & (off <= 1)).all() and np.allclose(mat, mat.T, equal_nan=True)


def test_impls_is_validated_and_overridable(tmp_path):
    with pytest.raises(ValueError, match="unknown impls"):
        IOIConfig(models=["gpt2", "gpt2"], impls="calibrated-ish")
    assert IOIConfig.from_yaml(impls="intervention").impls == "intervention"
    assert IOIConfig.from_yaml().impls == "auto"
