"""Loggers for training and comparison runs: W&B (offline unless an account is set up),
Lightning's CSV logger, or none; and helpers that never let a logging failure kill a run.

``make_logger(kind, run_name=..., group=..., job_type=..., config=..., tags=..., save_dir=...)``

* ``"wandb"``: a :class:`SafeWandbLogger` (Lightning's ``WandbLogger``). Mode: the
  ``WANDB_MODE`` environment variable when set (tests use ``disabled``); otherwise
  ``online`` when an account is configured (``WANDB_API_KEY`` or a ``wandb login``
  entry in ``~/.netrc``) and ``offline`` when not: no prompt and no network. Offline
  runs land in ``<save_dir>/wandb/offline-run-*``; upload them later with
  ``wandb sync <save_dir>/wandb/offline-run-*``.
* ``"csv"``: a :class:`SafeCSVLogger` writing ``<save_dir>/<group>/<run_name>/metrics.csv``.
* ``"none"``: ``False`` (what ``Trainer(logger=...)`` takes for no logger).

Every logging call of the safe loggers (and :func:`log_image`, :func:`log_table`,
:func:`log_summary`) catches any exception, warns once per kind of call, and returns.

:func:`read_offline_run` reads an offline run's ``.wandb`` file back (run info,
config, history rows, summary) without network or the W&B service: it parses the
record log (LevelDB-log framing, protobuf records) with the protobuf classes that ship
with ``wandb``. Offline runs do not write ``files/wandb-summary.json``, so this is the
way to check what an offline run holds.
"""

from __future__ import annotations

import json
import netrc
import os
import struct
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment

LOGGER_KINDS = ("wandb", "csv", "none")
PROJECT = "interpeq"

_warned: set[str] = set()


def _warn(what: str, err: BaseException) -> None:
    if what not in _warned:
        _warned.add(what)
        warnings.warn(
            f"logging failed in {what} ({type(err).__name__}: {err}); training continues "
            "without it (further failures of this call are silent)",
            RuntimeWarning,
            stacklevel=3,
        )


