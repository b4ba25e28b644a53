"""Sharing weights: safetensors round trip and clear errors for bad files."""

import pytest
import torch

from interpeq.models import HookedTransformer
from interpeq.training.io import load_model, read_config, save_model

from .conftest import TINY


def test_round_trip(tmp_path):
    model = HookedTransformer(TINY.replace(seed=3))
    path = save_model(model, tmp_path / "m.safetensors")
    assert read_config(path) == TINY.replace(seed=3)
    loaded = load_model(path)
    tokens = torch.randint(0, 11, (4, 10))
    torch.testing.assert_close(loaded(tokens), model(tokens), rtol=0, atol=0)
    assert not loaded.training
    load_model(path, TINY.replace(seed=9))  # the seed is not part of the architecture


def test_other_architecture(tmp_path):
    path = save_model(HookedTransformer(TINY), tmp_path / "m.safetensors")
    with pytest.raises(
        ValueError, match=r"another architecture.*W_E.*expected \(12, 48\), found \(12, 32\)"
    ):
        load_model(path, TINY.replace(d_model=48))
    with pytest.raises(ValueError, match="another architecture"):
        load_model(path, TINY.replace(attention="causal"))


def test_truncated_and_tampered(tmp_path):
    path = save_model(HookedTransformer(TINY), tmp_path / "m.safetensors")
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_model(cut)
    tampered = tmp_path / "bad.safetensors"
    tampered.write_bytes(data[:-8] + bytes(8))
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_model(tampered)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a weights file")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_model(junk)
    with pytest.raises(ValueError, match="no such weights file"):
        load_model(tmp_path / "missing.safetensors")
