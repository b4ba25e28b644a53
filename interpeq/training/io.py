"""Share trained weights safely: safetensors + the model config as JSON metadata.

Lightning checkpoints are pickles (fine for resuming one's own runs); weights meant
for others go through :func:`save_model` / :func:`load_model`, which never unpickle.
The file's metadata holds the config (JSON) and a SHA-256 of the tensor bytes, so a
truncated or tampered file and a checkpoint of another architecture are clear
``ValueError``s that say how to recover (:data:`RECOVER`); :func:`check_weights` runs
the same checks without building a model (``interpeq zoo --list`` uses it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from interpeq.models import HookedTransformer, HookedTransformerConfig

FORMAT = "interpeq.hooked_transformer/1"
RECOVER = (
    "restore the file from a good copy or save it again; a zoo member's weights: "
    "'interpeq zoo --config <zoo yaml> --repair' retrains that member"
)


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_model(model: HookedTransformer, path: str | Path) -> Path:
    """Write ``model``'s weights and config to ``path`` (a ``.safetensors`` file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "config": json.dumps(model.cfg.to_dict(), sort_keys=True),
        "sha256": _digest(tensors),
    }
    save_file(tensors, str(path), metadata=metadata)
    return path


def read_config(path: str | Path) -> HookedTransformerConfig:
    """The model config stored in a weights file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(
            f"{path}: truncated or corrupt file, or not safetensors weights ({err}); {RECOVER}"
        ) from err
    if meta.get("format") != FORMAT or "config" not in meta:
        raise ValueError(
            f"{path}: not an interpeq model file (metadata format {meta.get('format')!r}); "
            "give a file written by interpeq.training.save_model"
        )
    return HookedTransformerConfig.from_dict(json.loads(meta["config"]))


def load_model(path: str | Path, cfg: HookedTransformerConfig | None = None) -> HookedTransformer:
    """Load weights written by :func:`save_model` (eval mode, CPU).

    With ``cfg`` given, the file must hold that architecture (the seed may differ);
    otherwise the stored config is used.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such weights file (check the path)")
    stored = read_config(path)
    tensors = _tensors(path)
    cfg = cfg or stored
    model = HookedTransformer(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found or not cfg.same_architecture(stored):
        diff = {
            k: f"expected {expected.get(k)}, found {found.get(k)}"
            for k in sorted(set(expected) | set(found))
            if expected.get(k) != found.get(k)
        }
        raise ValueError(
            f"{path}: weights of another architecture; differing tensors: {diff or 'none'}; "
            f"file config {stored.to_dict()}, expected {cfg.to_dict()}"
        )
    _check_digest(path, tensors)
    model.load_state_dict(tensors)
    return model.eval()


def check_weights(path: str | Path) -> None:
    """Raise the ``ValueError`` :func:`load_model` would for a missing, truncated,
    foreign or tampered weights file (reads the tensors and verifies their SHA-256)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such weights file")
    read_config(path)
    _check_digest(path, _tensors(path))


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(
            f"{path}: truncated or corrupt safetensors weights file ({err}); {RECOVER}"
        ) from err


def _check_digest(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    if _digest(tensors) != read_meta(path).get("sha256"):
        raise ValueError(
            f"{path}: checksum mismatch: the weights file was modified or corrupted; {RECOVER}"
        )


def read_meta(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})
