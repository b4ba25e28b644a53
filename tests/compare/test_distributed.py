"""Distributed comparison: the pair work split into blocks (here and over Ray workers)
gives exactly the single-process rows, and ``compare_zoo`` writes the same files."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys

import pytest
import torch

from interpeq.compare import compare_zoo, main
from interpeq.compare.distributed import pairwise_congruity_blocks, plan_cross
from interpeq.equivalence import Unit, pairwise_congruity
from tests.conftest import EVERY_MEMBER_COUNTS

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(
    not HAVE_RAY, reason="Ray is not installed: pip install 'interpeq[ray]' (the dev extra has it)"
)


def make_units(k_per_group=4, groups=("A", "B", "C"), n=60, m=6, seed=0) -> list[Unit]:
    """Units of different widths (so the engine pads targets), groups from different
    latents, co-implementations that move a unit a little."""
    g = torch.Generator().manual_seed(seed)
    units = []
    for gi, group in enumerate(groups):
        z = torch.randn(n, 5, generator=g)
        for u in range(k_per_group):
            d = 6 + 3 * ((u + gi) % 3)
            x = z @ torch.randn(5, d, generator=g) + 0.3 * torch.randn(n, d, generator=g)
            impls = x + 0.2 * torch.randn(m, n, d, generator=g)
            units.append(Unit(f"{group}{u}", group, x, impls))
    return units


def fresh(units: list[Unit]) -> list[Unit]:
    """The same units with nothing cached (self-distances are cached on a unit)."""
    return [Unit(u.id, u.group, u.reprs, u.impls) for u in units]


def exact(rows) -> str:
    return json.dumps(rows)  # floats by repr: equal strings = bit-identical numbers


def square(k):
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


def rect(k):
    return [(i, j) for i in range(k // 2) for j in range(k // 2, k)]


RAY_RESOURCES = {"num_cpus": 2}  # for conftest's local_ray


def test_block_plan_cuts_aligned_rows_only_for_the_compare_layouts():
    pairs = square(20)  # row i holds 19 - i pairs
    plan = plan_cross(pairs, 3, chunk=4)
    assert len(plan) == 3 and plan[0][0] == 0 and plan[-1][1] == len(pairs)
    assert all(a[1] == b[0] for a, b in zip(plan, plan[1:], strict=False))  # contiguous
    for lo, _ in plan[1:]:  # cut only before a row whose first unit is a multiple of 4
        assert pairs[lo][0] % 4 == 0 and pairs[lo - 1][0] != pairs[lo][0]
    sizes = [hi - lo for lo, hi in plan]
    assert max(sizes) - min(sizes) <= 4 * 19  # within one aligned group of rows
    assert len(plan_cross(pairs, 50, chunk=4)) == 5  # never more blocks than groups
    assert plan_cross(pairs, 3, chunk=64) == [(0, len(pairs))]  # 20 units: one batch
    assert plan_cross(rect(16), 2, chunk=4) == [(0, 32), (32, 64)]
    shuffled = pairs[::-1]  # not a compare layout: one block
    assert plan_cross(shuffled, 3, chunk=4) == [(0, len(pairs))]
    holey = [p for p in pairs if p != (0, 5)]  # unit 5's earlier targets: 1, 2, 3, 4
    assert plan_cross(holey, 3, chunk=4) == [(0, len(holey))]


@pytest.mark.parametrize("impls", ["intervention", "training"])
@pytest.mark.parametrize("layout", [square, rect], ids=["within", "against"])
@pytest.mark.parametrize("workers", [1, 3, 5])
def test_local_blocks_equal_single_process(impls, layout, workers):
    units = make_units(k_per_group=6)  # 18 units; batches of 4 targets: 5 row groups
    pairs = layout(len(units))
    kw = {"alpha": 0.1, "seed": 3, "impls": impls, "test_fraction": 0.2, "target_chunk": 4}
    single = pairwise_congruity(fresh(units), pairs, **kw)
    blocks = pairwise_congruity_blocks(fresh(units), pairs, workers=workers, launcher="local", **kw)
    assert exact(blocks) == exact(single)
    # the test can fail: another seed moves the numbers
    other = pairwise_congruity_blocks(
        fresh(units), pairs, workers=workers, launcher="local", **{**kw, "seed": 4}
    )
    assert exact(other) != exact(single)


def test_blocks_with_the_default_batches_equal_single_process():
    units = make_units(k_per_group=23, n=40, m=2)  # 69 units: two row groups of 64
    kw = {"alpha": 0.1, "seed": 2}
    single = pairwise_congruity(fresh(units), **kw)
    blocks = pairwise_congruity_blocks(fresh(units), workers=2, launcher="local", **kw)
    assert exact(blocks) == exact(single)


def test_bad_distribution_requests_are_clear_errors(tmp_path, monkeypatch):
    units = make_units(k_per_group=2, groups=("A",))
    with pytest.raises(ValueError, match="workers must be a positive int"):
        pairwise_congruity_blocks(units, workers=0)
    with pytest.raises(ValueError, match="unknown launcher 'spark'"):
        pairwise_congruity_blocks(units, launcher="spark")
    with pytest.raises(ValueError, match="gpus_per_worker must be"):
        pairwise_congruity_blocks(units, gpus_per_worker=-1)
    with pytest.raises(ValueError, match="need --launcher ray"):
        compare_zoo(tmp_path, workers=2)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ValueError, match=r"pip install 'interpeq\[ray\]'"):
        pairwise_congruity_blocks(units, workers=2, launcher="ray")


@needs_ray
@pytest.mark.parametrize("impls", ["intervention", "training"])
def test_ray_blocks_equal_single_process(local_ray, impls):
    units = make_units(k_per_group=5, n=80)
    kw = {"alpha": 0.05, "seed": 1, "impls": impls, "target_chunk": 4}
    single = pairwise_congruity(fresh(units), **kw)
    distributed = pairwise_congruity_blocks(fresh(units), workers=2, launcher="ray", **kw)
    assert exact(distributed) == exact(single)
    assert len({r["similarity"] for r in single}) > 10  # a matrix of varied numbers


@needs_ray
def test_compare_zoo_over_two_ray_workers_writes_the_same_files(local_ray, tmp_path):
    from interpeq.zoo import ZooSpec, run_zoo

    for name in ("lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    spec = ZooSpec.from_dict(
        {
            "name": "dist",
            "tasks": ["add_next", "all_equal"],
            "seeds": [0, 1, 2, 3],  # four per group: the calibrated null scores every pair
            "settings": ["D"],
            "model": {"n_layers": 2, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32},
            "train": {
                "max_steps": 40,
                "batch_size": 64,
                "val_every": 20,
                "val_size": 64,
                "test_size": 64,
                "warmup_steps": 5,
            },
        }
    )
    zoo = run_zoo(spec, tmp_path / "root", progress=False, retry=EVERY_MEMBER_COUNTS)
    one = compare_zoo(zoo, out_dir=tmp_path / "one", n_probes=64, m=8, progress=False)
    args = [str(zoo.path), "--n-probes", "64", "--m", "8", "--logger", "none", "--no-progress"]
    args += ["--out", str(tmp_path / "two"), "--launcher", "ray", "--workers", "2"]
    assert main(args) == 0
    for name in ("matrix.csv", "results.json"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    assert one.summary["n_pairs"] == 28
    assert len({r["congruity"] for r in one.pairs}) > 3  # not a constant matrix
    assert all(r["null_a"] == "calibrated" for r in one.pairs)
    assert (tmp_path / "two" / "matrix.png").stat().st_size > 0
    # another reading travels to the Ray workers and gives the local numbers
    read = ["--representation", "no-embedding", "--out"]
    assert main([*args[:-6], *read, str(tmp_path / "three"), *args[-4:]]) == 0
    local = compare_zoo(
        zoo, out_dir=tmp_path / "four", n_probes=64, m=8, progress=False,
        representation="no-embedding",
    )  # fmt: skip
    three = (tmp_path / "three" / "matrix.csv").read_bytes()
    assert three == (tmp_path / "four" / "matrix.csv").read_bytes()
    assert local.summary["representation"] == "no-embedding"
    assert three != (tmp_path / "one" / "matrix.csv").read_bytes()
