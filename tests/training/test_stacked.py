"""Stacked training: same losses, logits and weights as training members one by one."""

import pytest
import torch
from torch.func import functional_call, vmap

from interpeq.training import (
    SIITDataModule,
    SIITModule,
    fit_member,
    resolve_task,
    sample_correspondence,
    siit_forward,
)
from interpeq.training.fused import CompiledStep, CompileFailed, fused_siit_step
from interpeq.training.stacked import StackedSIITModule, fit_stacked

from .conftest import TINY

TASKS = ["add_index", "sort_ascending", "rank"]


def members(train):
    return [
        (task, sample_correspondence(resolve_task(task).task, TINY, i), train.replace(seed=i))
        for i, task in enumerate(TASKS)
    ]


def test_stacked_step_one_losses_and_logits_match_sequential(tiny_train):
    mem = members(tiny_train)
    stacked = StackedSIITModule(mem, TINY)
    out = stacked._step(stacked.train_batch(0))
    nets = stacked.unstack()
    tokens = resolve_task("rank").task.sample(8, 0)
    net = stacked.template[0]
    buffers = stacked._buffer_state()

    def forward(params):
        return functional_call(
            net, {**dict(zip(stacked.names, params, strict=True)), **buffers}, (tokens,)
        )

    logits = vmap(forward)(tuple(stacked.stacked))
    for m, (task, corr, train) in enumerate(mem):
        single = SIITModule(
            task=task,
            model=TINY.replace(seed=train.seed),
            siit=train,
            correspondence=corr.to_dict(),
        )
        batch = SIITDataModule(
            task, TINY.replace(seed=train.seed), train, corr.to_dict()
        ).train_batch(0)
        ref = siit_forward(single.net, single.net, batch, single.components, single.weights)
        fused = single._step(batch)
        for key in ("loss", "loss_behaviour", "loss_iit", "loss_strict"):
            torch.testing.assert_close(fused[key], ref[key], rtol=1e-5, atol=1e-6)
        for key in ("loss", "loss_behaviour", "loss_iit", "loss_strict"):
            torch.testing.assert_close(out[key][m], ref[key], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(nets[m](tokens), logits[m], rtol=0, atol=1e-6)
        torch.testing.assert_close(single.net(tokens), logits[m], rtol=1e-5, atol=1e-6)


def test_fused_and_vmap_steps_agree(tiny_train):
    mem = members(tiny_train)
    fused, ref = StackedSIITModule(mem, TINY), StackedSIITModule(mem, TINY, impl="vmap")
    batch = fused.train_batch(0)
    out, want = fused._step(batch), ref._step(batch)
    for key in ("loss", "loss_behaviour", "loss_iit", "loss_strict"):
        torch.testing.assert_close(out[key], want[key], rtol=1e-5, atol=1e-6)
    out["loss"].sum().backward()
    want["loss"].sum().backward()
    for p, q in zip(fused.stacked, ref.stacked, strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6)


def test_fit_stacked_equals_fit_member(tmp_path, tiny_train):
    mem = members(tiny_train)[:2]
    results = fit_stacked(mem, TINY, ckpt_dir=tmp_path / "stack")
    assert len(results) == 2
    for m, (task, corr, train) in enumerate(mem):
        alone = fit_member(
            task=task,
            model=TINY.replace(seed=train.seed),
            correspondence=corr,
            train=train,
            ckpt_dir=tmp_path / f"alone{m}",
        )
        for (n, p), (_, q) in zip(
            results[m].model.state_dict().items(), alone.model.state_dict().items(), strict=True
        ):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=n)
        # the member checkpoint is a finished fit_member checkpoint
        loaded = fit_member(
            task=task,
            model=TINY.replace(seed=train.seed),
            correspondence=corr,
            train=train,
            ckpt_dir=tmp_path / "stack" / f"member{m}",
        )
        assert loaded.metrics["steps"] == train.max_steps
        for (n, p), (_, q) in zip(
            results[m].model.state_dict().items(), loaded.model.state_dict().items(), strict=True
        ):
            assert torch.equal(p, q), n


def test_compile_failure_is_one_line_naming_the_fix(tiny_train):
    """A machine that cannot compile (here: a backend that fails, as inductor does without
    a C compiler) gets one error that says how to train eagerly, not inductor's trace."""

    def no_compiler(gm, example_inputs):
        raise RuntimeError("no working C++ compiler found")

    module = StackedSIITModule(members(tiny_train)[:2], TINY, compile_mode="default")
    assert isinstance(module.fused_step, CompiledStep)
    module.fused_step.fn = torch.compile(fused_siit_step, backend=no_compiler)
    with pytest.raises(CompileFailed, match=r"no working C\+\+ compiler.*'compile: false'"):
        module._step(module.train_batch(0))
    with pytest.raises(ValueError, match="needs impl='fused'"):
        StackedSIITModule(members(tiny_train)[:2], TINY, impl="vmap", compile_mode="default")
