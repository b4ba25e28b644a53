"""Multi-stage algorithms: tasks chained so that stage k reads stage k-1's output.

An :class:`Algorithm` is itself a :class:`Task` whose interpretation is the
stages' causal models joined end to end, with variables prefixed ``s{k}.``
(``s0.rank``, ``s0.output``, ...; the last stage's output is ``output``). So
the whole chain can be sampled, labelled and intervened like a single task,
while :meth:`Algorithm.stage_inputs` gives each stage's own inputs, i.e. the
stage-k training distribution is stage-0 samples pushed through earlier stages.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import replace
from functools import cache

import torch
from torch import Tensor

from interpeq.tasks import samplers
from interpeq.tasks.base import INPUT, OUTPUT, SEQ_LEN, CausalModel, Sampler, Seed, Task, Variable
from interpeq.tasks.catalog import get_task


def _combined_model(stages: Sequence[Task]) -> CausalModel:
    variables: list[Variable] = []
    last = len(stages) - 1
    for k, stage in enumerate(stages):
        stage_input = INPUT if k == 0 else f"s{k - 1}.{OUTPUT}"

        def rename(name: str, k: int = k, stage_input: str = stage_input) -> str:
            if name == INPUT:
                return stage_input
            if name == OUTPUT and k == last:
                return OUTPUT
            return f"s{k}.{name}"

        for var in stage.model.variables:
            variables.append(
                replace(
                    var,
                    name=rename(var.name),
                    parents=tuple(rename(p) for p in var.parents),
                    doc=f"[{stage.name}] {var.doc}",
                )
            )
    return CausalModel(variables)


class Algorithm(Task):
    """A chain of tasks; also a task (sample, labels, intervene) over the whole chain."""

    kind = "algorithm"

    def __init__(
        self,
        name: str,
        stages: Sequence[Task],
        family: str = "",
        sampler: Sampler | None = None,
        doc: str = "",
    ):
        stages = tuple(stages)
        if not stages:
            raise ValueError(f"algorithm {name!r} needs at least one stage")
        for k in range(len(stages) - 1):
            a, b = stages[k], stages[k + 1]
            if a.seq_len != b.seq_len:
                raise ValueError(
                    f"algorithm {name!r}: stage {k} ({a.name}) has seq_len {a.seq_len} but "
                    f"stage {k + 1} ({b.name}) has seq_len {b.seq_len}"
                )
            if a.d_vocab_out > b.n_values:
                raise ValueError(
                    f"algorithm {name!r}: stage {k} ({a.name}) outputs {a.d_vocab_out} values "
                    f"but stage {k + 1} ({b.name}) reads only 0..{b.n_values - 1}"
                )
        self.stages = stages
        self.family = family
        if not doc:
            sampler_fn = sampler or stages[0].sampler
            sampler_doc = inspect.cleandoc(sampler_fn.__doc__ or "").replace("\n\n", "\n")
            doc = f"{' -> '.join(s.name for s in stages)}"
            doc += f" ({family} family)" if family else ""
            doc += f"\n\nSampler ``{sampler_fn.__name__}``: {sampler_doc}"
        super().__init__(
            name,
            _combined_model(stages),
            sampler or stages[0].sampler,
            seq_len=stages[0].seq_len,
            n_values=stages[0].n_values,
            doc=doc,
        )

    @property
    def d_vocab_out(self) -> int:
        return self.stages[-1].d_vocab_out

    def stage_inputs(self, tokens: Tensor) -> list[Tensor]:
        """Each stage's input tokens (BOS'd): ``tokens`` then earlier stages' outputs."""
        values = self.run(tokens)
        outs = [
            self.stages[k + 1].add_bos(values[f"s{k}.{OUTPUT}"])
            for k in range(len(self.stages) - 1)
        ]
        return [self.validate_tokens(tokens), *outs]

    def stage_labels(self, tokens: Tensor) -> list[Tensor]:
        """Each stage's labels on its own inputs (the last equals :meth:`labels`)."""
        return [s.labels(t) for s, t in zip(self.stages, self.stage_inputs(tokens), strict=True)]

    def stage_task_inputs(self, k: int, n: int, seed: Seed) -> Tensor:
        """Stage-``k`` training inputs: ``n`` stage-0 samples pushed through stages ``< k``."""
        if not 0 <= k < len(self.stages):
            raise ValueError(
                f"stage {k} out of range for {self.name!r} ({len(self.stages)} stages)"
            )
        return self.stage_inputs(self.sample(n, seed))[k]


# ------------------------------------------------------------- preset samplers


def descending_run_balanced(n: int, length: int, n_values: int, gen: torch.Generator) -> Tensor:
    """40% shuffled runs c, c-1, ..., c-L+1; 20% such runs with one token changed; 40% uniform.

    Exactly the shuffled runs make ``sort_descending -> add_index -> all_equal``
    output 1 (uniform rows almost never do), so ~40% of rows are positive.
    """
    if length > n_values:
        return samplers.uniform(n, length, n_values, gen)

    def runs() -> Tensor:
        c = torch.randint(length - 1, n_values, (n, 1), generator=gen)
        return samplers.shuffle(c - torch.arange(length), gen)

    near = samplers.perturb_one(runs(), n_values, gen)
    return samplers.mix(
        gen, [0.4, 0.2, 0.4], [runs(), near, samplers.uniform(n, length, n_values, gen)]
    )


def zeros_balanced(n: int, length: int, n_values: int, gen: torch.Generator) -> Tensor:
    """40% all-zero rows, 20% zeros with one non-zero token, 40% uniform.

    Only all-zero rows make ``sort -> interleave_reverse -> add_next -> all_equal``
    output 1, so ~40% of rows are positive.
    """
    zeros = torch.zeros(n, length, dtype=torch.long)
    near = samplers.perturb_one(zeros, n_values, gen)
    return samplers.mix(
        gen, [0.4, 0.2, 0.4], [zeros, near, samplers.uniform(n, length, n_values, gen)]
    )


# name -> (stages, family, stage-0 sampler override)
PRESETS: dict[str, tuple[tuple[str, ...], str, Sampler | None]] = {
    "algorithm_1": (("sort_descending", "next_minus_current"), "sorting", None),
    "algorithm_2": (
        ("sort_descending", "add_index", "all_equal"),
        "sorting",
        descending_run_balanced,
    ),
    "algorithm_3": (
        ("sort_ascending", "interleave_reverse", "add_next", "all_equal"),
        "sorting",
        zeros_balanced,
    ),
    "algorithm_4": (("sort_ascending", "alternating_parity"), "sorting", None),
    "algorithm_5": (("any_duplicate", "add_next", "all_equal"), "counting", None),
    "algorithm_6": (("rank", "any_duplicate"), "counting", samplers.duplicate_balanced),
}


def list_algorithms() -> list[str]:
    return list(PRESETS)


@cache
def get_algorithm(name: str, seq_len: int = SEQ_LEN) -> Algorithm:
    """Preset ``algorithm_1`` .. ``algorithm_6`` (docs/method.md section 10).

    Stage-0 samplers: algorithms 1, 4, 5 use the first stage's sampler;
    2 and 3 mix in the rare inputs with final output 1 (see
    :func:`descending_run_balanced`, :func:`zeros_balanced`); 6 uses the
    duplicate-balanced sampler, since ``rank -> any_duplicate`` detects duplicates.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown algorithm {name!r}; valid algorithms: {', '.join(PRESETS)}")
    stage_names, family, sampler = PRESETS[name]
    stages = [get_task(s, seq_len=seq_len) for s in stage_names]
    return Algorithm(name, stages, family=family, sampler=sampler)
