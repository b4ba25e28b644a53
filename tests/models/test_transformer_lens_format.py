"""TransformerLens checkpoints in and out (interpeq.models.transformer_lens): the same
logits after a round trip for every architecture option interpeq has, LNPre folded,
unsupported options and pickles refused in one line, damaged files a clear error; and,
where TransformerLens is installed, the same logits in TransformerLens itself."""

import json

import pytest
import torch

from interpeq.models import HookedTransformer, HookedTransformerConfig
from interpeq.models.transformer_lens import (
    config_to_transformer_lens,
    load_transformer_lens,
    save_transformer_lens,
    state_dict_to_transformer_lens,
)
from tests.conftest import transformer_lens_or_skip

ARCHS = [
    {},
    {"d_mlp": 0},  # attention-only
    {"normalization": False},
    {"act_fn": "relu", "attention": "causal"},
    {"act_fn": "gelu_new"},
]


def _model(**arch) -> HookedTransformer:
    cfg = HookedTransformerConfig(**{"n_layers": 2, "d_model": 32, "n_heads": 4, "d_head": 8,
                                     "d_mlp": 64, **arch})  # fmt: skip
    model = HookedTransformer(cfg).eval()
    with torch.no_grad():  # non-trivial layer norms and biases
        for name, p in model.named_parameters():
            if name.endswith((".w", ".b", "b_Q", "b_O", "b_in", "b_U")):
                p.add_(0.1 * torch.randn_like(p))
    return model


def _tokens(cfg, n=6):
    return torch.randint(0, cfg.d_vocab, (n, cfg.n_ctx), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    "arch", ARCHS, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()) or "default"
)
def test_round_trip_keeps_every_logit(tmp_path, arch):
    model = _model(**arch)
    folder = save_transformer_lens(model, tmp_path / "tl")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    back = load_transformer_lens(folder)
    assert back.cfg == model.cfg
    x = _tokens(model.cfg)
    assert torch.equal(back(x), model(x))


def test_lnpre_checkpoints_load_with_identity_norm_weights(tmp_path):
    model = _model()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln" in name or name.startswith("ln_final"):
                p.copy_(torch.ones_like(p) if name.endswith(".w") else torch.zeros_like(p))
    sd = {k: v for k, v in state_dict_to_transformer_lens(model).items() if "ln" not in k}
    cfg = {**config_to_transformer_lens(model.cfg), "normalization_type": "LNPre"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    torch.save(sd, tmp_path / "state_dict.pt")
    back = load_transformer_lens(tmp_path)
    x = _tokens(model.cfg)
    assert torch.allclose(back(x), model(x), atol=1e-6)


@pytest.mark.parametrize(
    "option, value",
    [("positional_embedding_type", "rotary"), ("normalization_type", "RMS"),
     ("gated_mlp", True), ("act_fn", "solu_ln"), ("n_key_value_heads", 2)],
)  # fmt: skip
def test_options_interpeq_lacks_are_refused_in_one_line(tmp_path, option, value):
    save_transformer_lens(_model(), tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, option: value}))
    with pytest.raises(ValueError, match=f"TransformerLens option {option}=") as err:
        load_transformer_lens(tmp_path)
    assert "\n" not in str(err.value)


def test_pickles_and_damaged_files_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="pickled files are not loaded"):
        load_transformer_lens(tmp_path / "ll_model_cfg.pkl", tmp_path / "ll_model.pth")
    folder = save_transformer_lens(_model(), tmp_path / "tl")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ValueError, match="not a readable weights file"):
        load_transformer_lens(folder)
    (folder / "model.safetensors").write_bytes(data)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "d_model": 48, "d_head": 12}))
    with pytest.raises(ValueError, match="weights do not fit the config"):
        load_transformer_lens(folder)


def test_a_zoo_member_exports_to_transformer_lens(tmp_path):
    from tests.conftest import tiny_zoo

    zoo = tiny_zoo(tmp_path, "tl", ["add_next"], seeds=[0])
    (member,) = list(zoo)
    folder = member.to_transformer_lens(tmp_path / "export")
    back = load_transformer_lens(folder)
    x = _tokens(member.model.cfg)
    assert torch.equal(back(x), member.model(x))


def test_transformer_lens_runs_our_export_and_we_run_its_model(tmp_path):
    tl = transformer_lens_or_skip()
    from safetensors.torch import load_file

    for arch in ARCHS:
        model = _model(**arch)
        folder = save_transformer_lens(model, tmp_path / str(len(arch)) / "ours")
        theirs = tl.HookedTransformer(
            tl.HookedTransformerConfig(**json.loads((folder / "config.json").read_text()))
        )
        theirs.load_state_dict(load_file(str(folder / "model.safetensors")))  # strict
        x = _tokens(model.cfg)
        assert (theirs(x) - model(x)).abs().max() < 1e-5, arch
        sd = {k: v for k, v in theirs.state_dict().items()}
        torch.save(sd, tmp_path / "theirs.pt")
        cfg = {
            k: v
            for k, v in theirs.cfg.to_dict().items()
            if isinstance(v, (int, float, str, bool, type(None)))
        }
        (tmp_path / "config.json").write_text(json.dumps(cfg))
        back = load_transformer_lens(tmp_path / "config.json", tmp_path / "theirs.pt")
        assert (back(x) - theirs(x)).abs().max() < 1e-5, arch
