"""``interpeq fit``: train one SIIT model from YAML configs with Lightning's CLI.

    interpeq fit --config configs/trainer/fit_example.yaml
    interpeq fit --config configs/trainer/cpu.yaml --config configs/model/default.yaml \\
                 --config configs/train/default.yaml --config configs/task/sort_ascending.yaml \\
                 --train.lr 1e-3
    interpeq fit --config configs/trainer/fit_example.yaml --print_config

Configs and flags use the zoo YAML's groups: ``task``, ``model`` (architecture),
``train`` (training), ``correspondence`` and Lightning's ``trainer``
(:mod:`interpeq.training.fit_config` maps them onto the CLI's ``model.*`` arguments;
``--print_config`` shows that layout). ``train.max_steps`` / ``val_every`` are linked to
the trainer, so each is set in one place. ``--ckpt_path last`` resumes. At the end the
weights go to ``<trainer.default_root_dir>/model.safetensors`` and the held-out
metrics are printed as JSON.

Data parallel: ``--trainer.devices 2 --trainer.strategy ddp`` (``--trainer.accelerator
gpu`` for GPUs). Lightning re-runs the same command for the other ranks; each trains on
its shard of the same global batches as one process (``docs/ddp.md``); rank 0 writes
the checkpoints and the weights and prints the metrics.

Failures are one line (``interpeq fit: error: <key>: <cause>``, exit 2, from the
``interpeq`` boundary: :mod:`interpeq.cli`; ``--debug`` for the traceback) instead of
jsonargparse's usage dump or a traceback: the parser does not exit on errors
(``exit_on_error=False``), a nested "does not validate against any of the Union
subtypes" message is reduced to its root cause (:func:`root_cause`), the task name is
resolved before any class is built, and a ``--ckpt_path`` checkpoint is read
(:func:`~interpeq.training.fit.load_checkpoint`) before Lightning resumes from it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from interpeq.training.config import resolve_task
from interpeq.training.datamodule import SIITDataModule
from interpeq.training.fit import evaluate, load_checkpoint
from interpeq.training.fit_config import to_lightning_args, user_key, user_text
from interpeq.training.io import save_model
from interpeq.training.siit import SIITModule, ThresholdStopping

# trainer keys linked from the training config (train.<key>, the CLI's model.siit.<key>)
LINKED = {"max_steps": "max_steps", "val_check_interval": "val_every"}


class SIITCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument(
            "--ckpt_path",
            type=str | None,
            default=None,
            help="checkpoint to resume ('last' for the latest)",
        )
        for trainer_key, siit_key in LINKED.items():
            parser.link_arguments(
                "model.siit",
                f"trainer.{trainer_key}",
                compute_fn=lambda s, k=siit_key: getattr(s, k),
            )

    def before_instantiate_classes(self) -> None:
        """Check what can be checked before any class is built (the task name)."""
        task = self.config.get("model.task")
        try:
            resolve_task(task)
        except ValueError as err:
            raise FitConfigError("task", str(err)) from err

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (ValueError, TypeError) as err:
            raise FitConfigError(_key_of(self.config, str(err)), root_cause(str(err))) from err


class FitConfigError(ValueError):
    """A bad value in ``interpeq fit``'s config: ``key`` and the cause."""

    def __init__(self, key: str | None, cause: str) -> None:
        self.key = key = user_key(key)
        cause = user_text(cause)
        super().__init__(f"{key}: {cause}" if key else cause)


_GENERIC = (
    "Not a valid subclass",
    "Expected a <class 'NoneType'>",
    "Subclass types expect",
    "Does not validate against",
    "Given value",
    "Subtypes:",
    "Errors:",
    "- a class path",
    "- a dict",
)


