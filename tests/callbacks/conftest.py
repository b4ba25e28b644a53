import logging

import pytest
import torch

from interpeq.models import HookedTransformerConfig
from interpeq.training import TrainConfig, default_correspondence, resolve_task
from tests.conftest import EVERY_MEMBER_COUNTS

TINY = HookedTransformerConfig(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32)
TRAIN = TrainConfig(
    batch_size=64, max_steps=60, val_every=30, val_size=64, test_size=64, warmup_steps=5
)


@pytest.fixture(autouse=True, scope="session")
def _quiet():
    for name in ("lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(1)


def corr(task: str, cfg=TINY):
    return default_correspondence(resolve_task(task).task, cfg)


@pytest.fixture(scope="session")
def ref_zoo(tmp_path_factory):
    """Two interpretations (add_next, all_equal), two seeds each, trained stacked (tiny)."""
    from interpeq.zoo import ZooSpec, run_zoo

    spec = ZooSpec.from_dict(
        {
            "name": "refs",
            "tasks": ["add_next", "all_equal"],
            "seeds": [0, 1],
            "settings": ["D"],
            "model": {"n_layers": 2, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32},
            "train": {
                k: getattr(TRAIN, k)
                for k in (
                    "batch_size",
                    "max_steps",
                    "val_every",
                    "val_size",
                    "test_size",
                    "warmup_steps",
                )
            },
        }
    )
    return run_zoo(spec, tmp_path_factory.mktemp("zoo"), progress=False, retry=EVERY_MEMBER_COUNTS)
