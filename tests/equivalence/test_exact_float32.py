"""The ridge engine's numbers do not change under TF32 / reduced matmul precision or
autocast set by the caller, and the caller's settings come back afterwards."""

import torch

from interpeq.equivalence.loo import exact_float32
from interpeq.equivalence.ridge import RidgeEngine


def _reprs():
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(120, 12, generator=gen)
    return [base @ torch.randn(12, d, generator=gen) + 0.1 * torch.randn(120, d, generator=gen)
            for d in (16, 24, 9)]  # fmt: skip


def test_engine_equal_under_reduced_precision_and_autocast():
    reprs = _reprs()
    want = RidgeEngine(reprs).score_matrix()
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = RidgeEngine(reprs).score_matrix()
            assert torch.get_float32_matmul_precision() == "medium"
            assert torch.is_autocast_enabled("cpu")
        assert torch.equal(got, want)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # what it guards against
            assert (reprs[0].T @ reprs[1]).dtype == torch.bfloat16
    finally:
        torch.set_float32_matmul_precision(before)


def test_exact_float32_restores_settings_after_an_error():
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")
        try:
            with exact_float32():
                assert torch.backends.mkldnn.matmul.fp32_precision == "ieee"
                assert torch.backends.cuda.matmul.fp32_precision == "ieee"
                assert not torch.is_autocast_enabled("cpu")
                raise KeyError("boom")
        except KeyError:
            pass
        assert torch.get_float32_matmul_precision() == "high"
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
    finally:
        torch.set_float32_matmul_precision(before)
