"""A finished member must match what the zoo YAML asks for now.

Refuse to mix configs in one zoo: a finished member whose stored spec differs from
what the YAML now asks for (another learning rate, architecture, correspondence...)
would be skipped and silently kept. Fields absent on either side are not compared (a
field added to the config after the member was trained keeps its default).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from interpeq.zoo.spec import MemberSpec, ZooSpec
from interpeq.zoo.store import ZooStore, read_json


def check_finished_match(
    members: Sequence[MemberSpec], store: ZooStore, spec: ZooSpec | None = None
) -> None:
    """ValueError naming every finished member trained with another config. With the
    zoo ``spec``, members trained when seeds derived from the zoo's name are recognised
    and the error says which ``seed_namespace`` keeps them."""
    stale = {}
    for m in members:
        if not store.is_finished(m.id):
            continue
        stored = read_json(store.member_dir(m.id) / "member.json")
        diffs = _diff(stored, json.loads(json.dumps(m.to_dict())))
        if diffs:
            stale[m.id] = (stored, diffs)
    if not stale:
        return
    if spec is not None and spec.seed_namespace is None and _legacy_seeds(stale, spec):
        raise ValueError(
            f"zoo {spec.name!r} was trained when member seeds derived from the zoo's name "
            f"(before they became independent of it): add 'seed_namespace: {spec.name}' to "
            f"its YAML to keep its {len(stale)} finished member(s), or delete them under "
            f"{store.dir} to retrain them with name-independent seeds."
        )
    listed = [f"{i} ({'; '.join(d[:3])})" for i, (_, d) in stale.items()]
    raise ValueError(
        f"{len(stale)} finished member(s) of zoo {store.name!r} were trained with another "
        "config than the zoo YAML now gives: "
        + ", ".join(listed[:5])
        + (" ..." if len(listed) > 5 else "")
        + f". Restore the config, or delete those folders under {store.dir} (and nothing "
        "else) to retrain them; the other members are kept."
    )


def _legacy_seeds(stale: dict[str, tuple[dict, list]], spec: ZooSpec) -> bool:
    legacy = {m.id: m for m in dataclasses.replace(spec, seed_namespace=spec.name).members()}
    return all(
        i in legacy and not _diff(stored, json.loads(json.dumps(legacy[i].to_dict())))
        for i, (stored, _) in stale.items()
    )


def _diff(stored: Any, wanted: Any, path: str = "") -> list[str]:
    if isinstance(stored, dict) and isinstance(wanted, dict):
        out = []
        for key in sorted(set(stored) & set(wanted)):
            out += _diff(stored[key], wanted[key], f"{path}.{key}" if path else str(key))
        return out
    return [] if stored == wanted else [f"{path}: trained {stored!r}, now {wanted!r}"]
