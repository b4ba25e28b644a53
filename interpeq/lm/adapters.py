"""Equivalence operations on Hugging Face causal LMs (GPT-2, GPT-NeoX/Pythia) via hooks.

Our own :class:`interpeq.models.HookedTransformer` names its hook points; a pretrained
``transformers`` model does not, so :class:`LMAdapter` reaches the same places with
torch forward hooks, registered only for the modules a call needs and always removed
(a context manager), and addresses components exactly as our models do:
``AttnHead(layer, head)`` and ``MLP(layer)`` from :mod:`interpeq.models`.

* **A head's output** is its ``d_head`` slice (``head * d_head : (head + 1) * d_head``)
  of the *input* of the attention output projection (GPT-2 ``attn.c_proj``, NeoX
  ``attention.dense``): the merged per-head results before ``W_O``, the same place
  as our ``hook_z``. Heads are read and patched with forward *pre*-hooks there.
* **An MLP's output** is the output of the block's ``mlp`` module (our ``hook_mlp_out``).
* **Representations** (docs/method.md section 4): the accumulated residual stream -- the
  embedding and every block's output, ``L + 1`` states -- at one position (default the
  last *real* token; batches are right-padded so earlier positions never see padding),
  concatenated over layers: ``[n, (L + 1) * d_model]``. HF's ``output_hidden_states``
  gives states ``0..L-1`` raw but its last state already has the final layer norm
  applied; we read the raw last state from a pre-hook on the final norm, so
  ``apply_ln=True`` passes *every* state through the final layer norm (as our own
  :func:`interpeq.equivalence.representations` does), ``apply_ln="last"`` reproduces
  HF's ``hidden_states`` exactly (only the last normalised) and ``apply_ln=False``
  gives the raw stream (the paper's code, TransformerLens ``accumulated_resid``).

Everything runs under ``torch.no_grad()`` in eval mode in batches of ``batch_size``
rows; results come back on the device the tokens came from.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager

import torch
from torch import Tensor

from interpeq.lm.hooks import head_hook, mlp_hook
from interpeq.lm.loading import FAMILIES, _get, load_pretrained, model_kind, resolve_device
from interpeq.models import MLP, AttnHead, Component


class LMAdapter:
    """A causal LM with our component addresses: representations, head capture, patching."""

    def __new__(cls, model=None, *args, **kwargs):
        """A TransformerLens ``HookedTransformer`` gets :class:`~interpeq.lm.tl_adapter.
        TLAdapter` (its own hook points, the same interface); anything else without a
        Hugging Face config is one clear error."""
        if cls is LMAdapter and model is not None:
            kind = model_kind(model)
            for sub in LMAdapter.__subclasses__():  # registered by importing interpeq.lm
                if getattr(sub, "kind", None) == kind:
                    return super().__new__(sub)
        return super().__new__(cls)

    def __init__(self, model, tokenizer=None, *, name: str | None = None, device="auto"):
        model_type = model.config.model_type
        if model_type not in FAMILIES:
            raise ValueError(
                f"model {name or model_type!r}: model_type {model_type!r} is not supported; "
                f"supported: {sorted(FAMILIES)}"
            )
        self.family = FAMILIES[model_type]
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.name = name or getattr(model.config, "_name_or_path", "") or model_type
        cfg = model.config
        self.n_layers = int(cfg.num_hidden_layers)
        self.n_heads = int(cfg.num_attention_heads)
        self.d_model = int(cfg.hidden_size)
        self.d_head = self.d_model // self.n_heads
        self.blocks = _get(_get(model, self.family.base), self.family.blocks)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str, device="auto", *, dtype: torch.dtype = torch.float32
    ) -> LMAdapter:
        """Load by hub name (cache first) or from a local folder; see :func:`load_pretrained`."""
        model, tok = load_pretrained(str(name_or_path), dtype=dtype)
        return cls(model, tok, name=str(name_or_path), device=device)

    # ------------------------------------------------------------------ modules

    def components(self) -> list[Component]:
        """Every head and MLP, in layer order."""
        out: list[Component] = []
        for layer in range(self.n_layers):
            out += [AttnHead(layer, h) for h in range(self.n_heads)] + [MLP(layer)]
        return out

    def check(self, components: Sequence[Component]) -> None:
        for c in components:
            ok = 0 <= c.layer < self.n_layers
            if isinstance(c, AttnHead):
                ok = ok and 0 <= c.head < self.n_heads
            elif not isinstance(c, MLP):
                ok = False
            if not ok:
                raise ValueError(
                    f"{c!r} is not a component of {self.name} "
                    f"({self.n_layers} layers x {self.n_heads} heads)"
                )

    def _out_proj(self, layer: int):
        return _get(self.blocks[layer], self.family.out_proj)

    def _mlp(self, layer: int):
        return _get(self.blocks[layer], self.family.mlp)

    def _ln_final(self):
        return _get(_get(self.model, self.family.base), self.family.ln_final)

    # ------------------------------------------------------------------ hooks

    @contextmanager
    def hooks(
        self,
        *,
        head_patch: Mapping[int, tuple[Tensor, Tensor]] | None = None,
        mlp_patch: Mapping[int, tuple[Tensor, Tensor]] | None = None,
        capture_heads: Sequence[int] = (),
        capture_mlps: Sequence[int] = (),
        store: dict | None = None,
    ) -> Iterator[dict]:
        """Hooks for the forwards inside the ``with`` block, removed on exit.

        ``head_patch[layer] = (mask, source)``: ``mask`` bool ``[B or 1, H]`` says which
        heads of which row take ``source [B, T, H, d_head]``; ``mlp_patch[layer] =
        (mask [B or 1], source [B, T, d_model])`` likewise for the MLP output.
        ``capture_heads`` / ``capture_mlps`` write the (post-patch) head inputs
        ``[B, T, H, d_head]`` / MLP outputs into ``store[("attn" | "mlp", layer)]``.
        Nested contexts compose: a later hook sees the earlier one's patched input.
        """
        store = {} if store is None else store
        with ExitStack() as stack:
            for layer in sorted({*(head_patch or {}), *capture_heads}):
                patch = (head_patch or {}).get(layer)
                handle = self._hook_heads(layer, patch, layer in capture_heads, store)
                stack.callback(handle.remove)
            for layer in sorted({*(mlp_patch or {}), *capture_mlps}):
                patch = (mlp_patch or {}).get(layer)
                fn = mlp_hook(layer, patch, layer in capture_mlps, store)
                stack.callback(self._mlp(layer).register_forward_hook(fn).remove)
            yield store

    def _hook_heads(self, layer: int, patch, capture: bool, store: dict):
        """Register the head patch / capture of ``layer``; returns the hook handle."""
        fn = head_hook(self.n_heads, self.d_head, layer, patch, capture, store)
        return self._out_proj(layer).register_forward_pre_hook(fn)

    def component_patch(
        self, components: Sequence[Component], sources: Mapping[Component, Tensor]
    ) -> dict:
        """``hooks`` keyword arguments patching ``components`` (same for every row) with
        ``sources[c]`` (``[B, T, d_head]`` for a head, ``[B, T, d_model]`` for an MLP)."""
        self.check(components)
        head_patch, mlp_patch = {}, {}
        for c in components:
            src = sources[c]
            if isinstance(c, AttnHead):
                if c.layer not in head_patch:
                    shape = (*src.shape[:-1], self.n_heads, self.d_head)
                    mask = torch.zeros(1, self.n_heads, dtype=torch.bool, device=src.device)
                    head_patch[c.layer] = (mask, src.new_zeros(shape))
                mask, full = head_patch[c.layer]
                mask[0, c.head] = True
                full[..., c.head, :] = src
            else:
                mlp_patch[c.layer] = (torch.ones(1, dtype=torch.bool, device=src.device), src)
        return {"head_patch": head_patch, "mlp_patch": mlp_patch}

    @contextmanager
    def patching(self, components: Sequence[Component], sources: Mapping[Component, Tensor]):
        """Patch ``components`` with ``sources`` (one batch) for the forwards inside."""
        with self.hooks(**self.component_patch(components, sources)) as store:
            yield store

    # ------------------------------------------------------------------ forwards

    def forward(self, tokens: Tensor, attention_mask: Tensor | None = None, **kw):
        """One HF forward on the model's device (no batching, no grad)."""
        mask = torch.ones_like(tokens) if attention_mask is None else attention_mask
        with torch.no_grad():
            return self.model(
                input_ids=tokens.to(self.device),
                attention_mask=mask.to(self.device),
                use_cache=False,
                **kw,
            )

    def _batches(self, n: int, batch_size: int) -> Iterator[slice]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for start in range(0, n, batch_size):
            yield slice(start, min(n, start + batch_size))

    def positions(self, attention_mask: Tensor, position: int = -1) -> Tensor:
        """Per-row index of ``position``: negative counts back from the last real token."""
        lengths = attention_mask.sum(1).long()
        idx = lengths + position if position < 0 else torch.full_like(lengths, position)
        if bool((idx < 0).any() or (idx >= lengths).any()):
            raise ValueError(f"position {position} is outside some prompt (lengths {lengths})")
        return idx

    def _gather(self, x: Tensor, idx: Tensor) -> Tensor:
        return x[torch.arange(x.shape[0], device=x.device), idx.to(x.device)]

    def _reprs(self, states: list[Tensor], idx: Tensor, layers, apply_ln) -> Tensor:
        ln = self._ln_final()
        picked = []
        for k in layers:
            x = self._gather(states[k], idx)
            if apply_ln is True or (apply_ln == "last" and k == self.n_layers):
                x = ln(x)
            picked.append(x)
        return torch.cat(picked, dim=-1).float()

    def _check_repr_args(self, layers, apply_ln) -> list[int]:
        if apply_ln not in (True, False, "last"):
            raise ValueError(f"apply_ln must be True, False or 'last', got {apply_ln!r}")
        layers = list(range(self.n_layers + 1)) if layers is None else list(layers)
        if any(not 0 <= k <= self.n_layers for k in layers):
            raise ValueError(f"layers must lie in 0..{self.n_layers}, got {layers}")
        return layers

    @torch.no_grad()
    def represent_batch(
        self,
        tokens: Tensor,
        mask: Tensor,
        position: int = -1,
        layers: Sequence[int] | None = None,
        apply_ln: bool | str = True,
        patch: Mapping | None = None,
    ) -> Tensor:
        """:meth:`representations` of one batch, on the model's device, with optional
        :meth:`hooks` keyword arguments ``patch`` active during the forward."""
        layers = self._check_repr_args(layers, apply_ln)
        with self.hooks(**(patch or {})):
            states = self._states(tokens, mask)
        idx = self.positions(mask, position)
        return self._reprs(states, idx, layers, apply_ln)

    def _states(self, tokens: Tensor, mask: Tensor) -> list[Tensor]:
        """The ``L + 1`` raw residual states ``[B, T, d_model]`` of one forward: HF's
        hidden states ``0..L-1`` and the last one read before the final layer norm."""
        raw: list[Tensor] = []
        grab = self._ln_final().register_forward_pre_hook(lambda m, a: raw.append(a[0]))
        try:
            out = self.forward(tokens, mask, output_hidden_states=True)
        finally:
            grab.remove()
        return [*out.hidden_states[: self.n_layers], raw[-1]]

    @torch.no_grad()
    def representations(
        self,
        tokens: Tensor,
        attention_mask: Tensor | None = None,
        position: int = -1,
        layers: Sequence[int] | None = None,
        apply_ln: bool | str = True,
        *,
        batch_size: int = 32,
    ) -> Tensor:
        """``[n, len(layers) * d_model]`` float32 residual stream at ``position`` (module doc).

        ``layers`` index the ``L + 1`` states (default all); ``position`` -1 is the last
        real token of each row (``attention_mask``: 1 on real tokens, right padding).
        """
        mask = torch.ones_like(tokens) if attention_mask is None else attention_mask
        layers = self._check_repr_args(layers, apply_ln)
        outs = [
            self.represent_batch(tokens[r], mask[r], position, layers, apply_ln).to(tokens.device)
            for r in self._batches(tokens.shape[0], batch_size)
        ]
        return torch.cat(outs)

    @torch.no_grad()
    def activations(
        self,
        tokens: Tensor,
        attention_mask: Tensor | None = None,
        components: Sequence[Component] | None = None,
        *,
        batch_size: int = 32,
    ) -> dict[Component, Tensor]:
        """Captured outputs ``{component: [n, T, d_head | d_model]}`` (default: all heads)."""
        if components is None:
            components = [c for c in self.components() if isinstance(c, AttnHead)]
        self.check(components)
        heads = sorted({c.layer for c in components if isinstance(c, AttnHead)})
        mlps = sorted({c.layer for c in components if isinstance(c, MLP)})
        parts: dict[Component, list[Tensor]] = {c: [] for c in components}
        for rows in self._batches(tokens.shape[0], batch_size):
            with self.hooks(capture_heads=heads, capture_mlps=mlps) as store:
                self.forward(tokens[rows], None if attention_mask is None else attention_mask[rows])
            for c in components:
                x = store[c.kind, c.layer]
                parts[c].append(
                    (x[..., c.head, :] if isinstance(c, AttnHead) else x).to(tokens.device)
                )
        return {c: torch.cat(v) for c, v in parts.items()}

    @torch.no_grad()
    def logits(
        self, tokens: Tensor, attention_mask: Tensor | None = None, position: int | None = -1
    ) -> Tensor:
        """Logits at ``position`` (``[n, vocab]``; ``None``: every position ``[n, T, vocab]``)."""
        mask = torch.ones_like(tokens) if attention_mask is None else attention_mask
        logits = self.forward(tokens, mask).logits
        if position is None:
            return logits.float().to(tokens.device)
        return self._gather(logits, self.positions(mask, position)).float().to(tokens.device)

    @torch.no_grad()
    def patched_logits(
        self,
        tokens: Tensor,
        attention_mask: Tensor | None,
        components: Sequence[Component],
        source_activations: Mapping[Component, Tensor],
        *,
        position: int | None = -1,
        batch_size: int = 32,
    ) -> Tensor:
        """Logits with ``components`` overwritten by ``source_activations`` (as returned by
        :meth:`activations` on the source prompts, same rows and length), all positions."""
        mask = torch.ones_like(tokens) if attention_mask is None else attention_mask
        outs = []
        for rows in self._batches(tokens.shape[0], batch_size):
            sources = {c: source_activations[c][rows] for c in components}
            with self.patching(components, sources):
                outs.append(self.logits(tokens[rows], mask[rows], position))
        return torch.cat(outs)
