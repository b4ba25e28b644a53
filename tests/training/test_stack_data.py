"""A stack's training data: labelled once per task, drawn by workers in step order, and
exactly the batches each member draws alone."""

import torch
from torch.utils.data import DataLoader

from interpeq.training import TrainConfig, resolve_task, sample_correspondence
from interpeq.training import datamodule as data
from interpeq.training.datamodule import SIITSampler, _Stream, label_batches

from .conftest import TINY


def _samplers() -> list[SIITSampler]:
    tasks = ["rank", "sort_ascending", "rank", "algorithm_3/stage1", "rank"]
    train = TrainConfig(batch_size=16)
    return [
        SIITSampler(resolve_task(t), TINY, sample_correspondence(resolve_task(t).task, TINY, seed=m),
                    train.replace(seed=m))
        for m, t in enumerate(tasks)
    ]  # fmt: skip


def test_labelling_a_stack_together_gives_each_member_its_own_batch():
    samplers = _samplers()
    together = label_batches(samplers, [s.draw_train(3) for s in samplers])
    for s, batch in zip(samplers, together, strict=True):
        alone = s.train_batch(3)
        assert batch.keys() == alone.keys()
        for key in alone:
            assert torch.equal(batch[key], alone[key]), key
    # the three rank members differ (own seeds and correspondences), yet share one labelling
    assert not torch.equal(together[0]["base"], together[2]["base"])
    assert not torch.equal(together[0]["iit_select"], together[2]["iit_select"])


class _Steps:
    """An owner whose batch ``t`` says ``t``."""

    start_step = 5

    def train_batch(self, step: int) -> dict[str, torch.Tensor]:
        return {"step": torch.tensor(step)}


def test_workers_return_the_stream_in_step_order():
    def first(n_workers: int, k: int = 9) -> list[int]:
        loader = DataLoader(_Stream(_Steps()), batch_size=None, num_workers=n_workers)
        it = iter(loader)
        return [int(next(it)["step"]) for _ in range(k)]

    assert first(0) == list(range(5, 14))
    assert first(3) == list(range(5, 14))


def test_worker_count_follows_the_stack_and_the_cores(monkeypatch):
    monkeypatch.setattr(data.os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert data.data_workers(7) == 0
    assert data.data_workers(8) == 1
    assert data.data_workers(40) == 5
    assert data.data_workers(256) == 8
    assert data.data_workers(256, world=4) == 2  # four ranks share the 16 cores
    monkeypatch.setattr(data.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert data.data_workers(256) == 1