def root_cause(message: str) -> str:
    """The specific error inside a jsonargparse message, on one line.

    ``Does not validate against any of the Union subtypes ... Errors: - every_n_steps
    must be a positive int (or None), got 0 - Not a valid subclass ... Given value:
    [Namespace(...)]`` -> ``every_n_steps must be a positive int (or None), got 0 (in
    interpeq.callbacks.ActivationCapture)``.
    """
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    causes = [ln[2:].strip() for ln in lines if ln.startswith("- ")]
    specific = [c for c in causes if not c.startswith(_GENERIC)]
    if specific:
        cause = specific[0]
    else:
        body = [ln for ln in lines if not ln.startswith(_GENERIC) and not ln.startswith("- ")]
        body = [re.sub(r'^Parser key "[^"]+":\s*', "", ln) for ln in body]
        cause = " ".join(b for b in body if b) or (lines[0] if lines else message)
    where = re.search(r"class_path='([\w.]+)'", message)
    if where and where.group(1) not in cause:
        cause += f" (in {where.group(1)})"
    return " ".join(cause.split())


def _key_of(config, message: str) -> str | None:
    """The config key an error is about: the one jsonargparse names, else the entry that
    holds the class the message names."""
    named = re.search(r'(?:Parser key|key) "([^"]+)"', message)
    if named:
        return named.group(1)
    where = re.search(r"class_path='([\w.]+)'", message)
    if where is None:
        return None
    keys = [k for k, v in config.items() if where.group(1) in repr(v)]
    return min(keys, key=len) if keys else None


def _check_resume(ckpt_path: str | None, root: str) -> None:
    """Read the checkpoint Lightning would resume from, so a broken file is our error."""
    if ckpt_path in (None, "best", "hpc", "registry"):
        return
    if ckpt_path == "last":
        found = sorted(Path(root).rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime)
        if not found:
            return
        path = found[-1]
    else:
        path = Path(ckpt_path)
        if not path.is_file():
            raise FitConfigError("ckpt_path", f"{path}: no such checkpoint file (check the path)")
    try:
        load_checkpoint(path, "the fit")
    except ValueError as err:
        raise FitConfigError("ckpt_path", f"{err} (or drop --ckpt_path)") from err


def main(argv: list[str] | None = None) -> int:
    try:
        argv = to_lightning_args(sys.argv[1:] if argv is None else list(argv))
    except ValueError as err:  # a config file the zoo vocabulary cannot read
        raise FitConfigError(None, str(err)) from err
    try:
        with warnings.catch_warnings():
            # we pass args on purpose: interpeq's own argv after "fit"
            warnings.filterwarnings("ignore", message=r".*LightningCLI's args parameter")
            cli = SIITCLI(
                SIITModule,
                SIITDataModule,
                args=argv,
                run=False,
                parser_kwargs={"prog": "interpeq fit", "exit_on_error": False},
                save_config_kwargs={"overwrite": True},
                trainer_defaults={
                    "check_val_every_n_epoch": None,
                    "num_sanity_val_steps": 0,
                    "callbacks": [ThresholdStopping(), ModelCheckpoint(save_last=True)],
                },
                seed_everything_default=False,
            )
    except argparse.ArgumentError as err:  # -> one line at the interpeq boundary
        linked = re.search(r'Linked "trainer\.(\w+)" must be given via "model\.siit"', str(err))
        if linked:  # trainer.max_steps / val_check_interval follow the SIIT config
            key = LINKED.get(linked.group(1), "max_steps")
            raise FitConfigError(
                f"trainer.{linked.group(1)}",
                f"set by the training config: pass --train.{key} instead "
                "(options: interpeq fit --help)",
            ) from err
        key = re.search(r'(?:Parser key|[Kk]ey) "([^"]+)"', str(err))
        cause = root_cause(str(err))
        key = key.group(1) if key and key.group(1) not in cause else None
        raise FitConfigError(key, f"{cause} (options: interpeq fit --help)") from err

    trainer, module = cli.trainer, cli.model
    ckpt_path = cli.config.get("ckpt_path")
    _check_resume(ckpt_path, trainer.default_root_dir)
    trainer.fit(module, datamodule=cli.datamodule, ckpt_path=ckpt_path)
    out = Path(trainer.default_root_dir) / "model.safetensors"
    if trainer.is_global_zero:
        net = module.net.to(trainer.strategy.root_device)  # evaluated where it trained
        metrics = evaluate(net, module.hparams["task"], module.corr, module.train_cfg)
        save_model(net.cpu(), out)
        metrics["steps"] = trainer.global_step
        print(json.dumps({"weights": str(out), "metrics": metrics}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
