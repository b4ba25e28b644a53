"""``interpeq fit``: train one SIIT model from YAML configs with Lightning's CLI.

    interpeq fit --config configs/trainer/fit_example.yaml
    interpeq fit --config configs/trainer/cpu.yaml --config configs/model/default.yaml \\
                 --config configs/task/sort_ascending.yaml --model.siit.lr 1e-3
    interpeq fit --config configs/trainer/fit_example.yaml --print_config

The datamodule takes ``task`` / ``model`` / ``siit`` / ``correspondence`` from
``model.*`` (leave ``data.*`` unset), and ``model.siit.max_steps`` / ``val_every``
are linked to the trainer, so each is set in one place. ``--ckpt_path last`` resumes. At the end the
weights go to ``<trainer.default_root_dir>/model.safetensors`` and the held-out
metrics are printed as JSON.

Data parallel: ``--trainer.devices 2 --trainer.strategy ddp`` (``--trainer.accelerator
gpu`` for GPUs). Lightning re-runs the same command for the other ranks; each trains on
its shard of the same global batches as one process (``docs/ddp.md``); rank 0 writes
the checkpoints and the weights and prints the metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from interpeq.training.datamodule import SIITDataModule
from interpeq.training.fit import evaluate
from interpeq.training.io import save_model
from interpeq.training.siit import SIITModule, ThresholdStopping


class SIITCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument(
            "--ckpt_path",
            type=str | None,
            default=None,
            help="checkpoint to resume ('last' for the latest)",
        )
        parser.link_arguments("model.siit", "trainer.max_steps", compute_fn=lambda s: s.max_steps)
        parser.link_arguments(
            "model.siit", "trainer.val_check_interval", compute_fn=lambda s: s.val_every
        )


def main(argv: list[str] | None = None) -> int:
    cli = SIITCLI(
        SIITModule,
        SIITDataModule,
        args=argv,
        run=False,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={
            "check_val_every_n_epoch": None,
            "num_sanity_val_steps": 0,
            "callbacks": [ThresholdStopping(), ModelCheckpoint(save_last=True)],
        },
        seed_everything_default=False,
    )
    trainer, module = cli.trainer, cli.model
    trainer.fit(module, datamodule=cli.datamodule, ckpt_path=cli.config.get("ckpt_path"))
    out = Path(trainer.default_root_dir) / "model.safetensors"
    if trainer.is_global_zero:
        save_model(module.net.cpu(), out)
        metrics = evaluate(module.net, module.hparams["task"], module.corr, module.train_cfg)
        metrics["steps"] = trainer.global_step
        print(json.dumps({"weights": str(out), "metrics": metrics}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
