"""IOI circuits of pretrained LMs: head importance, circuit choice, the GPT-2 reference set,
and co-implementations by patching the heads *outside* the circuit.

**Head importance** (the paper's code): patch one head's output from the clean run into
the corrupted run (all positions) and compare the output at the last real token with the
clean run. ``metric="kl"`` (default): ``KL(clean || patched)`` (``scores``, >= 0, as
``F.kl_div(log_softmax(patched), softmax(clean))``); the head's **importance** is how far
patching it alone moves that KL from the unpatched corrupted run's,
``|KL(clean || corrupt) - KL(clean || patched)|`` (mean over prompts; heads that make the
output worse count too, e.g. negative name movers). ``metric="logit_diff"``: ``scores`` =
mean ``logit[IO] - logit[S]`` of the patched run, importance ``|scores - LD(corrupt)|``.
Several heads run in one forward: the corrupted batch is repeated, one head per copy.

**Circuit rule** (:func:`select_circuit`): ``"fraction"`` (default) -- the smallest set of
most important heads whose importance sums to at least ``fraction`` (default 0.8) of the
total; ``"top_k"`` -- the ``k`` most important heads. At least one head is always chosen.

**Co-implementations** (docs/method.md sections 6 and 12): draw ``j`` patches a random subset of the
non-circuit heads (each with probability ``p_include``, redrawn while empty; seeded) with
their activations on each row's *corrupted* prompt, and reads the representation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from interpeq.console import bars_disabled
from interpeq.equivalence.defaults import DEFAULT_M
from interpeq.lm.adapters import LMAdapter
from interpeq.lm.ioi import IOIBatch
from interpeq.models import AttnHead

METRICS = ("kl", "logit_diff")
RULES = ("fraction", "top_k")

# Wang et al. (2022) IOI circuit in GPT-2 small, head classes as listed by ACDC.
GPT2_IOI_CIRCUIT: dict[str, list[tuple[int, int]]] = {
    "name mover": [(9, 9), (9, 6), (10, 0)],
    "negative name mover": [(10, 7), (11, 10)],
    "s-inhibition": [(7, 3), (7, 9), (8, 6), (8, 10)],
    "induction": [(5, 5), (5, 8), (5, 9), (6, 9)],
    "duplicate token": [(0, 1), (0, 10), (3, 0)],
    "previous token": [(2, 2), (4, 11)],
    "backup name mover": [
        (10, 10), (10, 6), (10, 2), (10, 1), (11, 2), (9, 7), (9, 0), (11, 9),
    ],
}  # fmt: skip


@dataclass
class HeadImportance:
    """Per-head patching results, ``[L, H]`` each."""

    metric: str
    scores: Tensor  # KL(clean || patched) or patched logit difference
    importance: Tensor  # |baseline - patched| (see the module doc)
    baseline: float  # KL(clean || corrupt) or LD(corrupt)
    clean: float  # 0 for KL, LD(clean) for logit_diff


def _row_metric(metric: str, logits: Tensor, ref: Tensor, batch: IOIBatch, rows) -> Tensor:
    """Per-row metric of last-position ``logits`` (``ref``: clean logits, same rows)."""
    if metric == "kl":
        lp, lq = ref.double().log_softmax(-1), logits.double().log_softmax(-1)
        return (lp.exp() * (lp - lq)).sum(-1)
    k = logits.shape[0] // batch.io_ids[rows].shape[0]
    io, s = batch.io_ids[rows].repeat(k), batch.s_ids[rows].repeat(k)
    ar = torch.arange(logits.shape[0])
    return (logits[ar, io.to(logits.device)] - logits[ar, s.to(logits.device)]).double().cpu()


def _chunks(items: list, k: int) -> list[list]:
    return [items[i : i + k] for i in range(0, len(items), k)]


def _one_head_per_copy(adapter: LMAdapter, chunk, clean_store: dict, b: int) -> dict:
    """``hooks`` patches: copy ``i`` of the batch gets head ``chunk[i]`` from the clean run."""
    patch = {}
    for i, (layer, head) in enumerate(chunk):
        if layer not in patch:
            src = clean_store["attn", layer].repeat(len(chunk), 1, 1, 1)
            mask = torch.zeros(len(chunk) * b, adapter.n_heads, dtype=torch.bool)
            patch[layer] = (mask, src)
        patch[layer][0][i * b : (i + 1) * b, head] = True
    return {"head_patch": patch}


@torch.no_grad()
def head_importance(
    adapter: LMAdapter,
    batch: IOIBatch,
    metric: str = "kl",
    *,
    batch_size: int = 32,
    heads_per_forward: int | None = None,
    progress: bool = False,
) -> HeadImportance:
    """Patch each head clean -> corrupted, one at a time (module doc); ``batch_size``
    rows per forward, ``heads_per_forward`` heads per forward (default ``n_heads``)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {list(METRICS)}")
    L, H = adapter.n_layers, adapter.n_heads
    heads = [(layer, h) for layer in range(L) for h in range(H)]
    chunks = _chunks(heads, max(1, min(heads_per_forward or H, L * H)))
    per = max(1, batch_size // len(chunks[0]))
    sums, base, clean_sum, n = torch.zeros(L * H, dtype=torch.float64), 0.0, 0.0, 0
    starts = range(0, batch.clean.shape[0], per)
    bar = tqdm(
        total=len(starts) * len(chunks),
        desc=f"{adapter.name} heads",
        disable=bars_disabled(progress),
    )
    for start in starts:
        rows = slice(start, min(start + per, batch.clean.shape[0]))
        clean, corrupt, mask = batch.clean[rows], batch.corrupt[rows], batch.mask[rows]
        with adapter.hooks(capture_heads=range(L)) as store:
            ref = adapter.logits(clean, mask).to(adapter.device)
        corr = adapter.logits(corrupt, mask).to(adapter.device)
        base += float(_row_metric(metric, corr, ref, batch, rows).sum())
        clean_sum += float(_row_metric(metric, ref, ref, batch, rows).sum())
        b = clean.shape[0]
        for k, chunk in enumerate(chunks):
            with adapter.hooks(**_one_head_per_copy(adapter, chunk, store, b)):
                out = adapter.logits(corrupt.repeat(len(chunk), 1), mask.repeat(len(chunk), 1))
            vals = _row_metric(
                metric, out.to(adapter.device), ref.repeat(len(chunk), 1), batch, rows
            )
            first = k * len(chunks[0])
            sums[first : first + len(chunk)] += vals.reshape(len(chunk), b).sum(1).cpu()
            bar.update()
        n += b
    bar.close()
    scores = (sums / n).reshape(L, H).float()
    importance = (scores.double() - base / n).abs().float()
    return HeadImportance(metric, scores, importance, base / n, clean_sum / n)


def select_circuit(
    importance: Tensor, rule: str = "fraction", *, fraction: float = 0.8, k: int = 20
) -> list[AttnHead]:
    """The circuit's heads by ``rule`` (module doc), sorted by (layer, head)."""
    if rule not in RULES:
        raise ValueError(f"unknown circuit rule {rule!r}; choose one of {list(RULES)}")
    flat = importance.flatten().double()
    order = sorted(range(flat.numel()), key=lambda i: (-float(flat[i]), i))
    if rule == "top_k":
        if k < 1:
            raise ValueError(f"circuit k must be >= 1, got {k}")
        chosen = order[:k]
    else:
        if not 0 < fraction <= 1:
            raise ValueError(f"circuit fraction must be in (0, 1], got {fraction}")
        total, acc, chosen = float(flat.sum()), 0.0, []
        for i in order:
            chosen.append(i)
            acc += float(flat[i])
            if acc >= fraction * total:
                break
    H = importance.shape[1]
    return sorted((AttnHead(i // H, i % H) for i in chosen), key=lambda c: (c.layer, c.head))


def reference_heads(reference: dict[str, list[tuple[int, int]]] | None = None) -> set[AttnHead]:
    ref = GPT2_IOI_CIRCUIT if reference is None else reference
    return {AttnHead(layer, h) for heads in ref.values() for layer, h in heads}


def compare_with_reference(
    circuit: Iterable[AttnHead], reference: dict[str, list[tuple[int, int]]] | None = None
) -> dict:
    """Overlap, precision, recall and Jaccard of ``circuit`` against the reference
    (default the GPT-2 small IOI circuit), and which heads of each class were found."""
    ref = GPT2_IOI_CIRCUIT if reference is None else reference
    found, want = set(circuit), reference_heads(ref)
    both = found & want

    def name(c: AttnHead) -> str:
        return f"{c.layer}.{c.head}"

    return {
        "n_circuit": len(found),
        "n_reference": len(want),
        "overlap": len(both),
        "precision": len(both) / len(found) if found else 0.0,
        "recall": len(both) / len(want) if want else 0.0,
        "jaccard": len(both) / len(found | want) if found | want else 0.0,
        "classes": {
            cls: {
                "found": [f"{a}.{b}" for a, b in heads if AttnHead(a, b) in found],
                "missing": [f"{a}.{b}" for a, b in heads if AttnHead(a, b) not in found],
            }
            for cls, heads in ref.items()
        },
        "extra": sorted(name(c) for c in found - want),
    }


def draw_masks(pool: Sequence[AttnHead], m: int, seed: int, p_include: float, L: int, H: int):
    """``[m, L, H]`` bool: draw ``j``'s patched heads, a nonempty random subset of ``pool``."""
    if not pool:
        raise ValueError("the circuit covers every head: no non-circuit heads to patch")
    if not 0 < p_include <= 1:
        raise ValueError(f"p_include must be in (0, 1], got {p_include!r}")
    gen = torch.Generator().manual_seed(int(seed))
    masks = torch.zeros(m, L, H, dtype=torch.bool)
    for j in range(m):
        pick = torch.zeros(len(pool), dtype=torch.bool)
        while not pick.any():
            pick = torch.rand(len(pool), generator=gen) < p_include
        for c, on in zip(pool, pick.tolist(), strict=True):
            masks[j, c.layer, c.head] = on
    return masks


@torch.no_grad()
def co_implementations(
    adapter: LMAdapter,
    batch: IOIBatch,
    circuit: Sequence[AttnHead],
    m: int = DEFAULT_M,
    seed: int = 0,
    *,
    p_include: float = 0.5,
    position: int = -1,
    layers: Sequence[int] | None = None,
    apply_ln: bool | str = True,
    batch_size: int = 32,
    progress: bool = False,
) -> Tensor:
    """``[m, n, D]`` representations of ``m`` non-circuit-patched variants (module doc)."""
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    adapter.check(list(circuit))
    L, H = adapter.n_layers, adapter.n_heads
    inside = set(circuit)
    pool = [AttnHead(layer, h) for layer in range(L) for h in range(H)]
    masks = draw_masks([c for c in pool if c not in inside], m, seed, p_include, L, H)
    n = batch.clean.shape[0]
    out = []
    bar = tqdm(
        total=m * -(-n // batch_size),
        desc=f"{adapter.name} co-impls",
        disable=bars_disabled(progress),
    )
    for start in range(0, n, batch_size):
        rows = slice(start, min(n, start + batch_size))
        mask = batch.mask[rows]
        with adapter.hooks(capture_heads=range(L)) as store:
            adapter.forward(batch.corrupt[rows], mask)
        draws = []
        for j in range(m):
            patch = {
                layer: (masks[j, layer][None], store["attn", layer])
                for layer in range(L)
                if masks[j, layer].any()
            }
            rep = adapter.represent_batch(
                batch.clean[rows], mask, position, layers, apply_ln, {"head_patch": patch}
            )
            draws.append(rep.cpu())
            bar.update()
        out.append(torch.stack(draws))
    bar.close()
    return torch.cat(out, dim=1)
