"""Train every task (default model, default correspondence) and report held-out metrics.

    python benchmarks/train_all_tasks.py                      # the ten tasks
    python benchmarks/train_all_tasks.py --algorithms         # + chains of stage models
    python benchmarks/train_all_tasks.py --tasks rank,add_index --max-steps 2000

Must show: acc >= 0.95, IIA >= 0.90, strict acc >= 0.90 (token-level, held-out) for
every task; >= 0.90 end-to-end accuracy for every composed algorithm, feeding stage
k's argmax predictions (BOS prepended) to stage k+1. Per-task overrides of the model
or training config are read from ``configs/task/<task>.yaml`` (its ``model`` /
``train`` sections, as in a zoo YAML). Checkpoints go to ``--root`` and runs resume; rows are appended to
the markdown table as they finish.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch
import yaml

from interpeq.models import HookedTransformerConfig
from interpeq.seeds import generator
from interpeq.tasks import get_algorithm, list_algorithms, list_tasks
from interpeq.training import TrainConfig, default_correspondence, fit_member, resolve_task

ROOT = Path(__file__).resolve().parents[1]
MUST = {"acc": 0.95, "iia": 0.90, "strict_acc": 0.90}


def configs_for(task: str, base_model: HookedTransformerConfig, base_train: TrainConfig):
    """Apply ``configs/task/<task>.yaml`` overrides (the stage task's own file for a stage)."""
    name = resolve_task(task).task.name
    path = ROOT / "configs" / "task" / f"{name}.yaml"
    model, train = base_model, base_train
    if path.exists():
        data = yaml.safe_load(path.read_text()) or {}
        model = model.replace(**(data.get("model") or {}))
        train = train.replace(**(data.get("train") or {}))
    return model, train


def overrides(model: HookedTransformerConfig, train: TrainConfig) -> dict[str, dict]:
    """The fields each ``configs/task/<task>.yaml`` changes, by task (for the table header)."""
    out = {}
    for name in list_tasks(kind="task"):
        m, t = configs_for(name, model, train)
        changed = {
            k: v
            for k, v in {**m.to_dict(), **t.to_dict()}.items()
            if v != {**model.to_dict(), **train.to_dict()}.get(k)
        }
        if changed:
            out[name] = changed
    return out


def train_one(task: str, args, model: HookedTransformerConfig, train: TrainConfig):
    model, train = configs_for(task, model, train)
    corr = default_correspondence(resolve_task(task).task, model)
    result = fit_member(
        task=task,
        model=model,
        correspondence=corr,
        train=train,
        ckpt_dir=args.root / task.replace("/", "_"),
    )
    return result


@torch.no_grad()
def end_to_end(algo_name: str, models, n: int, seed: int) -> tuple[float, float]:
    algo = get_algorithm(algo_name)
    tokens = algo.sample(n, generator(seed, "e2e", algo_name))
    labels = algo.labels(tokens)
    x = tokens
    for m in models:
        preds = m(x).argmax(-1)[:, 1:]
        x = algo.add_bos(preds)
    correct = x[:, 1:] == labels[:, 1:]
    return correct.float().mean().item(), correct.all(-1).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", default=",".join(list_tasks(kind="task")))
    parser.add_argument(
        "--algorithms", action="store_true", help="also train stage chains of the 6 presets"
    )
    parser.add_argument("--only-algorithms", action="store_true")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--root", type=Path, default=ROOT / "checkpoints" / "train_all_tasks")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "train_all_tasks.md"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    model = HookedTransformerConfig(seed=args.seed)
    train = TrainConfig(seed=args.seed)
    if args.max_steps:
        train = train.replace(max_steps=args.max_steps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# train_all_tasks",
        "",
        f"Default model {model.n_layers}L d_model {model.d_model} {model.n_heads} heads d_mlp {model.d_mlp}; "
        f"batch {train.batch_size}, lr {train.lr}, max steps {train.max_steps}; threshold stop at "
        f"{train.acc_threshold}/{train.iia_threshold}/{train.strict_threshold} (val). Held-out test "
        f"{train.test_size} rows, token-level over positions 1..9; torch threads {args.threads} on a shared 2-core CPU.",
        "",
        "Per-task overrides (configs/task/<task>.yaml, also used for algorithm stages of that task): "
        + (
            ", ".join(f"{name}: {changes}" for name, changes in overrides(model, train).items())
            or "none"
        )
        + ".",
        "",
        "| task | acc | iia | strict | strict (subset) | acc seq | steps | minutes | pass |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def flush() -> None:
        args.out.write_text("\n".join(lines) + "\n")

    def row(name: str, m: dict[str, float]) -> None:
        ok = all(m[k] >= v for k, v in MUST.items())
        lines.append(
            f"| {name} | {m['acc']:.4f} | {m['iia']:.4f} | {m['strict_acc']:.4f} | {m['strict_acc_subset']:.4f} | "
            f"{m['acc_seq']:.4f} | {int(m['steps'])} | {m['seconds'] / 60:.1f} | {'yes' if ok else 'NO'} |"
        )
        print(lines[-1], flush=True)
        flush()

    flush()
    if not args.only_algorithms:
        for task in args.tasks.split(","):
            row(task, train_one(task, args, model, train).metrics)
    if args.algorithms or args.only_algorithms:
        lines += [
            "",
            "| algorithm | stages (held-out acc/iia/strict, steps) | end-to-end acc | end-to-end seq acc | minutes (this run; finished stages are loaded) | pass |",
            "|---|---|---|---|---|---|",
        ]
        flush()
        for algo in list_algorithms():
            start = time.perf_counter()
            stages = get_algorithm(algo).stages
            models, cells = [], []
            for k in range(len(stages)):
                result = train_one(f"{algo}/stage{k}", args, model, train)
                m = result.metrics
                cells.append(
                    f"{stages[k].name} ({m['acc']:.3f}/{m['iia']:.3f}/{m['strict_acc']:.3f}, {int(m['steps'])})"
                )
                print(algo, k, cells[-1], flush=True)
                models.append(result.model)
            acc, seq = end_to_end(algo, models, train.test_size, args.seed)
            lines.append(
                f"| {algo} | {' -> '.join(cells)} | {acc:.4f} | {seq:.4f} | "
                f"{(time.perf_counter() - start) / 60:.1f} | {'yes' if acc >= 0.90 else 'NO'} |"
            )
            print(lines[-1], flush=True)
            flush()


if __name__ == "__main__":
    main()
