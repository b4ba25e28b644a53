"""Cost of hook points: present-but-unused vs the same maths without them; cache one vs all.

    .venv/bin/python benchmarks/bench_hooks.py [--batch 256] [--repeats 200]

The "no hook points" forward below is the transformer's maths written as plain
functions over the same weights (asserted equal), so the ratio isolates the cost of
the HookPoint module calls. Target: ratio <= 1.10.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F
from einops import einsum

from interpeq.models import HookedTransformer, HookedTransformerConfig


def layer_norm(x, ln):
    if not ln.enabled:
        return x
    x = x - x.mean(-1, keepdim=True)
    return x / (x.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() * ln.w + ln.b


def plain_forward(model: HookedTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """The same computation as ``model(tokens)`` with no hook points and no submodule calls
    (input validation included, as in the model, so only the hook points differ)."""
    model.check_tokens(tokens)
    resid = model.W_E[tokens] + model.W_pos[: tokens.shape[-1]]
    for block in model.blocks:
        a = block.attn
        x = layer_norm(resid, block.ln1)
        q = einsum(x, a.W_Q, "b p d, h d e -> b p h e") + a.b_Q
        k = einsum(x, a.W_K, "b p d, h d e -> b p h e") + a.b_K
        v = einsum(x, a.W_V, "b p d, h d e -> b p h e") + a.b_V
        scores = einsum(q, k, "b q h e, b k h e -> b h q k") / math.sqrt(q.shape[-1])
        z = einsum(scores.softmax(-1), v, "b h q k, b k h e -> b q h e")
        resid = resid + einsum(z, a.W_O, "b q h e, h e d -> b q d") + a.b_O
        if block.has_mlp:
            m = block.mlp
            resid = (
                resid + F.gelu(layer_norm(resid, block.ln2) @ m.W_in + m.b_in) @ m.W_out + m.b_out
            )
    return layer_norm(resid, model.ln_final) @ model.W_U + model.b_U


def timed(fns, repeats: int, rounds: int = 5) -> list[float]:
    """Best-of-``rounds`` seconds per call of each function, rounds interleaved so that
    load from other processes hits every function alike."""
    for fn in fns:
        for _ in range(3):
            fn()
    best = [math.inf] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / repeats)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny kernels: see interpeq.cli.set_cpu_threads
    torch.manual_seed(0)
    model = HookedTransformer(HookedTransformerConfig()).eval()
    tokens = torch.randint(0, 11, (args.batch, model.cfg.n_ctx))
    with torch.no_grad():
        torch.testing.assert_close(plain_forward(model, tokens), model(tokens))
        t_plain, t_hooked = timed(
            [lambda: plain_forward(model, tokens), lambda: model(tokens)], args.repeats
        )
        print(f"batch={args.batch} config={model.cfg.to_dict()}")
        print(f"forward without hook points : {t_plain * 1e3:8.3f} ms")
        print(f"forward, hook points unused : {t_hooked * 1e3:8.3f} ms")
        print(f"ratio hooked/plain          : {t_hooked / t_plain:8.3f}  (target <= 1.10)")

        one = ["blocks.1.hook_resid_post"]
        t_one, t_all = timed(
            [
                lambda: model.run_with_cache(tokens, names_filter=one),
                lambda: model.run_with_cache(tokens),
            ],
            args.repeats,
        )
        _, c1 = model.run_with_cache(tokens, names_filter=one)
        _, call = model.run_with_cache(tokens)
        mb = lambda cache: sum(t.numel() * t.element_size() for t in cache.values()) / 2**20  # noqa: E731
        print(f"cache 1 hook   : {t_one * 1e3:8.3f} ms, {mb(c1):8.2f} MiB cached")
        print(f"cache all {len(call)} : {t_all * 1e3:8.3f} ms, {mb(call):8.2f} MiB cached")
        print(f"all/one        : time x{t_all / t_one:.2f}, memory x{mb(call) / mb(c1):.1f}")


if __name__ == "__main__":
    main()
