"""Algorithmic token tasks and their interpretations (high-level causal models).

>>> from interpeq.tasks import get_task
>>> task = get_task("sort_ascending")
>>> tokens = task.sample(4, seed=0)          # [4, 10], BOS at column 0
>>> labels = task.labels(tokens)             # [4, 10], -100 at column 0
>>> base, source = task.sample_pairs(4, seed=1)
>>> cf = task.intervene(base, source, ["rank"])  # counterfactual labels

Your own tasks live in a task file, loaded only on request:
``load_task_file("my_tasks.py")`` or ``--tasks my_tasks.py`` (docs/your-task.md).
"""

from interpeq.tasks import matched as _matched  # noqa: F401  (registers the alternatives)
from interpeq.tasks.base import (
    BOS,
    D_VOCAB,
    D_VOCAB_OUT,
    IGNORE_INDEX,
    N_VALUES,
    SEQ_LEN,
    CausalModel,
    Task,
    Variable,
)
from interpeq.tasks.catalog import get_task, list_tasks
from interpeq.tasks.compose import Algorithm, get_algorithm, list_algorithms
from interpeq.tasks.data import to_dataset
from interpeq.tasks.info import describe
from interpeq.tasks.matched import list_matched_pairs
from interpeq.tasks.user import load_task_file

__all__ = [
    "BOS",
    "D_VOCAB",
    "D_VOCAB_OUT",
    "IGNORE_INDEX",
    "N_VALUES",
    "SEQ_LEN",
    "Algorithm",
    "CausalModel",
    "Task",
    "Variable",
    "describe",
    "get_algorithm",
    "get_task",
    "list_algorithms",
    "list_matched_pairs",
    "list_tasks",
    "load_task_file",
    "to_dataset",
]
