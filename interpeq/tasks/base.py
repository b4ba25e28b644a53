"""Tasks and their interpretations (high-level causal models).

A *task* is a distribution over token sequences plus a target at every content
position. Its *interpretation* is a small causal model: named variables, each a
batched torch function of its parents, computed in topological order from the
content tokens ``x`` to ``output``. Interchange interventions on that model give
the counterfactual labels that interchange-intervention training aligns to.

Token conventions (other packages rely on them):

* content tokens are ``0 .. n_values - 1`` (default 11 values, ``0..10``);
* the BOS token is ``n_values`` (default 11) and sits at position 0 only, so
  ``d_vocab = n_values + 1`` and ``d_vocab_out = n_values``;
* a sequence has ``seq_len`` positions including BOS, i.e. ``L = seq_len - 1``
  content positions;
* labels are ``[batch, seq_len]`` with :data:`IGNORE_INDEX` at position 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

N_VALUES = 11
BOS = 11
D_VOCAB = 12
D_VOCAB_OUT = 11
SEQ_LEN = 10
IGNORE_INDEX = -100
KINDS = ("attn", "mlp", "any")
INPUT, OUTPUT = "x", "output"

Seed = int | torch.Generator
# sampler(n, length, n_values, generator) -> LongTensor [n, length] in 0..n_values-1
Sampler = Callable[[int, int, int, torch.Generator], Tensor]


def as_generator(seed: Seed) -> torch.Generator:
    """A CPU generator from an int seed; a given generator is used as is."""
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or torch.Generator, got {type(seed).__name__}")
    gen = torch.Generator()
    gen.manual_seed(seed % (2**63))
    return gen


def _choices(kind: str, valid: Sequence[str]) -> str:
    return f"unknown {kind}; valid {kind}s: {', '.join(valid)}"


@dataclass(frozen=True)
class Variable:
    """One node of a causal model.

    ``fn(*parent_values)`` returns a batched tensor. ``kind`` says which low-level
    component type the variable may be aligned to: ``"attn"`` (an attention head:
    moves or counts information across positions), ``"mlp"`` (a per-position
    map) or ``"any"``. ``heads`` is how many attention heads (of one layer) a
    default correspondence aligns to the variable when it sits on heads: a hint
    for variables one head cannot carry (e.g. a sort's ``rank``).
    """

    name: str
    parents: tuple[str, ...]
    fn: Callable[..., Tensor] = field(repr=False)
    kind: str = "any"
    doc: str = ""
    heads: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a variable's name must be a non-empty string, got {self.name!r}")
        if isinstance(self.parents, str) or not all(isinstance(p, str) for p in self.parents):
            raise ValueError(
                f"variable {self.name!r}: parents must be a tuple of names, e.g. ('x',), "
                f"got {self.parents!r}"
            )
        object.__setattr__(self, "parents", tuple(self.parents))
        if self.kind not in KINDS:
            raise ValueError(
                f"variable {self.name!r}: kind {self.kind!r} cannot be placed by a "
                "correspondence; use 'attn' (attention heads), 'mlp' (MLPs) or 'any'"
            )
        if isinstance(self.heads, bool) or not isinstance(self.heads, int) or self.heads < 1:
            raise ValueError(
                f"variable {self.name!r}: heads must be an int >= 1, got {self.heads!r}"
            )
        if not self.parents:
            raise ValueError(f"variable {self.name!r} has no parents")


def _find_cycle(variables: Sequence[Variable]) -> list[str] | None:
    """A cycle among the variables' parent links, as ``[a, b, ..., a]``, or ``None``."""
    parents = {v.name: [p for p in v.parents if p != INPUT] for v in variables}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> list[str] | None:
        if state.get(name) == 1:
            return path[path.index(name) :] + [name]
        if state.get(name) == 2 or name not in parents:
            return None
        state[name] = 1
        for p in parents[name]:
            found = visit(p, [*path, name])
            if found:
                return found
        state[name] = 2
        return None

    for name in parents:
        found = visit(name, [])
        if found:
            return found[::-1]  # parent -> child order reads as the data flow
    return None


def _order_error(variables: Sequence[Variable], var: Variable, missing: list[str]) -> None:
    """Raise the one-line error for parents not defined before ``var``: an unknown
    name (a typo), a cycle, or (neither) variables listed out of topological order."""
    known = [INPUT, *(v.name for v in variables)]
    unknown = [p for p in missing if p not in known]
    if unknown:
        raise ValueError(
            f"variable {var.name!r}: unknown parent(s) {unknown}; a parent is 'x' (the "
            f"input) or another variable of the model: {known}"
        )
    cycle = _find_cycle(variables)
    if cycle:
        raise ValueError(
            f"the variables form a cycle {' -> '.join(cycle)}; an interpretation must be acyclic"
        )
    raise ValueError(
        f"variable {var.name!r}: parents {missing} are not defined before it "
        "(list the variables in topological order)"
    )


class CausalModel:
    """A deterministic causal model from the input ``x`` to ``output``.

    ``x`` (content tokens ``[batch, L]``, no BOS) is implicit; ``variables`` are
    listed in topological order and the last one must be ``output``.
    """

    def __init__(self, variables: Sequence[Variable]):
        self.variables: tuple[Variable, ...] = tuple(variables)
        if not self.variables or self.variables[-1].name != OUTPUT:
            raise ValueError(f"the last variable must be {OUTPUT!r}")
        depths: dict[str, int] = {INPUT: 0}
        for var in self.variables:
            if var.name in depths:
                raise ValueError(f"duplicate variable name {var.name!r}")
            missing = [p for p in var.parents if p not in depths]
            if missing:
                _order_error(self.variables, var, missing)
            depths[var.name] = 1 + max(depths[p] for p in var.parents)
        self._depths = depths
        self._by_name = {v.name: v for v in self.variables}

    @property
    def names(self) -> tuple[str, ...]:
        """All variable names, ``x`` first and ``output`` last."""
        return (INPUT, *(v.name for v in self.variables))

    @property
    def intermediate(self) -> tuple[str, ...]:
        """Alignable (intervenable) variables, in topological order."""
        return tuple(v.name for v in self.variables[:-1])

    def __getitem__(self, name: str) -> Variable:
        if name not in self._by_name:
            raise ValueError(_choices("variable", self.names[1:]))
        return self._by_name[name]

    def depth(self, name: str) -> int:
        """Longest path length from ``x`` (``x`` has depth 0)."""
        if name not in self._depths:
            raise ValueError(_choices("variable", self.names))
        return self._depths[name]

    def check_intervenable(self, variables: str | Sequence[str]) -> tuple[str, ...]:
        names = (variables,) if isinstance(variables, str) else tuple(variables)
        bad = [v for v in names if v not in self.intermediate]
        if bad:
            raise ValueError(
                f"cannot intervene on {bad}: "
                + _choices("variable", self.intermediate).replace("valid", "intervenable")
            )
        return names

    def run(self, x: Tensor, patch: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Every variable's value on ``x``; variables in ``patch`` take the given values.

        Patched variables are not recomputed; everything downstream is computed
        from the patched values.
        """
        patch = dict(patch or {})
        self.check_intervenable(list(patch))
        values: dict[str, Tensor] = {INPUT: x}
        for var in self.variables:
            if var.name in patch:
                values[var.name] = patch[var.name]
            else:
                values[var.name] = var.fn(*(values[p] for p in var.parents))
        return values

    def intervene(self, base_x: Tensor, source_x: Tensor, variables: str | Sequence[str]) -> Tensor:
        """Output on ``base_x`` with ``variables`` set to their values on ``source_x``."""
        names = self.check_intervenable(variables)
        if base_x.shape != source_x.shape:
            raise ValueError(
                f"base and source shapes differ: {tuple(base_x.shape)} vs {tuple(source_x.shape)}"
            )
        source = self.run(source_x)
        return self.run(base_x, {n: source[n] for n in names})[OUTPUT]


class Task:
    """A token task: a sampler for content plus its interpretation.

    The causal model is the single definition of the task: labels, counterfactual
    labels and the reference tests all read it.
    """

    kind = "task"

    def __init__(
        self,
        name: str,
        model: CausalModel,
        sampler: Sampler,
        seq_len: int = SEQ_LEN,
        n_values: int = N_VALUES,
        doc: str = "",
    ):
        if seq_len < 2:
            raise ValueError(f"seq_len must be >= 2 (BOS + content), got {seq_len}")
        self.name = name
        self.model = model
        self.sampler = sampler
        self.seq_len = seq_len
        self.n_values = n_values
        self.doc = doc

    # vocabulary --------------------------------------------------------------
    @property
    def length(self) -> int:
        """Number of content positions ``L = seq_len - 1``."""
        return self.seq_len - 1

    @property
    def bos(self) -> int:
        return self.n_values

    @property
    def d_vocab(self) -> int:
        return self.n_values + 1

    @property
    def d_vocab_out(self) -> int:
        return self.n_values

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, seq_len={self.seq_len})"

    # sampling ----------------------------------------------------------------
    def sample_content(self, n: int, seed: Seed) -> Tensor:
        """``[n, L]`` content tokens from the task's sampler (see its docstring)."""
        x = self.sampler(n, self.length, self.n_values, as_generator(seed))
        return x.long()

    def add_bos(self, content: Tensor) -> Tensor:
        bos = torch.full((content.shape[0], 1), self.bos, dtype=torch.long)
        return torch.cat([bos, content.long()], dim=1)

    def sample(self, n: int, seed: Seed) -> Tensor:
        """``[n, seq_len]`` tokens with BOS at column 0."""
        return self.add_bos(self.sample_content(n, seed))

    def sample_pairs(self, n: int, seed: Seed) -> tuple[Tensor, Tensor]:
        """Independent ``(base, source)`` token batches for interchange interventions."""
        gen = as_generator(seed)
        return self.sample(n, gen), self.sample(n, gen)

    # evaluation --------------------------------------------------------------
    def validate_tokens(self, tokens: Tensor) -> Tensor:
        """Raise ``ValueError`` unless ``tokens`` is a valid ``[batch, seq_len]`` batch."""
        if not isinstance(tokens, Tensor):
            raise ValueError(
                f"{self.name}: tokens must be a torch.Tensor, got {type(tokens).__name__}"
            )
        if tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise ValueError(f"{self.name}: tokens must be an integer tensor, got {tokens.dtype}")
        if tokens.ndim != 2:
            raise ValueError(
                f"{self.name}: tokens must be 2-D [batch, seq_len], got shape {tuple(tokens.shape)}"
            )
        if tokens.shape[1] != self.seq_len:
            raise ValueError(
                f"{self.name}: expected sequence length {self.seq_len} (BOS + {self.length} "
                f"content tokens), got {tokens.shape[1]}"
            )
        tokens = tokens.long()
        if tokens.shape[0] and not bool((tokens[:, 0] == self.bos).all()):
            firsts = sorted(set(tokens[:, 0].tolist()) - {self.bos})
            raise ValueError(
                f"{self.name}: missing BOS: position 0 must be the BOS token {self.bos}, "
                f"found {firsts}"
            )
        content = tokens[:, 1:]
        bad = (content < 0) | (content >= self.n_values)
        if bool(bad.any()):
            values = sorted(set(content[bad].tolist()))
            raise ValueError(
                f"{self.name}: content tokens must be in 0..{self.n_values - 1} "
                f"(BOS {self.bos} only at position 0); found out-of-vocabulary values {values}"
            )
        return tokens

    def _pad(self, out: Tensor) -> Tensor:
        ignore = torch.full((out.shape[0], 1), IGNORE_INDEX, dtype=torch.long)
        return torch.cat([ignore, out.long()], dim=1)

    def run(self, tokens: Tensor) -> dict[str, Tensor]:
        """Every causal-model variable on BOS'd ``tokens``."""
        return self.model.run(self.validate_tokens(tokens)[:, 1:])

    def labels(self, tokens: Tensor) -> Tensor:
        """``[batch, seq_len]`` targets, ``IGNORE_INDEX`` at position 0."""
        return self._pad(self.run(tokens)[OUTPUT])

    def intervene(
        self, base_tokens: Tensor, source_tokens: Tensor, variables: str | Sequence[str]
    ) -> Tensor:
        """Counterfactual labels: ``base`` run with ``variables`` taken from ``source``."""
        base = self.validate_tokens(base_tokens)[:, 1:]
        source = self.validate_tokens(source_tokens)[:, 1:]
        return self._pad(self.model.intervene(base, source, variables))
