import logging

import pytest
import torch

from interpeq.models import HookedTransformerConfig
from interpeq.training import TrainConfig

TINY = HookedTransformerConfig(n_layers=2, d_model=32, n_heads=2, d_head=8, d_mlp=64)


@pytest.fixture(autouse=True, scope="session")
def _quiet():
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)


@pytest.fixture
def tiny_train():
    return TrainConfig(
        batch_size=32, max_steps=6, val_every=3, val_size=64, test_size=64, warmup_steps=2
    )
