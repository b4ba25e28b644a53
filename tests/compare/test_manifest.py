"""``interpeq compare --models``: zoo members and TransformerLens checkpoints named in a
manifest, compared with the zoo comparison's test and files; bad entries are one line."""

import json

import pytest
import yaml

from interpeq.compare import main
from tests.conftest import tiny_zoo


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    zoo = tiny_zoo(root, "mz", ["add_next", "all_equal"], seeds=[0, 1])
    exports = root / "exports"
    member = zoo["add_next-D-s1"]
    member.to_transformer_lens(exports / "add_next-s1")
    circuit = [str(c) for c in member.correspondence.circuit]
    return root, circuit


def _manifest(root, circuit, **extra):
    models = [
        {"id": "a0", "zoo": "mz", "member": "add_next-D-s0"},
        {"id": "e0", "zoo": "mz", "member": "all_equal-D-s0"},
        {"id": "e1", "zoo": "mz", "member": "all_equal-D-s1"},
        {"id": "a1-tl", "transformer_lens": "exports/add_next-s1", "circuit": circuit,
         "group": "add_next"},
    ]  # fmt: skip
    data = {"name": "mine", "probes": {"task": "add_next"}, "models": models, **extra}
    path = root / "models.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_manifest_of_zoo_members_and_transformer_lens_models_is_compared(setup, capsys):
    root, circuit = setup
    path = _manifest(root, circuit)
    args = ["--models", str(path), "--root", str(root), "--m", "4", "--n-probes", "32",
            "--impls", "intervention", "--logger", "none", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    out = root / "mine" / "equivalence"
    res = json.loads((out / "results.json").read_text())
    assert res["summary"]["n_units"] == 4 and res["summary"]["n_pairs"] == 6
    groups = {(r["a"], r["b"]): (r["group_a"], r["group_b"]) for r in res["pairs"]}
    assert groups["a0", "a1-tl"] == ("add_next", "add_next")
    assert groups["e0", "e1"] == ("all_equal", "all_equal")
    for name in ("matrix.csv", "decisions.csv", "matrix.png"):
        assert (out / name).stat().st_size > 0
    assert "4 units in 2 groups" in capsys.readouterr().out


def test_the_same_model_through_both_doors_is_identical(setup):
    """The TransformerLens export of a member, named twice, reads the same numbers."""
    root, circuit = setup
    from interpeq.compare.manifest import compare_models
    from interpeq.compare.options import CompareOptions

    path = root / "twice.yaml"
    path.write_text(yaml.safe_dump({
        "name": "twice", "probes": {"task": "add_next"},
        "models": [{"id": "zoo", "zoo": "mz", "member": "add_next-D-s1"},
                   {"id": "tl", "transformer_lens": "exports/add_next-s1",
                    "circuit": circuit, "group": "add_next"}],
    }))  # fmt: skip
    res = compare_models(path, CompareOptions(m=4, n_probes=32, impls="intervention"),
                         root=root, progress=False)  # fmt: skip
    (row,) = res.pairs
    assert row["identical"] and row["decision"] == "identical"


def test_probe_files_are_read_and_checked(setup, tmp_path):
    from safetensors.torch import save_file

    from interpeq.compare import probe_tokens
    from interpeq.compare.manifest import compare_models
    from interpeq.compare.options import CompareOptions

    root, circuit = setup
    save_file(
        {"tokens": probe_tokens(["add_next"], 40, 0, "add_next")}, str(root / "p.safetensors")
    )
    path = _manifest(root, circuit, probes={"file": "p.safetensors"})
    opts = CompareOptions(m=4, n_probes=32, impls="intervention")
    res = compare_models(path, opts, root=root, out_dir=tmp_path / "o", progress=False)
    assert res.summary["n_pairs"] == 6
    with pytest.raises(ValueError, match="40 probe rows, fewer than n_probes=64"):
        compare_models(path, CompareOptions(m=4, n_probes=64), root=root, progress=False)


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"id": "x", "zoo": "mz", "member": "nope"}, "no member 'nope' in zoo 'mz'"),
        ({"id": "x", "transformer_lens": "exports/add_next-s1", "group": "g"},
         "needs 'circuit'"),
        ({"id": "x", "transformer_lens": "exports/add_next-s1", "group": "g",
          "circuit": ["L7H0"]}, "x: circuit ['L7H0']"),
        ({"id": "x", "zoo": "mz", "member": "add_next-D-s0", "weights": "w.pt"},
         "models[0]: an entry is a mapping with keys from"),
    ],
)  # fmt: skip
def test_bad_entries_are_one_line(setup, capsys, entry, message):
    root, _ = setup
    path = root / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "probes": {"task": "add_next"},
                                    "models": [entry]}))  # fmt: skip
    assert main(["--models", str(path), "--root", str(root), "--logger", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_manifest_mixing_a_zoo_member_a_transformer_lens_and_a_hugging_face_model(setup):
    """The issue's mix: one model from each door, grouped, decided, drawn."""
    transformers = pytest.importorskip("transformers")
    from interpeq.compare.manifest import compare_models
    from interpeq.compare.options import CompareOptions

    root, circuit = setup
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=20, n_positions=16)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(root / "hf-tiny")
    path = root / "mixed.yaml"
    path.write_text(yaml.safe_dump({
        "name": "mixed", "probes": {"task": "add_next"},
        "models": [
            {"id": "member", "zoo": "mz", "member": "add_next-D-s0"},
            {"id": "tl", "transformer_lens": "exports/add_next-s1", "circuit": circuit,
             "group": "add_next"},
            {"id": "gpt2", "huggingface": "hf-tiny", "circuit": ["L0H1", "L1H0"],
             "group": "lm"},
        ],
    }))  # fmt: skip
    res = compare_models(path, CompareOptions(m=4, n_probes=32, impls="intervention"),
                         root=root, progress=False)  # fmt: skip
    assert [(r["a"], r["b"]) for r in res.pairs] == [("member", "tl"), ("member", "gpt2"),
                                                     ("tl", "gpt2")]  # fmt: skip
    assert {r["group_b"] for r in res.pairs} == {"add_next", "lm"}
    assert all(r["decision"] in ("rejected", "equivalent", "undecidable") for r in res.pairs)
    assert (res.out_dir / "matrix.png").stat().st_size > 0
    assert res.summary["n_groups"] == 2
