"""TransformerLens checkpoints in and out, without TransformerLens installed.

interpeq's :class:`~interpeq.models.HookedTransformer` has TransformerLens's hook names
and weight layout (``W_Q [n_heads, d_model, d_head]``, ``W_O [n_heads, d_head,
d_model]``, ``W_in [d_model, d_mlp]``, ...); only the embedding and unembedding sit at
the top level here (``W_E``, ``W_pos``, ``W_U``, ``b_U``) where TransformerLens nests
them (``embed.W_E``, ``pos_embed.W_pos``, ``unembed.W_U``, ``unembed.b_U``). So a
TransformerLens checkpoint of a small transformer is a renaming away:

* :func:`save_transformer_lens` writes a model as TransformerLens reads it: a folder
  with ``config.json`` (``HookedTransformerConfig`` keyword arguments) and
  ``model.safetensors`` (TransformerLens parameter names, its mask buffers included so
  that ``load_state_dict`` is strict). In TransformerLens::

      cfg = HookedTransformerConfig(**json.load(open("config.json")))
      model = HookedTransformer(cfg); model.load_state_dict(load_file("model.safetensors"))

* :func:`load_transformer_lens` reads such a folder (or a ``config.json`` and a weights
  file: ``.safetensors``, or ``.pt`` / ``.pth`` read with ``weights_only=True``) into
  interpeq's model, for every option interpeq's architecture has: attention-only
  models, layer norm ``LN`` / ``LNPre`` (pre-folded: weights 1, biases 0) / none,
  ``relu`` / ``gelu`` / ``gelu_new`` / ``silu``, causal or bidirectional attention. Any
  other option (rotary positions, RMS norm, gated MLPs, grouped keys, ...) is refused
  in one line naming it. A pickled config (``*.pkl``, as some collections ship) is
  refused: loading never runs code from a file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from interpeq.models.config import ACTIVATIONS, HookedTransformerConfig

TOP_LEVEL = {"W_E": "embed.W_E", "W_pos": "pos_embed.W_pos", "W_U": "unembed.W_U",
             "b_U": "unembed.b_U"}  # fmt: skip
NORMALIZATION = {"LN": True, "LNPre": True, None: False}
# options whose other values interpeq's model does not have: key -> accepted values
FIXED = {
    "positional_embedding_type": ("standard",),
    "gated_mlp": (False, None),
    "parallel_attn_mlp": (False, None),
    "n_key_value_heads": (None,),
    "final_rms": (False, None),
    "use_local_attn": (False, None),
    "attn_types": (None,),
    "post_embedding_ln": (False, None),
    "use_attn_scale": (True, None),
    "use_qk_norm": (False, None),
    "use_normalization_before_and_after": (False, None),
    "num_experts": (None,),
    "rotary_dim": (None,),
}


def config_from_transformer_lens(tl: dict[str, Any], seed: int = 0) -> HookedTransformerConfig:
    """interpeq's config of a TransformerLens config dict, or one ``ValueError`` line
    naming the option interpeq's model does not have."""
    for key, accepted in FIXED.items():
        if key in tl and tl[key] not in accepted:
            raise ValueError(
                f"TransformerLens option {key}={tl[key]!r} is not supported by interpeq's "
                f"model (supported: {list(accepted)})"
            )
    norm = tl.get("normalization_type", "LN")
    if norm not in NORMALIZATION:
        raise ValueError(
            f"TransformerLens option normalization_type={norm!r} is not supported by "
            f"interpeq's model (supported: {list(NORMALIZATION)})"
        )
    act = tl.get("act_fn", "gelu")
    if tl.get("attn_only") or act is None:
        act = "gelu"  # no MLP: the activation is never used
    if act not in ACTIVATIONS:
        raise ValueError(
            f"TransformerLens option act_fn={act!r} is not supported by interpeq's model "
            f"(supported: {list(ACTIVATIONS)})"
        )
    d_head = int(tl.get("d_head") or tl["d_model"] // tl["n_heads"])
    scale = tl.get("attn_scale", -1.0)
    if scale not in (None, -1, -1.0) and not math.isclose(float(scale), math.sqrt(d_head)):
        raise ValueError(
            f"TransformerLens option attn_scale={scale!r} is not supported by interpeq's "
            f"model (it scales attention scores by sqrt(d_head) = {math.sqrt(d_head):g})"
        )
    d_vocab_out = tl.get("d_vocab_out", -1)
    return HookedTransformerConfig(
        n_layers=int(tl["n_layers"]), d_model=int(tl["d_model"]), n_heads=int(tl["n_heads"]),
        d_head=d_head, d_mlp=0 if tl.get("attn_only") else int(tl["d_mlp"]),
        act_fn=act, n_ctx=int(tl["n_ctx"]), d_vocab=int(tl["d_vocab"]),
        d_vocab_out=int(tl["d_vocab"] if d_vocab_out in (None, -1) else d_vocab_out),
        attention=tl.get("attention_dir", "causal"), normalization=NORMALIZATION[norm],
        seed=int(tl.get("seed") or seed),
    )  # fmt: skip


def config_to_transformer_lens(cfg: HookedTransformerConfig) -> dict[str, Any]:
    """The ``HookedTransformerConfig`` keyword arguments of TransformerLens for ``cfg``."""
    return {
        "n_layers": cfg.n_layers, "d_model": cfg.d_model, "n_heads": cfg.n_heads,
        "d_head": cfg.d_head, "d_mlp": None if cfg.attn_only else cfg.d_mlp,
        "attn_only": cfg.attn_only, "act_fn": cfg.act_fn, "n_ctx": cfg.n_ctx,
        "d_vocab": cfg.d_vocab, "d_vocab_out": cfg.d_vocab_out,
        "attention_dir": cfg.attention, "positional_embedding_type": "standard",
        "normalization_type": "LN" if cfg.normalization else None, "seed": cfg.seed,
    }  # fmt: skip


def state_dict_to_transformer_lens(model: Any) -> dict[str, torch.Tensor]:
    """``model``'s weights under TransformerLens's names, with the attention buffers
    TransformerLens keeps in its state dict (the causal mask, ``IGNORE``)."""
    cfg = model.cfg
    out = {
        TOP_LEVEL.get(k, k): v.detach().cpu().contiguous() for k, v in model.state_dict().items()
    }
    mask = torch.ones(cfg.n_ctx, cfg.n_ctx).tril().bool()
    for layer in range(cfg.n_layers):
        out[f"blocks.{layer}.attn.mask"] = mask.clone()
        out[f"blocks.{layer}.attn.IGNORE"] = torch.tensor(-torch.inf)
    return out


def state_dict_from_transformer_lens(
    sd: dict[str, torch.Tensor], cfg: HookedTransformerConfig, normalization_type: Any
) -> dict[str, torch.Tensor]:
    """A TransformerLens state dict under interpeq's names: buffers dropped, ``LNPre``
    layer norms given their identity weights."""
    back = {v: k for k, v in TOP_LEVEL.items()}
    out = {
        back.get(k, k): v
        for k, v in sd.items()
        if not k.endswith((".attn.mask", ".attn.IGNORE", ".attn.rotary_sin", ".attn.rotary_cos"))
    }
    if normalization_type == "LNPre":
        names = [f"blocks.{i}.ln{j}" for i in range(cfg.n_layers) for j in (1, 2)]
        for name in [*names, "ln_final"]:
            if cfg.attn_only and name.endswith("ln2"):
                continue
            out.setdefault(f"{name}.w", torch.ones(cfg.d_model))
            out.setdefault(f"{name}.b", torch.zeros(cfg.d_model))
    return out


def save_transformer_lens(model: Any, folder: str | Path) -> Path:
    """Write ``model`` (interpeq's ``HookedTransformer``) as a TransformerLens
    checkpoint folder (module doc); returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state_dict_to_transformer_lens(model), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(
        json.dumps(config_to_transformer_lens(model.cfg), indent=2) + "\n"
    )
    return folder


def load_transformer_lens(path: str | Path, weights: str | Path | None = None) -> Any:
    """interpeq's ``HookedTransformer`` of a TransformerLens checkpoint: a folder with
    ``config.json`` and one weights file, or a ``config.json`` path and ``weights``."""
    from interpeq.models.transformer import HookedTransformer

    config, weights = _checkpoint_files(Path(path), weights)
    try:
        tl = json.loads(config.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{config}: not a readable JSON config ({err})") from None
    if not isinstance(tl, dict):
        raise ValueError(f"{config}: a TransformerLens config is a JSON object")
    cfg = config_from_transformer_lens(tl)
    sd = state_dict_from_transformer_lens(
        _read_weights(weights), cfg, tl.get("normalization_type", "LN")
    )
    model = HookedTransformer(cfg)
    try:
        missing, unexpected = model.load_state_dict(sd, strict=False)
    except RuntimeError as err:  # shapes that do not fit
        first = str(err).split("\n\t")[1] if "\n\t" in str(err) else str(err)
        raise ValueError(
            f"{weights}: weights do not fit the config in {config.name} ({first})"
        ) from None
    if missing or unexpected:
        raise ValueError(
            f"{weights}: weights do not fit the config in {config.name} (missing "
            f"{sorted(missing)[:4]}, unexpected {sorted(unexpected)[:4]})"
        )
    return model.eval()


def _checkpoint_files(path: Path, weights: str | Path | None) -> tuple[Path, Path]:
    if path.suffix == ".pkl" or (weights is not None and Path(weights).suffix == ".pkl"):
        raise ValueError(
            f"{path}: pickled files are not loaded (loading never runs code from a file); "
            "write the config as JSON (json.dump(cfg.to_dict(), ...)) and the weights as "
            "safetensors or a state dict (torch.save(model.state_dict(), ...))"
        )
    if path.is_dir():
        config = path / "config.json"
        found = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".pt", ".pth"))
        if weights is None and len(found) != 1:
            raise ValueError(
                f"{path}: expected config.json and one weights file (.safetensors, .pt or "
                f".pth), found {[p.name for p in found]}"
            )
        weights = weights or found[0]
    else:
        config = path
    if not config.is_file() or weights is None or not Path(weights).is_file():
        raise ValueError(
            f"{path}: a TransformerLens checkpoint needs config.json and its weights file"
        )
    return config, Path(weights)


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file or a ``torch.save``'d state dict (weights only)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or tampered file: one line, not a trace
        raise ValueError(
            f"{path}: not a readable weights file ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return sd
