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
``.partial`` and moved into place with one ``os.replace`` (Ctrl-C is held until it is
done: :func:`interpeq.interrupts.deferred`). Loading checks every file and turns a
missing, truncated or tampered one into a ValueError naming it and the fix.

:meth:`ZooStore.member_state` tells ``done`` / ``damaged`` (a file that is not valid
JSON, another member's ``member.json``, weights that fail their checksum) / ``todo``;
``interpeq zoo`` refuses to run over a damaged member and ``--repair`` moves damaged
folders aside (:meth:`ZooStore.discard`, into ``.damaged/``) so that the run retrains
exactly those.
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
REPAIR_HINT = "'interpeq zoo --config <zoo yaml> --repair' retrains damaged members"
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
    """Reads and writes one zoo folder (``writes``: whether this process writes it;
    a DDP rank > 0 does not, :class:`interpeq.zoo.ddp.RankStore`)."""

    writes = True

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

    def member_state(self, member_id: str) -> tuple[str, str]:
        """``("done", "")``, ``("todo", "")`` or ``("damaged", reason)``.

        ``todo``: no complete member folder (a run trains it). ``damaged``: every file is
        there but one cannot be read back (bad JSON, a ``member.json`` of another member,
        weights that are truncated or fail their SHA-256); a run would skip it and a
        comparison would fail on it. Reads every file (cheap for interpeq's models).
        """
        from interpeq.training.io import check_weights

        if not self.is_finished(member_id):
            return "todo", ""
        mdir = self.member_dir(member_id)
        try:
            spec = read_json(mdir / "member.json")
            if not isinstance(spec, dict) or spec.get("id") != member_id:
                raise ValueError(f"{mdir / 'member.json'}: describes another member")
            read_json(mdir / "metrics.json")
            check_weights(mdir / "model.safetensors")
        except ValueError as err:
            return "damaged", _short_reason(str(err), mdir)
        return "done", ""

    def damaged(self, member_ids) -> dict[str, str]:
        """The damaged members among ``member_ids``: id -> reason."""
        out = {}
        for member_id in member_ids:
            state, reason = self.member_state(member_id)
            if state == "damaged":
                out[member_id] = reason
        return out

    def check_intact(self, member_ids, command: str = "interpeq zoo") -> list[tuple[str, Path]]:
        """Raise a ``ValueError`` naming the damaged members' folders and ``--repair``;
        else ``[]`` (nothing repaired: the counterpart of :meth:`repair`)."""
        bad = self.damaged(member_ids)
        if bad:
            names = "; ".join(f"{self.member_dir(i)} ({r})" for i, r in list(bad.items())[:3])
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            raise ValueError(
                f"{len(bad)} damaged member(s) in zoo {self.name!r}: {names}{more}; rerun "
                f"'{command}' with --repair to retrain exactly those (the others are kept)"
            )
        return []

    def repair(self, member_ids) -> list[tuple[str, Path]]:
        """Move every damaged member's folder aside (:meth:`discard`) so that the next run
        retrains exactly those; returns ``(id, where it went)``. Other members' files are
        not touched."""
        return [(i, self.discard(i)) for i in self.damaged(member_ids)]

    def progress(self, member_ids) -> str:
        """Where a run stands: finished members, and those this process was training."""
        ids = list(member_ids)
        done = [i for i in ids if self.is_finished(i)]
        mine = [e for e in self.events() if e.get("pid") == os.getpid()]
        finished_now = {e["member"] for e in mine if e["event"] == "finished"}
        training = []
        for e in mine:
            if e["event"] in ("started", "resumed") and e["member"] not in finished_now:
                if e["member"] not in training:
                    training.append(e["member"])
        text = f"{len(done)} of {len(ids)} members finished ({len(finished_now)} in this run)"
        if training:
            more = f" and {len(training) - 3} more" if len(training) > 3 else ""
            text += f"; training when stopped: {', '.join(training[:3])}{more}"
        return text

    def discard(self, member_id: str, reason: str = "damaged") -> Path:
        """Move a member's folder aside (to ``.<reason>/<id>-<time>/``) and drop it from
        ``index.json``, so that the next run trains it again; returns where it went."""
        src = self.member_dir(member_id)
        dest = self.dir / f".{reason}" / f"{member_id.replace('/', '__')}-{int(time.time())}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        if (self.dir / "index.json").exists():
            try:
                index = self.read_index()
            except ValueError:  # a damaged index is rewritten by the next finish
                index = None
            if index is not None and index["members"].pop(member_id, None) is not None:
                write_json_atomic(self.dir / "index.json", index)
        self.log_event("discarded", member_id, moved_to=str(dest))
        return dest

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
        from interpeq.interrupts import deferred

        with deferred():  # a Ctrl-C here waits: the folder and the index stay in step
            return self._finish(spec_dict, metrics, model)

    def _finish(self, spec_dict: dict[str, Any], metrics: dict[str, float], model) -> Path:
        from interpeq.training.io import save_model

        member_id = spec_dict["id"]
        spec_dict = _with_task_file(spec_dict)
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
        record = _with_task_file(spec_dict).get("task_file")
        if record:  # the task file a user task came from: name -> sha256, tasks
            files = index.setdefault("task_files", {})
            files[record["name"]] = {k: v for k, v in record.items() if k != "name"}
        write_json_atomic(self.dir / "index.json", index)

    def task_files(self) -> dict[str, Any]:
        """The task files the zoo was trained with (``index.json`` ``task_files``)."""
        try:
            index = self.read_index() if (self.dir / "index.json").exists() else {}
        except ValueError:
            return {}
        files = index.get("task_files")
        return dict(files) if isinstance(files, dict) else {}

    def check_task_files(self, command: str) -> None:
        """One-line ValueError unless every task file the zoo recorded is loaded now,
        with the same SHA-256 (:func:`interpeq.tasks.user.check_recorded`)."""
        from interpeq.tasks.user import check_recorded

        check_recorded(self.task_files(), self.name, command)

    def read_index(self) -> dict[str, Any]:
        index = read_json(self.dir / "index.json")
        if not isinstance(index, dict) or not isinstance(index.get("members"), dict):
            raise ValueError(f"{self.dir / 'index.json'} is not a zoo index (no 'members' mapping)")
        return index


def _with_task_file(spec_dict: dict[str, Any]) -> dict[str, Any]:
    """``spec_dict`` plus ``task_file`` (name, SHA-256, tasks) when its task comes from a
    loaded task file, so that a member says which code defined its interpretation."""
    from interpeq.tasks.user import file_of

    loaded = None if spec_dict.get("task_file") else file_of(spec_dict.get("task", ""))
    return {**spec_dict, "task_file": loaded.record()} if loaded else spec_dict


def _short_reason(message: str, mdir: Path) -> str:
    """``model.safetensors: checksum mismatch ...`` from a full error message."""
    text = message.split(";")[0].replace(str(mdir) + "/", "").replace(str(mdir), "")
    return " ".join(text.split())[:100]


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

    @property
    def converged(self) -> bool:
        """Whether the member met its thresholds: the stored flag, or (a member trained
        before the flag existed) its stored held-out metrics against the default
        thresholds of :class:`interpeq.zoo.retry.RetrySpec`."""
        flag = self.metrics.get("converged")
        if isinstance(flag, bool):
            return flag
        from interpeq.zoo.retry import RetrySpec

        return RetrySpec().converged(self.metrics)

    def to_transformer_lens(self, folder: str | Path) -> Path:
        """Write this member as a TransformerLens checkpoint (``config.json`` and
        ``model.safetensors``; :mod:`interpeq.models.transformer_lens`)."""
        from interpeq.models.transformer_lens import save_transformer_lens

        return save_transformer_lens(self.model, folder)

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

        try:
            return load_model(self.path / "model.safetensors", self.config)
        except ValueError as err:
            raise ValueError(
                f"zoo member {self.id!r} is damaged: {str(err).split('; ')[0]}; run 'interpeq zoo "
                f"--config <zoo yaml> --repair' to retrain it (or delete {self.path} and rerun)"
            ) from err


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
            try:
                spec = read_json(mdir / "member.json")
                if not isinstance(spec, dict) or spec.get("id") != member_id:
                    raise ValueError(
                        f"{mdir / 'member.json'} does not describe member {member_id!r} (tampered?)"
                    )
                metrics = read_json(mdir / "metrics.json")
            except ValueError as err:
                raise ValueError(f"{err}; {REPAIR_HINT}") from err
            members[member_id] = Member(member_id, mdir, spec, metrics)
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
