"""``interpeq reproduce ioi`` end to end on tiny saved models, and its offline failure."""

import csv
import json

import numpy as np
import pytest
import yaml

from interpeq.cli import main as interpeq_main
from interpeq.lm.cli import main as ioi_main
from interpeq.lm.config import IOIConfig, ModelSpec


def test_reproduce_ioi_end_to_end(saved_models, tmp_path, capsys):
    """Two models per family under the default (calibrated) null: every pair is
    undecidable, and the report leads with that, says why and what would decide."""
    models = [
        str(saved_models["gpt2_a"]),
        str(saved_models["gpt2_b"]),
        f"pythia={saved_models['neox_a']}",  # an explicit family
        str(saved_models["neox_b"]),  # family from the model's model_type (gpt_neox)
    ]
    argv = ["--models", ",".join(models), "--root", str(tmp_path)]
    argv += ["--logger", "csv", "--n-prompts", "40", "--m", "4", "--no-progress"]
    assert ioi_main(argv) == 0
    out = capsys.readouterr().out
    assert "IOI: 40 prompts" in out and "within_gpt2" in out and "paper 0.92" in out
    assert "0 rejected, 0 equivalent, 6 undecidable of 6 pairs" in out
    report = tmp_path / "ioi" / "report"
    for name in [
        "matrix.csv", "matrix.png", "groups.png", "pairs.csv", "groups.csv", "circuits.json",
        "config.yaml", "summary.json", "report.md", "prompts.jsonl",
    ]:  # fmt: skip
        assert (report / name).stat().st_size > 0, name
    with open(report / "matrix.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "family", "gpt2_a", "gpt2_b", "neox_a", "neox_b"]
    assert [r[1] for r in rows[1:]] == ["gpt2", "gpt2", "pythia", "pythia"]
    mat = np.array([[float(v) if v else np.nan for v in r[2:]] for r in rows[1:]])
    assert mat.shape == (4, 4) and np.isnan(mat).all()  # no side has a null: no congruity
    summary = json.loads((report / "summary.json").read_text())
    assert list(summary)[:5] == ["impls", "alpha", "m", "note", "decisions"]
    assert summary["impls"] == "auto" and len(summary["decisions"]) == 6
    for d in summary["decisions"]:
        assert d["decision"] == "undecidable" and d["null_a"] == d["null_b"] == "none"
        assert d["min_p_value"] > summary["alpha"] and d["members_needed"] == 4
    note = summary["note"]
    assert "6 of 6 pairs are undecidable" in note and "at least 4 models per family" in note
    assert "(here: gpt2 2, pythia 2)" in note and "m >= 39" in note
    assert "`impls: intervention`" in note and "as far as retraining" in note
    assert set(summary["null_spread"]) == {"gpt2", "pythia"}
    assert summary["null_spread"]["gpt2"]["n_members"] == 2
    md = (report / "report.md").read_text()
    assert md.index("## Decisions") < md.index("## Mean congruity beside the paper")
    assert note in md and "| gpt2_a | gpt2_b | **undecidable** |" in md
    with open(report / "pairs.csv") as f:
        assert {r["decision"] for r in csv.DictReader(f)} == {"undecidable"}
    assert set(summary["headline"]) == {"within_gpt2", "within_pythia", "across"}
    assert summary["headline"]["across"]["n_pairs"] == 4
    assert summary["headline"]["within_pythia"]["paper"] == 0.73
    circuits = json.loads((report / "circuits.json").read_text())
    assert set(circuits) == {"gpt2_a", "gpt2_b", "neox_a", "neox_b"}
    assert np.array(circuits["neox_a"]["importance"]).shape == (2, 4)
    assert np.array(circuits["neox_b"]["importance"]).shape == (3, 4)  # another width
    assert "gpt2_reference" not in circuits["gpt2_a"]  # not GPT-2 small
    cfg = yaml.safe_load((report / "config.yaml").read_text())
    assert cfg["m"] == 4 and cfg["n_prompts"] == 40 and cfg["circuit"]["rule"] == "fraction"
    assert [m["family"] for m in cfg["resolved_models"]] == ["gpt2", "gpt2", "pythia", "pythia"]
    assert list((tmp_path / "ioi").glob("ioi/ioi/metrics.csv"))  # the CSV logger's run


def test_without_weights_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc = ioi_main(["--models", "gpt2,pythia-160m", "--root", str(tmp_path), "--logger", "none"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "'gpt2'" in err[0] and "save_pretrained" in err[0] and "HF_HUB_OFFLINE" in err[0]
    assert not (tmp_path / "ioi").exists()


def test_config_and_model_specs(tmp_path):
    cfg = IOIConfig.from_yaml()  # configs/experiment/ioi.yaml
    assert cfg.models == ["gpt2", "gpt2-medium", "pythia-160m", "pythia-410m"]
    specs = cfg.model_specs()
    assert [s.source for s in specs] == [
        "gpt2", "gpt2-medium", "EleutherAI/pythia-160m", "EleutherAI/pythia-410m",
    ]  # fmt: skip
    assert ModelSpec.parse(f"gpt2={tmp_path}") == ModelSpec(str(tmp_path), tmp_path.name, "gpt2")
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment: ioi\nmodels: [gpt2, gpt2]\ncircuit: {rule: best}\n")
    with pytest.raises(ValueError, match="circuit.rule"):
        IOIConfig.from_yaml(bad)
    assert [s.id for s in IOIConfig(models=["gpt2", "gpt2"]).model_specs()] == ["gpt2", "gpt2-2"]


def test_wired_into_interpeq_reproduce(tmp_path, monkeypatch, capsys):
    """``interpeq reproduce ioi ...`` reaches the IOI study (here: its offline error)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["reproduce", "ioi", "--models", "gpt2,pythia-160m", "--root", str(tmp_path)]
    assert interpeq_main([*argv, "--logger", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'gpt2'" in err[0]
