"""``pretrain_steps``: an algorithm stage trains first on its task's own inputs, then on
the stage's inputs from those weights; resumable, recorded, refused where meaningless."""

import pytest
import torch

from interpeq.training import TrainConfig, fit_member
from interpeq.training.correspondence import default_correspondence
from interpeq.training.fit import load_checkpoint
from interpeq.zoo import ZooSpec

from .conftest import TINY

STAGE = "algorithm_4/stage1"  # alternating_parity on sorted-ascending sequences


def _train(**kw) -> TrainConfig:
    never = {"acc_threshold": 1.0, "iia_threshold": 1.0, "strict_threshold": 1.0}
    return TrainConfig(
        batch_size=32, max_steps=4, val_every=2, val_size=64, test_size=64, warmup_steps=1,
        **never, **kw,
    )  # fmt: skip


def _corr():
    from interpeq.training import resolve_task

    return default_correspondence(resolve_task(STAGE).task, TINY)


def test_pretraining_runs_on_the_tasks_own_inputs_then_the_stage(tmp_path):
    res = fit_member(
        task=STAGE, model=TINY, correspondence=_corr(), train=_train(pretrain_steps=6),
        ckpt_dir=tmp_path,
    )  # fmt: skip
    pre = load_checkpoint(tmp_path / "pretrain" / "last.ckpt")
    stage = load_checkpoint(tmp_path / "last.ckpt")
    assert pre["global_step"] == 6 and stage["global_step"] == 4
    assert pre["hyper_parameters"]["task"] == "alternating_parity"  # its own inputs
    assert stage["hyper_parameters"]["task"] == STAGE
    assert res.metrics["pretrain_steps"] == 6 and res.metrics["steps"] == 4
    # the stage started from the pretrained weights, not from the seeded init
    plain = fit_member(task=STAGE, model=TINY, correspondence=_corr(), train=_train(),
                       ckpt_dir=tmp_path / "plain")  # fmt: skip
    w = "blocks.0.attn.W_Q"
    assert not torch.equal(res.model.state_dict()[w], plain.model.state_dict()[w])
    assert "pretrain_steps" not in plain.metrics
    again = fit_member(task=STAGE, model=TINY, correspondence=_corr(),
                       train=_train(pretrain_steps=6), ckpt_dir=tmp_path)  # fmt: skip
    assert again.metrics == pytest.approx(res.metrics)  # resumed: nothing retrained
    assert torch.equal(again.model.state_dict()[w], res.model.state_dict()[w])


def test_pretraining_is_refused_where_it_means_nothing(tmp_path):
    from interpeq.training import resolve_task

    corr = default_correspondence(resolve_task("alternating_parity").task, TINY)
    with pytest.raises(ValueError, match="applies to algorithm stages"):
        fit_member(task="alternating_parity", model=TINY, correspondence=corr,
                   train=_train(pretrain_steps=3), ckpt_dir=tmp_path)  # fmt: skip
    base = {"name": "p", "tasks": ["alternating_parity"], "algorithms": ["algorithm_4"]}
    with pytest.raises(ValueError, match=r"task_train of 'alternating_parity': pretrain_steps"):
        ZooSpec.from_dict({**base, "task_train": {"alternating_parity": {"pretrain_steps": 5}}})
    with pytest.raises(ValueError, match="pretrain_steps must be >= 0"):
        ZooSpec.from_dict({**base, "task_train": {STAGE: {"pretrain_steps": -1}}})


def test_a_pretrained_stage_trains_alone_in_a_stacked_zoo(tmp_path):
    from interpeq.zoo import ZooStore
    from interpeq.zoo.train import stack_groups

    spec = ZooSpec.from_dict(
        {
            "name": "p",
            "algorithms": ["algorithm_4"],
            "seeds": [0, 1],
            "stacked": True,
            "task_train": {STAGE: {"pretrain_steps": 5}},
        }  # fmt: skip
    )
    groups = stack_groups(spec.members(), ZooStore(tmp_path, "p"))
    sizes = {tuple(sorted(m.task for m in g)): len(g) for g in groups}
    assert sizes == {("algorithm_4/stage0", "algorithm_4/stage0"): 2, (STAGE,): 1}
    assert sum(1 for g in groups if g[0].task == STAGE) == 2
