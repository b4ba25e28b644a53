"""Zoos of trained models: YAML specs, a resumable runner, and the on-disk store."""

from interpeq.zoo.runner import run_zoo
from interpeq.zoo.spec import SETTINGS, MemberSpec, ZooSpec, stable_seed
from interpeq.zoo.store import Member, Zoo, ZooStore
from interpeq.zoo.train import train_member

__all__ = [
    "SETTINGS",
    "Member",
    "MemberSpec",
    "Zoo",
    "ZooSpec",
    "ZooStore",
    "run_zoo",
    "stable_seed",
    "train_member",
]
