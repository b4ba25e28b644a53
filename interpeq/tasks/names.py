"""The stage-name format of composed algorithms: ``"<algorithm>/stage<k>"`` (0-based).

A zoo member trained on stage ``k`` of an algorithm is named by this string (its
``task``), the member id writes it with a dot (``algorithm_3.stage2-D-s0``), and a
chain of stage members is one unit ``"<algorithm>-<setting>-s<seed>"``. Every module
that builds, matches or splits such a name uses the functions here.
"""

from __future__ import annotations

import re

_STAGE = re.compile(r"^(\w+)/stage(\d+)$")


def stage_name(algorithm: str, k: int) -> str:
    """``"algorithm_3", 2`` -> ``"algorithm_3/stage2"``."""
    return f"{algorithm}/stage{int(k)}"


def parse_stage(name: str) -> tuple[str, int] | None:
    """``"algorithm_3/stage2"`` -> ``("algorithm_3", 2)``; ``None`` for any other name."""
    match = _STAGE.match(name) if isinstance(name, str) else None
    return (match.group(1), int(match.group(2))) if match else None


def is_stage(name: str) -> bool:
    return parse_stage(name) is not None


def path_safe(name: str) -> str:
    """A task or group name as one path component (``"/"`` -> ``"."``)."""
    return name.replace("/", ".")


def chain_id(algorithm: str, setting: str, seed: int) -> str:
    """The unit id of one chain of stage members: ``"algorithm_1-D-s0"``."""
    return f"{algorithm}-{setting}-s{seed}"


def member_id(task: str, setting: str, seed: int) -> str:
    """A zoo member's id: ``"add_index-D-s0"``, ``"algorithm_3.stage2-B-s1"``."""
    return f"{path_safe(task)}-{setting}-s{seed}"
