"""Export a task or algorithm as a Hugging Face ``datasets.Dataset``.

Rows hold ``tokens`` (BOS'd input), ``labels`` (``-100`` at position 0) and
``source_tokens`` (an independent input for interchange interventions; the
counterfactual labels depend on the aligned variable, so they are computed at
training time with ``task.intervene``). The split seed is derived from
``(task config, seed, split)`` with SHA-256, so it is stable across processes
and Python versions (unlike ``hash()``), and different splits never share a
stream.
"""

from __future__ import annotations

from interpeq import seeds
from interpeq.tasks.base import Task

COLUMNS = ("tokens", "labels", "source_tokens")


def split_seed(task: Task, seed: int, split: str) -> int:
    """A 63-bit seed determined by the task's name/config, ``seed`` and ``split``."""
    return seeds.split_seed(task.name, task.seq_len, task.n_values, seed, split)


def to_dataset(task: Task, n: int, seed: int, split: str = "train"):
    """``n`` rows of ``task`` (a Task or Algorithm) for ``split``; same arguments, same data."""
    import datasets  # heavy; only needed here

    if not isinstance(task, Task):
        raise ValueError(f"expected a Task or Algorithm, got {type(task).__name__}")
    base, source = task.sample_pairs(n, split_seed(task, seed, split))
    columns = {
        "tokens": base.tolist(),
        "labels": task.labels(base).tolist(),
        "source_tokens": source.tolist(),
    }
    features = datasets.Features({c: datasets.Sequence(datasets.Value("int64")) for c in COLUMNS})
    info = datasets.DatasetInfo(
        description=f"interpeq {task.kind} {task.name} (seq_len={task.seq_len}, seed={seed})",
        features=features,
    )
    return datasets.Dataset.from_dict(columns, features=features, info=info, split=split)
