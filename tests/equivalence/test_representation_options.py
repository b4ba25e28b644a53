"""Named representations (``--representation``) and the similarity choice (``--similarity``):
what each reads from a model, and that a comparison with them reads base models and
co-implementations alike, records its options and keeps its own folder."""

import json

import pytest
import torch

from interpeq.equivalence import (
    REPRESENTATIONS,
    co_implementations,
    representation_options,
    representations,
)
from interpeq.models import MLP, AttnHead, HookedTransformer
from tests.conftest import tiny_zoo
from tests.equivalence.test_representations import CFG, probe_tokens


def tokens(n=32, seed=0):
    return probe_tokens(n, seed)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HookedTransformer(CFG)


def test_each_named_representation_reads_what_its_name_says(model):
    tok = tokens()
    full = representations(model, tok)  # 3 states x 16, mean over 9 content positions
    assert full.shape == (32, 48)
    no_emb = representations(model, tok, **representation_options("no-embedding"))
    assert torch.equal(no_emb, full[:, 16:])  # the two block states, embedding left out
    for k in range(3):
        layer = representations(model, tok, **representation_options(f"layer-{k}"))
        assert torch.equal(layer, full[:, 16 * k : 16 * (k + 1)])
    per_pos = representations(model, tok, **representation_options("per-position"))
    assert per_pos.shape == (32, 3 * 9 * 16)
    # the mean over positions of the per-position reading is the default reading
    means = per_pos.reshape(32, 3, 9, 16).mean(2).reshape(32, 48)
    assert torch.allclose(means, full, atol=1e-6)
    assert set(REPRESENTATIONS) == {"residual", "no-embedding", "per-position", "layer-K"}


def test_co_implementations_are_read_like_their_base_model(model):
    corr = [AttnHead(0, 0), MLP(1)]
    for name, width in (("no-embedding", 32), ("per-position", 3 * 9 * 16), ("layer-1", 16)):
        draws = co_implementations(
            model, corr, tokens(), m=3, seed=1, **representation_options(name)
        )
        assert draws.shape == (3, 32, width)


@pytest.mark.parametrize(
    "name, message",
    [("layers", "unknown representation 'layers'"), ("layer-x", "layer-K"), ("layer-3", None)],
)
def test_bad_representations_are_one_clear_error(model, name, message):
    if message:
        with pytest.raises(ValueError, match=message) as err:
            representation_options(name)
        assert "residual, no-embedding, per-position, layer-K" in str(err.value)
    else:  # a valid name, but this model has only states 0..2
        with pytest.raises(ValueError, match=r"out of range: the model has 3 residual states"):
            representations(model, tokens(), **representation_options(name))


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory):
    return tiny_zoo(tmp_path_factory.mktemp("root"), "reads", ["add_next", "divide_by_max"]).path


def test_a_comparison_with_another_reading_keeps_its_own_folder(zoo_dir, capsys):
    from interpeq.compare import main

    base = [str(zoo_dir), "--logger", "none", "--no-progress", "--m", "6", "--n-probes", "48"]
    assert main(base) == 0
    assert main([*base, "--representation", "no-embedding", "--similarity", "cka"]) == 0
    out = capsys.readouterr().out
    folder = zoo_dir / "equivalence" / "representation-no-embedding-similarity-cka"
    assert f"-> {folder}" in out
    summary = json.loads((folder / "results.json").read_text())["summary"]
    assert summary["representation"] == "no-embedding" and summary["similarity"] == "cka"
    assert summary["non_default_options"]["similarity"] == "cka"
    default = json.loads((zoo_dir / "equivalence" / "results.json").read_text())
    other = json.loads((folder / "results.json").read_text())
    sims = [[p["similarity"] for p in r["pairs"]] for r in (default, other)]
    assert len(sims[0]) == len(sims[1]) == 6 and sims[0] != sims[1]  # another reading


def test_unusable_reading_options_are_one_line(zoo_dir, capsys):
    from interpeq.compare import main

    base = [str(zoo_dir), "--logger", "none", "--no-progress", "--m", "4", "--n-probes", "32"]
    assert main([*base, "--representation", "mean"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown representation 'mean'" in err[0]
    assert main([*base, "--similarity", "cka", "--launcher", "ray", "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--similarity cka runs on the local launcher only" in err[0]
