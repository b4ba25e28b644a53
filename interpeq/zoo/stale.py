"""A finished member must match what the zoo YAML asks for now.

Refuse to mix configs in one zoo: a finished member whose stored spec differs from
what the YAML now asks for (another learning rate, architecture, correspondence...)
would be skipped and silently kept. Fields absent on either side are not compared (a
field added to the config after the member was trained keeps its default).
``interpeq zoo --retrain-stale`` moves such members aside (:func:`move_stale`) and
trains them again with the YAML's config; nothing is deleted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interpeq.zoo.spec import MemberSpec
from interpeq.zoo.store import ZooStore, read_json


def stale_members(members: Sequence[MemberSpec], store: ZooStore) -> dict[str, list[str]]:
    """``id -> differences`` of every finished member trained with another config."""
    stale = {}
    for m in members:
        if not store.is_finished(m.id):
            continue
        stored = read_json(store.member_dir(m.id) / "member.json")
        diffs = _diff(stored, json.loads(json.dumps(m.to_dict())))
        if diffs:
            stale[m.id] = diffs
    return stale


def check_finished_match(members: Sequence[MemberSpec], store: ZooStore) -> None:
    """ValueError naming every finished member trained with another config, and the
    two ways on: restore the config, or ``--retrain-stale``."""
    stale = stale_members(members, store)
    if not stale:
        return
    listed = [f"{i} ({'; '.join(d[:3])})" for i, d in stale.items()]
    raise ValueError(
        f"{len(stale)} finished member(s) of zoo {store.name!r} were trained with another "
        "config than the zoo YAML now gives: "
        + ", ".join(listed[:5])
        + (" ..." if len(listed) > 5 else "")
        + ". Restore the config, or rerun with --retrain-stale to move exactly those aside "
        f"(to {store.dir / '.stale'}) and retrain them; the other members are kept."
    )


def move_stale(members: Sequence[MemberSpec], store: ZooStore) -> list[tuple[str, list, Path]]:
    """Move every stale member's folder aside to ``<zoo>/.stale/`` so that the next run
    retrains it; returns ``(id, differences, where it went)``."""
    return [
        (i, diffs, store.discard(i, reason="stale"))
        for i, diffs in stale_members(members, store).items()
    ]


def _diff(stored: Any, wanted: Any, path: str = "") -> list[str]:
    if isinstance(stored, dict) and isinstance(wanted, dict):
        out = []
        for key in sorted(set(stored) & set(wanted)):
            out += _diff(stored[key], wanted[key], f"{path}.{key}" if path else str(key))
        return out
    return [] if stored == wanted else [f"{path}: trained {stored!r}, now {wanted!r}"]
