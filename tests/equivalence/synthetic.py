"""Synthetic representations with a known answer (shared by the equivalence tests)."""

import torch


def implementation(z, w_circuit, gen, sigma=0.7):
    """A representation: the circuit part ``z @ w_circuit`` plus fresh non-circuit structure."""
    n, d = z.shape[0], w_circuit.shape[1]
    other = torch.randn(n, 4, generator=gen) @ torch.randn(4, d, generator=gen)
    return z @ w_circuit + sigma * other + 0.1 * torch.randn(n, d, generator=gen)


def pair(seed, same, m=40, n=100, d=16):
    """``(a, impls_a, b, impls_b)``; ``same``: b is drawn exactly like a's co-implementations."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 6, generator=gen)
    w = torch.randn(6, d, generator=gen)
    a = implementation(z, w, gen)
    ia = torch.stack([implementation(z, w, gen) for _ in range(m)])
    zb = z if same else torch.randn(n, 6, generator=gen)
    b = implementation(zb, w, gen)
    ib = torch.stack([implementation(zb, w, gen) for _ in range(m)])
    return a, ia, b, ib


def fake_cross(gen, within: float, across: float):
    """A stand-in for ``pairwise_congruity``'s ``cross``: each pair's similarity is
    ``1 - scale * U(0.5, 1.5)`` with ``scale`` = ``within`` (same group) or ``across``,
    drawn once per pair in the order pairs are first asked for."""
    noise = {}

    def cross(us, pairs, **_):
        out = []
        for i, j in pairs:
            key = (min(i, j), max(i, j))
            if key not in noise:
                scale = within if us[i].group == us[j].group else across
                noise[key] = scale * (0.5 + float(torch.rand(1, generator=gen)))
            out.append(1 - noise[key])
        return torch.tensor(out, dtype=torch.float64)

    return cross
