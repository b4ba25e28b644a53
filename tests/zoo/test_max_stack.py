"""Stack sizes from the device's free memory (a GPU with room for 40 members must not
be handed 256 of them), tested on the CPU with a given memory budget."""

import pytest
import torch

from interpeq.zoo import ZooSpec
from interpeq.zoo.train import (
    CPU_MAX_STACK,
    GPU_MAX_STACK,
    default_max_stack,
    max_stack_for,
    member_bytes,
)

GIB, MIB = 2**30, 2**20


def _member(d_model=64, batch_size=128):
    spec = ZooSpec.from_dict(
        {
            "name": "z",
            "tasks": ["add_next"],
            "seeds": [0],
            "settings": ["D"],
            "model": {"n_layers": 2, "d_model": d_model, "n_heads": 4, "d_mlp": 4 * d_model},
            "train": {"batch_size": batch_size, "max_steps": 10},
        }
    )
    return spec.members()[0]


def test_max_stack_from_a_memory_budget():
    assert max_stack_for(10 * GIB, 100 * MIB) == 81  # 80% of 10 GiB in 100 MiB members
    assert max_stack_for(10 * GIB, 10 * GIB) == 1  # never 0: one member always runs
    assert max_stack_for(1000 * GIB, MIB) == GPU_MAX_STACK


def test_member_bytes_grow_with_width_and_batch():
    base = member_bytes(_member().model, 128)
    assert 20 * MIB < base < 120 * MIB  # default size: 256 of them are ~12 GB of activations
    assert member_bytes(_member(d_model=128).model, 128) > 1.8 * base
    assert member_bytes(_member().model, 256) > 1.8 * base


def test_default_max_stack_reads_free_memory(monkeypatch, capsys):
    assert default_max_stack(_member()) == CPU_MAX_STACK  # this machine: no GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (4 * GIB, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    member = _member()
    n = default_max_stack(member)
    assert n == max_stack_for(4 * GIB, member_bytes(member.model, 128)) < GPU_MAX_STACK
    out = capsys.readouterr().out
    assert f"stacks of at most {n} members: 4.0 GiB free on Fake GPU" in out
    assert "max_stack:" in out


@pytest.mark.parametrize("free", [80 * GIB, 1 * GIB])
def test_a_smaller_card_gets_smaller_stacks(monkeypatch, free):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (free, free))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    n = default_max_stack(_member())
    assert (n == GPU_MAX_STACK) if free == 80 * GIB else (1 <= n < 32)
