"""Loading Hugging Face causal LMs: families, devices, and one-line errors when offline.

A model is found as a local folder (``save_pretrained``: model + tokenizer), in the
local Hugging Face cache, or on the hub -- in that order, with ``local_files_only``
first so a cached model never waits on the network. Without any of them the error is
one ``ValueError`` line naming the model and how to supply it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Family:
    """Where a model family keeps its blocks, attention output projection, MLP and final norm."""

    name: str
    base: str  # attribute of the LM holding the transformer
    blocks: str
    out_proj: str  # attribute path inside a block
    mlp: str
    ln_final: str


FAMILIES = {
    "gpt2": Family("gpt2", "transformer", "h", "attn.c_proj", "mlp", "ln_f"),
    "gpt_neox": Family(
        "pythia", "gpt_neox", "layers", "attention.dense", "mlp", "final_layer_norm"
    ),
}
# study family labels -> HF model_type
FAMILY_NAMES = {"gpt2": "gpt2", "pythia": "gpt_neox", "gpt_neox": "gpt_neox"}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _get(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _load_error(name: str, err: BaseException) -> ValueError:
    text = str(err).strip()
    why = text.splitlines()[0][:160] if text else type(err).__name__
    offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
    return ValueError(
        f"cannot load model {name!r}{offline}: no local folder or cached copy and the hub is "
        f"not reachable ({why}); supply it as a local folder written by save_pretrained "
        f"(model + tokenizer), or download it once where the hub is reachable (cached under "
        f"HF_HOME) and rerun with HF_HUB_OFFLINE=1"
    )


def _cache_first(name_or_path: str, load):
    """``load(local_files_only)``: the cache (or a local folder) first, so a cached or
    offline model never waits on the network; the hub only when that fails and
    ``HF_HUB_OFFLINE`` is not set. Any failure is one ``ValueError`` line naming the model."""
    local_only = Path(name_or_path).expanduser().is_dir() or bool(os.environ.get("HF_HUB_OFFLINE"))
    try:
        return load(True)
    except Exception as err:  # noqa: BLE001 - any loader failure becomes one line
        if local_only:
            raise _load_error(name_or_path, err) from None
    try:
        return load(False)
    except Exception as err:  # noqa: BLE001
        raise _load_error(name_or_path, err) from None


def load_tokenizer(name_or_path: str):
    """The model's tokenizer (cheap: the study checks every model with it before any compute)."""
    from transformers import AutoTokenizer

    return _cache_first(
        name_or_path,
        lambda local: AutoTokenizer.from_pretrained(name_or_path, local_files_only=local),
    )


def load_pretrained(name_or_path: str, dtype: torch.dtype = torch.float32):
    """``(model, tokenizer)`` from a local folder, the local cache, or the hub, the
    weights cast to ``dtype`` (float32 by default: the ridge fits want it, and some
    checkpoints, e.g. Pythia's, are stored in float16)."""
    from transformers import AutoModelForCausalLM

    model = _cache_first(
        name_or_path,
        lambda local: AutoModelForCausalLM.from_pretrained(name_or_path, local_files_only=local),
    )
    return model.to(dtype), load_tokenizer(name_or_path)


def model_kind(model) -> str:
    """``"hf"`` for a Hugging Face model, ``"transformer_lens"`` for a TransformerLens
    ``HookedTransformer``; one clear ``ValueError`` for anything else."""
    if hasattr(model, "config") and hasattr(model.config, "model_type"):
        return "hf"
    kind = type(model).__name__
    if kind == "TransformerBridge":
        raise ValueError(
            "a TransformerLens TransformerBridge wraps a Hugging Face model: pass that "
            "model and its tokenizer to LMAdapter (in TransformerLens 3/4: "
            "LMAdapter(bridge.original_model, bridge.tokenizer))"
        )
    if hasattr(model, "cfg") and hasattr(model, "run_with_hooks") and hasattr(model, "blocks"):
        return "transformer_lens"
    raise ValueError(
        f"unsupported model {kind}: LMAdapter takes a Hugging Face causal LM (GPT-2, "
        "GPT-NeoX/Pythia) or a TransformerLens HookedTransformer"
    )
