"""The zoo folder: the single source of truth for what is trained.

Layout under ``<root>/<zoo>/``::

    index.json                 finished members (id -> task, setting, seed, metrics)
    events.jsonl               append-only log: member started / finished (for audits)
    <member>/                  appears only when the member is complete (atomic rename)
        member.json            resolved spec: model config, correspondence, train config
        metrics.json           held-out metrics
        model.safetensors      weights (no pickle: loading never runs code)
    .partial/<member>/         work in progress: Lightning checkpoints to resume from

A member folder exists if and only if the member finished: it is assembled in
``.partial`` and moved into place with one ``os.replace``. Loading checks every file
and turns a missing, truncated or tampered one into a ValueError naming it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

MEMBER_FILES = ("member.json", "metrics.json", "model.safetensors")
DEFAULT_ROOT = Path("checkpoints")  # where zoos live unless --root / root= says otherwise


def find_zoo(zoo: str | Path, root: str | Path = DEFAULT_ROOT) -> Path | None:
    """The folder of a zoo given as a folder path or as a zoo name under ``root``;
    ``None`` when neither exists."""
    path = Path(zoo)
    if path.is_dir():
        return path
    under = Path(root) / str(zoo)
    return under if under.is_dir() else None


def load_zoo(zoo: Any, root: str | Path = DEFAULT_ROOT) -> Zoo:
    """A :class:`Zoo` given as one, as a zoo folder, or as a zoo name under ``root``."""
    if isinstance(zoo, Zoo):
        return zoo
    path = find_zoo(zoo, root)
    if path is None:
        raise ValueError(
            f"zoo {str(zoo)!r} not found (neither a folder nor a zoo under {str(root)!r}); "
            "train it with 'interpeq zoo --config ...'"
        )
    return Zoo.load(path)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON (truncated or tampered?): {err}") from None


class ZooStore:
    """Reads and writes one zoo folder."""

    def __init__(self, root: str | Path, name: str) -> None:
        self.dir = Path(root) / name
        self.name = name

    @property
    def partial_dir(self) -> Path:
        return self.dir / ".partial"

    def member_dir(self, member_id: str) -> Path:
        return self.dir / member_id

    def work_dir(self, member_id: str) -> Path:
        return self.partial_dir / member_id

    def is_finished(self, member_id: str) -> bool:
        return all((self.member_dir(member_id) / f).is_file() for f in MEMBER_FILES)

    def log_event(self, event: str, member_id: str, **extra: Any) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        record = {
            "time": time.time(),
            "event": event,
            "member": member_id,
            "pid": os.getpid(),
            **extra,
        }
        with open(self.dir / "events.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def events(self) -> list[dict[str, Any]]:
        path = self.dir / "events.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def finish(self, spec_dict: dict[str, Any], metrics: dict[str, float], model) -> Path:
        """Assemble a member in its work folder and move it into place atomically."""
        from interpeq.training.io import save_model

        member_id = spec_dict["id"]
        stage = self.partial_dir / f"{member_id}.final"
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir(parents=True)
        write_json_atomic(stage / "member.json", spec_dict)
        write_json_atomic(stage / "metrics.json", metrics)
        save_model(model, stage / "model.safetensors")
        target = self.member_dir(member_id)
        if target.exists():  # a stale, incomplete folder from an older layout
            shutil.rmtree(target)
        os.replace(stage, target)
        shutil.rmtree(self.work_dir(member_id), ignore_errors=True)
        self.update_index(member_id, spec_dict, metrics)
        return target

    def update_index(
        self, member_id: str, spec_dict: dict[str, Any], metrics: dict[str, float]
    ) -> None:
        index = (
            self.read_index()
            if (self.dir / "index.json").exists()
            else {"zoo": self.name, "members": {}}
        )
        index["members"][member_id] = {
            "task": spec_dict["task"],
            "setting": spec_dict["setting"],
            "seed": spec_dict["seed"],
            "metrics": metrics,
        }
        write_json_atomic(self.dir / "index.json", index)

    def read_index(self) -> dict[str, Any]:
        index = read_json(self.dir / "index.json")
        if not isinstance(index, dict) or not isinstance(index.get("members"), dict):
            raise ValueError(f"{self.dir / 'index.json'} is not a zoo index (no 'members' mapping)")
        return index


@dataclass
class Member:
    """A finished zoo member; the model is loaded from safetensors on first use."""

    id: str
    path: Path
    spec: dict[str, Any]
    metrics: dict[str, float]

    @property
    def task_name(self) -> str:
        return self.spec["task"]

    @property
    def setting(self) -> str:
        return self.spec["setting"]

    @property
    def seed(self) -> int:
        return self.spec["seed"]

    @cached_property
    def config(self):
        from interpeq.models import HookedTransformerConfig

        return HookedTransformerConfig.from_dict(self.spec["model"])

    @cached_property
    def correspondence(self):
        from interpeq.training import Correspondence

        return Correspondence.from_dict(self.spec["correspondence"])

    @cached_property
    def training_task(self):
        """The task with the input distribution the member was trained on (stages of algorithms)."""
        from interpeq.training import resolve_task

        return resolve_task(self.task_name)

    @property
    def task(self):
        """The interpretation the member implements (a :class:`interpeq.tasks.Task`)."""
        return self.training_task.task

    @cached_property
    def model(self):
        from interpeq.training.io import load_model

        return load_model(self.path / "model.safetensors", self.config)


class Zoo:
    """A trained zoo on disk: ``Zoo.load("checkpoints/<zoo>")``."""

    def __init__(self, path: Path, name: str, members: dict[str, Member]) -> None:
        self.path, self.name, self.members = path, name, members

    @classmethod
    def load(cls, path: str | Path) -> Zoo:
        path = Path(path)
        if not path.is_dir():
            raise ValueError(
                f"zoo folder {str(path)!r} does not exist; train it with 'interpeq zoo --config ...'"
            )
        store = ZooStore(path.parent, path.name)
        index = store.read_index()
        members = {}
        for member_id in sorted(index["members"]):
            mdir = store.member_dir(member_id)
            missing = [f for f in MEMBER_FILES if not (mdir / f).is_file()]
            if missing:
                raise ValueError(
                    f"zoo member {member_id!r} in {path} lacks {missing}; rerun 'interpeq zoo' to retrain it"
                )
            spec = read_json(mdir / "member.json")
            if not isinstance(spec, dict) or spec.get("id") != member_id:
                raise ValueError(
                    f"{mdir / 'member.json'} does not describe member {member_id!r} (tampered?)"
                )
            members[member_id] = Member(member_id, mdir, spec, read_json(mdir / "metrics.json"))
        return cls(path, index.get("zoo", path.name), members)

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self):
        return iter(self.members.values())

    def __getitem__(self, member_id: str) -> Member:
        try:
            return self.members[member_id]
        except KeyError:
            raise ValueError(
                f"no member {member_id!r} in zoo {self.name!r}; members: {sorted(self.members)}"
            ) from None

    def select(self, task: str | None = None, setting: str | None = None) -> list[Member]:
        """Members of a task (or an algorithm's stage prefix, e.g. ``'algorithm_1/'``) and/or setting."""
        out = list(self)
        if task is not None:
            out = [
                m
                for m in out
                if m.task_name == task or m.task_name.startswith(task.rstrip("/") + "/")
            ]
        if setting is not None:
            out = [m for m in out if m.setting == setting.upper()]
        return out
