"""torchmetrics adapters: agreement with the functional core, batching, reset, plot, DDP."""

import json

import pytest
import torch

from interpeq.equivalence import congruity, similarity
from interpeq.metrics import InterpretiveEquivalence, RepresentationSimilarity


def data(n=80, m=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 4, generator=g)
    w = torch.randn(4, 8, generator=g)

    def impl():
        return z @ w + 0.5 * torch.randn(n, 8, generator=g)

    return (
        impl(),
        torch.stack([impl() for _ in range(m)]),
        impl(),
        torch.stack([impl() for _ in range(m)]),
    )


def test_metric_matches_functional_and_batching():
    a, ia, b, ib = data()
    ref = congruity(a, ia, b, ib, alpha=0.3, seed=2)
    metric = InterpretiveEquivalence(alpha=0.3, seed=2)
    for lo in range(0, 80, 30):  # arrival order shuffled via indices
        s = slice(lo, lo + 30)
        metric.update(a[s], b[s], ia[:, s], ib[:, s], indices=torch.arange(80)[s])
    out = metric.compute()
    assert out["congruity"].item() == pytest.approx(ref.congruity)
    assert out["p_value"].item() == pytest.approx(ref.p_value)
    assert out["reject"].item() == ref.reject and out["n_samples"].item() == 80
    # reversed batch order with indices: same numbers; without indices: fingerprint order
    rev = InterpretiveEquivalence(alpha=0.3, seed=2)
    rev2 = InterpretiveEquivalence(alpha=0.3, seed=2)
    for lo in reversed(range(0, 80, 20)):
        s = slice(lo, lo + 20)
        rev.update(a[s], b[s], ia[:, s], ib[:, s], indices=torch.arange(80)[s])
        rev2.update(a[s], b[s], ia[:, s], ib[:, s])
    assert rev.compute()["d_ab"].item() == pytest.approx(out["d_ab"].item(), abs=1e-12)
    fwd2 = InterpretiveEquivalence(alpha=0.3, seed=2)
    fwd2.update(a, b, ia, ib)
    assert fwd2.compute()["d_ab"].item() == pytest.approx(rev2.compute()["d_ab"].item(), abs=1e-12)
    metric.reset()
    with pytest.raises(ValueError, match="before any update"):
        metric.compute()
    assert (
        InterpretiveEquivalence.higher_is_better and not InterpretiveEquivalence.is_differentiable
    )
    assert InterpretiveEquivalence.full_state_update is False


def test_metric_bad_input_and_plot():
    a, ia, b, ib = data()
    metric = InterpretiveEquivalence()
    with pytest.raises(ValueError, match="impls_a has 6 co-implementations but impls_b has 5"):
        metric.update(a, b, ia, ib[:5])
    with pytest.raises(ValueError, match="repr_b has 79 samples"):
        metric.update(a, b[:79], ia, ib)
    with pytest.raises(ValueError, match="indices has 3 entries"):
        metric.update(a, b, ia, ib, indices=torch.arange(3))
    metric = InterpretiveEquivalence(alpha=0.3)
    metric.update(a, b, ia, ib)
    fig, ax = metric.plot()
    assert ax.get_ylabel() == "congruity"
    vals = [metric.compute(), metric.compute()]
    fig, ax = metric.plot(vals)
    assert fig is ax.get_figure()


def test_similarity_metric():
    a, _, b, _ = data()
    metric = RepresentationSimilarity()
    metric.update(a[:40], b[:40], indices=torch.arange(40))
    metric.update(a[40:], b[40:], indices=torch.arange(40, 80))
    out = metric.compute()
    assert out["similarity"].item() == pytest.approx(similarity(a, b), abs=1e-12)
    cka = RepresentationSimilarity(method="cka")
    cka.update(a, b)
    assert 0 < cka.compute()["similarity"].item() <= 1
    fig, ax = metric.plot()
    with pytest.raises(ValueError, match="method"):
        RepresentationSimilarity(method="rsa")


def test_ddp_lightning_two_processes_equal_one(tmp_path):
    """Lightning ``strategy="ddp"`` on 2 gloo CPU processes, each rank with its own
    uneven share of the batches (one rank: no sample at all in ``empty``), gives the
    1-process values; the padding duplicate of sample 0 counts once."""
    from ddp_scripts import launch, metric_ddp

    one = metric_ddp.run(range(10))
    out = tmp_path / "out.json"
    launch.run([str(launch.HERE / "metric_ddp.py"), str(out)], timeout=110)
    results = json.loads(out.read_text())
    assert set(results) == {"uneven", "lopsided", "empty"}
    rows = {"uneven": [60, 41], "lopsided": [90, 11], "empty": [101, 0]}
    for mode, two in results.items():
        assert two.pop("rows_per_rank") == rows[mode], mode  # really split as intended
        assert two.pop("congruity_per_rank") == [one["congruity"]] * 2, mode  # same on each rank
        assert one["n_samples"] == two["n_samples"] == 100, mode
        assert set(two) == set(one)
        for key, value in one.items():
            assert two[key] == pytest.approx(value, abs=1e-9), (mode, key)
    assert 0 < one["sim_similarity"] < 1 and 0 < one["p_value"] < 1  # not a degenerate case


def test_metric_states_follow_the_metric_device_not_the_inputs(monkeypatch):
    """NCCL gathers device tensors only: update() moves host inputs (interpeq's own
    captures come back on the CPU) to the metric's device. Faked here with the metric
    on the meta device and the inputs on the CPU."""
    a, ia, b, ib = data(n=8, m=2)
    metric = InterpretiveEquivalence()
    monkeypatch.setattr(metric, "_device", torch.device("meta"))
    metric.update(a, b, ia, ib, indices=torch.arange(8))
    states = [metric.repr_a, metric.repr_b, metric.impls_a, metric.impls_b, metric.index]
    assert {s[-1].device.type for s in states} == {"meta"}
    assert all(s[-1].numel() > 0 for s in states)
