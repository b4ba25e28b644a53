"""Held-out evaluation runs on the device the member trained on, not on the host."""

import pytest
import torch

from interpeq.training import TrainConfig, default_correspondence, fit_member, resolve_task
from interpeq.training import fit as fit_module
from interpeq.training import stacked as stacked_module
from interpeq.training.stacked import fit_stacked

from .conftest import TINY


@pytest.mark.parametrize(
    ("kwargs", "local_rank", "want"),
    [
        ({}, None, "cuda:0"),
        ({"accelerator": "gpu"}, "1", "cuda:1"),
        ({"accelerator": "cuda", "devices": [3, 2]}, "1", "cuda:2"),
        ({"accelerator": "cpu"}, None, "cpu"),
    ],
)
def test_training_device_follows_the_trainer(monkeypatch, kwargs, local_rank, want):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    if local_rank is None:
        monkeypatch.delenv("LOCAL_RANK", raising=False)
    else:
        monkeypatch.setenv("LOCAL_RANK", local_rank)
    assert fit_module.training_device(kwargs) == torch.device(want)


def test_training_device_without_a_gpu_is_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert fit_module.training_device({"accelerator": "auto"}) == torch.device("cpu")


class _Spy:
    """Stands in for ``evaluate``: records where the model is and what the trainer was told."""

    def __init__(self):
        self.devices, self.asked = [], []

    def device(self, trainer_kwargs=None):
        self.asked.append(trainer_kwargs)
        return torch.device("cpu")

    def evaluate(self, net, *args, **kwargs):
        self.devices.append(next(net.parameters()).device)
        return {"acc": 1.0, "iia": 1.0, "strict_acc": 1.0}


def test_members_are_evaluated_where_they_trained(monkeypatch, tmp_path):
    spy = _Spy()
    for module in (fit_module, stacked_module):
        monkeypatch.setattr(module, "training_device", spy.device)
        monkeypatch.setattr(module, "evaluate", spy.evaluate)
    train = TrainConfig(batch_size=8, max_steps=2, val_every=2, val_size=8, test_size=8)
    corr = default_correspondence(resolve_task("rank").task, TINY)
    kwargs = {"accelerator": "cpu"}
    res = fit_member(task="rank", model=TINY, correspondence=corr, train=train,
                     ckpt_dir=tmp_path / "one", trainer_kwargs=kwargs)  # fmt: skip
    stack = [("rank", corr, train), ("rank", corr, train.replace(seed=1))]
    fit_stacked(stack, TINY, ckpt_dir=tmp_path / "stack", trainer_kwargs=kwargs)
    assert spy.asked == [kwargs] * 2 and len(spy.devices) == 3
    assert res.metrics["acc"] == 1.0 and next(res.model.parameters()).device.type == "cpu"