def safe_call(what: str, fn, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or ``None`` with a warning if it raises."""
    try:
        return fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - logging must never kill a run
        _warn(what, err)
        return None


def wandb_account_configured() -> bool:
    """True when W&B credentials are available locally (no network is used)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    try:
        return netrc.netrc(path).authenticators(host or "api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode() -> str:
    """``WANDB_MODE`` if set, else ``online`` with an account and ``offline`` without."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode
    return "online" if wandb_account_configured() else "offline"


class _SafeMixin:
    """Wraps the logging calls Lightning (and we) make so that failures only warn."""

    def log_metrics(self, *args: Any, **kwargs: Any) -> None:
        safe_call(f"{type(self).__name__}.log_metrics", super().log_metrics, *args, **kwargs)

    def log_hyperparams(self, *args: Any, **kwargs: Any) -> None:
        safe_call(
            f"{type(self).__name__}.log_hyperparams", super().log_hyperparams, *args, **kwargs
        )

    def save(self) -> None:
        safe_call(f"{type(self).__name__}.save", super().save)

    def finalize(self, status: str) -> None:
        safe_call(f"{type(self).__name__}.finalize", super().finalize, status)


class SafeWandbLogger(_SafeMixin, WandbLogger):
    """``WandbLogger`` whose logging calls warn instead of raising."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._wandb_init.get("anonymous") is None:  # wandb warns about the unused key
            self._wandb_init.pop("anonymous", None)

    def log_image(self, *args: Any, **kwargs: Any) -> None:
        safe_call("SafeWandbLogger.log_image", super().log_image, *args, **kwargs)

    def log_table(self, *args: Any, **kwargs: Any) -> None:
        safe_call("SafeWandbLogger.log_table", super().log_table, *args, **kwargs)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        safe_call(
            "SafeWandbLogger.after_save_checkpoint",
            super().after_save_checkpoint,
            checkpoint_callback,
        )

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The run, created on first use as a *new* run even when another is active.

        Lightning's ``WandbLogger`` reuses a run already in progress in the process, so
        a second logger would write into the first member's run. ``reinit="create_new"``
        (W&B's multi-run support) gives every logger its own run, which is what one run
        per member of a stacked group needs; each run is held here, never as the global
        ``wandb.run``."""
        if self._experiment is None:
            import wandb

            self._experiment = wandb.init(**{**self._wandb_init, "reinit": "create_new"})
            if getattr(self._experiment, "define_metric", None):
                self._experiment.define_metric("trainer/global_step")
                self._experiment.define_metric(
                    "*", step_metric="trainer/global_step", step_sync=True
                )
        return self._experiment

    def finish(self) -> None:
        """End the W&B run (flushes an offline run's files)."""
        if self._experiment is not None:
            safe_call("SafeWandbLogger.finish", self._experiment.finish)

    @property
    def run_dir(self) -> Path | None:
        """The local folder of the run (``.../wandb/offline-run-*``), if it started."""
        exp = safe_call("SafeWandbLogger.experiment", lambda: self.experiment)
        d = getattr(exp, "dir", None)  # on DDP ranks > 0 a dummy experiment: no str
        return Path(d).parent if isinstance(d, str) and d else None


class SafeCSVLogger(_SafeMixin, CSVLogger):
    """Lightning's ``CSVLogger`` whose logging calls warn instead of raising."""

    def finish(self) -> None:
        self.save()


def _tags(tags: Sequence[str] | None) -> list[str]:
    # W&B tags are at most 64 characters
    return [str(t)[:64] for t in (tags or [])]


def make_logger(
    kind: str = "wandb",
    *,
    run_name: str,
    group: str | None = None,
    job_type: str = "fit",
    config: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    save_dir: str | Path = "checkpoints",
    project: str = PROJECT,
    entity: str | None = None,
) -> Logger | bool:
    """A Lightning logger of ``kind`` (``"wandb"``, ``"csv"`` or ``"none"``); see the module doc."""
    if kind not in LOGGER_KINDS:
        raise ValueError(f"unknown logger {kind!r}; choose one of {list(LOGGER_KINDS)}")
    if kind == "none":
        return False
    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        logger = SafeCSVLogger(save_dir=str(save_dir), name=group or "runs", version=run_name)
        if config:
            logger.log_hyperparams(dict(config))
        return logger
    import wandb

    mode = wandb_mode()
    logger = SafeWandbLogger(
        name=run_name,
        save_dir=str(save_dir),
        project=project,
        entity=entity,
        group=group,
        job_type=job_type,
        config=dict(config or {}),
        tags=_tags(tags),
        mode=mode,
        # no git lookup: zoos often live outside a repository ("git root ... does not exist")
        settings=wandb.Settings(silent=True, console="off", x_disable_stats=True, disable_git=True),
    )
    # Lightning always passes anonymous=None, which W&B 0.19+ answers with "The anonymous
    # setting has no effect"; not passing it at all is the same run, without the note.
    logger._wandb_init.pop("anonymous", None)
    return logger


def member_tags(task: str, setting: str | None = None, zoo: str | None = None) -> list[str]:
    """W&B tags for a zoo member: ``task:<t>``, ``algorithm:<a>`` (stages), ``setting:<s>``, ``zoo:<z>``."""
    tags = [f"task:{task}"]
    if "/" in task or task.startswith("algorithm_"):
        tags.append(f"algorithm:{task.split('/')[0]}")
    if setting:
        tags.append(f"setting:{setting}")
    if zoo:
        tags.append(f"zoo:{zoo}")
    return tags


# ---------------------------------------------------------------- images, tables, summary


def _member_loggers(logger: Any) -> Any:
    from interpeq.report.members import MemberLoggers

    return logger if isinstance(logger, MemberLoggers) else None


def log_image(logger: Any, key: str, path: str | Path, step: int | None = None) -> None:
    """Log a PNG to W&B (other loggers: nothing; the file is already on disk)."""
    if (group := _member_loggers(logger)) is not None:
        for k, routed in group.route(key):
            log_image(group.loggers[k], routed, path, step)
        return
    if isinstance(logger, WandbLogger):
        safe_call("log_image", logger.log_image, key=key, images=[str(path)], step=step)


def log_table(logger: Any, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Log a ``wandb.Table`` (other loggers: nothing). Behind :class:`MemberLoggers`
    each member gets the rows whose ``member`` column names it (all rows without one)."""
    if (group := _member_loggers(logger)) is not None:
        col = list(columns).index("member") if "member" in columns else None
        for member, lg in zip(group.member_ids, group.loggers, strict=True):
            mine = [r for r in rows if col is None or r[col] == member]
            if mine:
                log_table(lg, key, columns, mine)
        return
    if isinstance(logger, WandbLogger):
        safe_call(
            "log_table",
            logger.log_table,
            key=key,
            columns=list(columns),
            data=[list(r) for r in rows],
        )


def log_summary(logger: Any, values: Mapping[str, Any]) -> None:
    """Final values: the W&B run summary; other loggers get them as one metrics row."""
    if (group := _member_loggers(logger)) is not None:
        for lg, mine in group.split(values):
            log_summary(lg, mine)
        return
    if isinstance(logger, WandbLogger):

        def put() -> None:
            for k, v in values.items():
                logger.experiment.summary[k] = v

        safe_call("log_summary", put)
    elif isinstance(logger, Logger):
        safe_call("log_summary", logger.log_metrics, dict(values))


def log_metrics(loggers: Any, metrics: Mapping[str, float], step: int | None = None) -> None:
    """``log_metrics`` on one logger or a list of them; never raises."""
    if not loggers:
        return
    for lg in loggers if isinstance(loggers, (list, tuple)) else [loggers]:
        safe_call("log_metrics", lg.log_metrics, dict(metrics), step)


# ---------------------------------------------------------------- reading offline runs

_BLOCK = 32768
_HEADER = 7


def _records(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    if not data:
        return
    if len(data) < _HEADER or data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file (no ':W&B' header)")
    pos, buf = _HEADER, b""
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        chunk = data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind == 0:
            continue
        buf = chunk if kind in (1, 2) else buf + chunk  # full/first vs middle/last
        if kind in (1, 4):
            yield buf


def _items(items: Any) -> dict[str, Any]:
    out = {}
    for it in items:
        key = it.key or "/".join(it.nested_key)
        try:
            out[key] = json.loads(it.value_json)
        except ValueError:
            out[key] = it.value_json
    return out


def read_offline_run(run_dir: str | Path, *, wait: float = 120.0) -> dict[str, Any]:
    """``{"name", "group", "job_type", "tags", "config", "history": [rows], "summary",
    "finished"}`` of a local W&B run folder (``.../wandb/offline-run-*``) or its ``.wandb``
    file. W&B's service writes the file asynchronously, so this waits up to ``wait``
    seconds for the run's exit record (``finished`` says whether it came)."""
    import time

    run_dir = Path(run_dir)
    deadline = time.monotonic() + wait
    while True:
        out = _read_run(run_dir)
        if out["finished"] or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def _read_run(run_dir: Path) -> dict[str, Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    files = [run_dir] if run_dir.is_file() else sorted(run_dir.glob("*.wandb"))
    if not files:
        raise ValueError(f"{run_dir}: no .wandb file (is this a W&B run folder?)")
    out: dict[str, Any] = {
        "config": {},
        "history": [],
        "summary": {},
        "tags": [],
        "finished": False,
    }
    for raw in _records(files[0]):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out.update(
                name=rec.run.display_name,
                group=rec.run.run_group,
                job_type=rec.run.job_type,
                tags=list(rec.run.tags),
            )
            out["config"].update(_items(rec.run.config.update))
        elif kind == "config":
            out["config"].update(_items(rec.config.update))
        elif kind == "history":
            out["history"].append(_items(rec.history.item))
        elif kind == "summary":
            out["summary"].update(_items(rec.summary.update))
        elif kind == "exit":
            out["finished"] = True
    out["config"].pop("_wandb", None)
    return out


def offline_runs(save_dir: str | Path) -> list[Path]:
    """Offline run folders under ``save_dir`` (``save_dir/wandb/offline-run-*``), oldest first."""
    return sorted(Path(save_dir).glob("wandb/offline-run-*"))
