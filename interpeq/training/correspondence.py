"""Correspondences: which model components implement which variable of an interpretation.

A :class:`Correspondence` maps each aligned variable of a task's causal model to a
set of components (attention heads ``L<l>H<h>``, MLPs ``L<l>MLP``). The union is the
*circuit*; every other component is *non-circuit*.

Aligned variables are the task's intermediate variables, plus optionally ``output``
(the final variable). Aligning ``output`` gives its computation a place in the
circuit, so that resampling non-circuit components can leave the output unchanged;
:func:`default_correspondence` and :func:`sample_correspondence` align it by default.
Every intermediate variable must be aligned.

**Depth rule.** Inside a block the attention sublayer runs before the MLP, and heads
of one layer run in parallel. A component's *stage* is ``2 * layer`` for a head and
``2 * layer + 1`` for an MLP; a component can read another only if its stage is
strictly larger. So every component of a variable must have a stage strictly larger
than every component of each aligned parent. (A child MLP may sit in the same layer
as a parent head; a child head must sit in a later layer than a parent head or MLP.)

**Kind rule.** A variable of kind ``attn`` is aligned only to heads, ``mlp`` only to
MLPs, ``any`` to either. Components are claimed by at most one variable.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from interpeq.models import MLP, AttnHead, Component, HookedTransformerConfig, all_components

OUTPUT = "output"


def stage(comp: Component) -> int:
    """Position in the forward pass: ``2 * layer`` for heads, ``2 * layer + 1`` for MLPs."""
    return 2 * comp.layer + (0 if comp.kind == "attn" else 1)


def model_components(cfg: HookedTransformerConfig) -> list[Component]:
    """Every component of an architecture in forward order (same as ``model.components()``)."""
    return all_components(cfg.n_layers, cfg.n_heads, not cfg.attn_only)


def _as_component(c: Component | str) -> Component:
    return c if isinstance(c, Component) else Component.parse(c)


class Correspondence:
    """A map ``variable name -> tuple of components`` (immutable, hashable, ordered).

    >>> corr = Correspondence({"rank": ["L0H0"], "output": ["L1H0"]})
    >>> sorted(map(str, corr.circuit))
    ['L0H0', 'L1H0']
    """

    def __init__(self, mapping: Mapping[str, Sequence[Component | str]]):
        if not isinstance(mapping, Mapping):
            raise ValueError(
                f"a correspondence must be a mapping variable -> components, got {type(mapping).__name__}"
            )
        items: list[tuple[str, tuple[Component, ...]]] = []
        for var, comps in mapping.items():
            if not isinstance(var, str):
                raise ValueError(f"variable names must be strings, got {var!r}")
            comps = [comps] if isinstance(comps, (str, Component)) else list(comps)
            parsed = tuple(sorted({_as_component(c) for c in comps}, key=Component.sort_key))
            if not parsed:
                raise ValueError(f"variable {var!r} is aligned to no component")
            if len(parsed) != len(comps):
                raise ValueError(
                    f"variable {var!r} lists a component twice: {[str(c) for c in comps]}"
                )
            items.append((var, parsed))
        self._items = tuple(items)
        self._map = dict(items)
        owners: dict[Component, str] = {}
        for var, comps in items:
            for c in comps:
                if c in owners:
                    raise ValueError(
                        f"component {c} is claimed twice (by {owners[c]!r} and {var!r}); "
                        "each component may implement at most one variable"
                    )
                owners[c] = var

    # ---- access ------------------------------------------------------------------
    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(v for v, _ in self._items)

    def components_of(self, var: str) -> tuple[Component, ...]:
        if var not in self._map:
            raise ValueError(
                f"variable {var!r} is not aligned; aligned variables: {list(self.variables)}"
            )
        return self._map[var]

    def items(self) -> Iterable[tuple[str, tuple[Component, ...]]]:
        return iter(self._items)

    @property
    def circuit(self) -> frozenset[Component]:
        return frozenset(c for _, comps in self._items for c in comps)

    def non_circuit(self, cfg: HookedTransformerConfig) -> list[Component]:
        """Components of the architecture outside the circuit, in forward order."""
        circuit = self.circuit
        return [c for c in model_components(cfg) if c not in circuit]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Correspondence) and self._map == other._map

    def __hash__(self) -> int:
        return hash(frozenset(self._map.items()))

    def __repr__(self) -> str:
        return f"Correspondence({self.to_dict()})"

    # ---- serialisation -----------------------------------------------------------
    def to_dict(self) -> dict[str, list[str]]:
        return {var: [str(c) for c in comps] for var, comps in self._items}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[str]]) -> Correspondence:
        return cls(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | Path) -> Correspondence:
        """From a JSON string or a path to a JSON file."""
        if isinstance(text, Path):
            text = text.read_text()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"correspondence is not valid JSON: {err}") from err
        return cls(data)

    # ---- validation --------------------------------------------------------------
    def validate(self, task, cfg: HookedTransformerConfig) -> Correspondence:
        """Check against a task's causal model and an architecture; return ``self``.

        Raises ``ValueError`` naming the offending variable/component and the valid choices.
        """
        model = task.model
        alignable = (*model.intermediate, OUTPUT)
        unknown = [v for v in self.variables if v not in alignable]
        if unknown:
            raise ValueError(
                f"unknown variable(s) {unknown} for task {task.name!r}; valid variables: {list(alignable)}"
            )
        missing = [v for v in model.intermediate if v not in self._map]
        if missing:
            raise ValueError(
                f"variable(s) {missing} of task {task.name!r} are not aligned; "
                f"every intermediate variable {list(model.intermediate)} needs components"
            )
        valid = set(model_components(cfg))
        for var, comps in self._items:
            bad = [str(c) for c in comps if c not in valid]
            if bad:
                raise ValueError(
                    f"variable {var!r}: component(s) {bad} do not exist in a model with "
                    f"{cfg.n_layers} layers x {cfg.n_heads} heads"
                    f"{' and no MLPs' if cfg.attn_only else ' and MLPs'}; "
                    f"valid: {[str(c) for c in model_components(cfg)]}"
                )
            kind = model[var].kind
            wrong = [str(c) for c in comps if kind != "any" and c.kind != kind]
            if wrong:
                raise ValueError(
                    f"variable {var!r} has kind {kind!r} but is aligned to {wrong} "
                    f"({'attention heads' if kind == 'attn' else 'MLPs'} only)"
                )
        for var, comps in self._items:
            for parent in model[var].parents:
                if parent not in self._map:
                    continue
                late = max(stage(c) for c in self._map[parent])
                early = [str(c) for c in comps if stage(c) <= late]
                if early:
                    raise ValueError(
                        f"variable {var!r} reads {parent!r} (at {[str(c) for c in self._map[parent]]}) "
                        f"but its component(s) {early} do not run strictly after them "
                        "(a head must be in a later layer than what it reads; an MLP in the same or a later layer than a head)"
                    )
        return self


# ---- construction ----------------------------------------------------------------


def _candidates(kind: str, cfg: HookedTransformerConfig, min_stage: int) -> list[Component]:
    out = [c for c in model_components(cfg) if stage(c) >= min_stage]
    return [c for c in out if kind == "any" or c.kind == kind]


def _aligned_names(task, include_output: bool) -> list[str]:
    names = list(task.model.intermediate)
    return names + [OUTPUT] if include_output else names


HeadCounts = int | Mapping[str, int] | None


def heads_needed(task, cfg: HookedTransformerConfig, var: str, heads: HeadCounts = None) -> int:
    """How many heads (of one layer) ``var`` takes when aligned to attention heads.

    ``heads=None``: the variable's declared ``Variable.heads`` (the task's hint: 4 for
    a sort's ``rank``, 2 for its ``output``, else 1), capped at ``cfg.n_heads`` so that
    narrower architectures still fit. An int applies to every variable (not capped); a mapping
    ``variable -> count`` overrides the declared count of the variables it names.
    """
    if isinstance(heads, Mapping):
        if var in heads:
            return _check_count(var, heads[var])
        heads = None
    if heads is None:
        return max(1, min(int(getattr(task.model[var], "heads", 1)), cfg.n_heads))
    return _check_count(var, heads)


def _check_count(var: str, count: object) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"head count for variable {var!r} must be an int >= 1, got {count!r}")
    return count


def default_correspondence(
    task,
    cfg: HookedTransformerConfig,
    heads_per_variable: HeadCounts = None,
    include_output: bool = True,
) -> Correspondence:
    """The deterministic earliest-fit correspondence (zoo setting D).

    Variables in causal order take the earliest stage the depth rule allows, and the
    lowest-numbered free head(s) there (``any`` variables prefer a head on a tie).
    How many heads a variable takes is :func:`heads_needed` (default: the task's
    per-variable ``Variable.heads``; an int or a ``{variable: count}`` mapping overrides).
    """
    mapping: dict[str, list[Component]] = {}
    used: set[Component] = set()
    for var in _aligned_names(task, include_output):
        v = task.model[var]
        k = heads_needed(task, cfg, var, heads_per_variable)
        min_stage = 1 + max(
            (stage(c) for p in v.parents if p in mapping for c in mapping[p]), default=-1
        )
        chosen: list[Component] = []
        for c in _candidates(v.kind, cfg, min_stage):
            if c in used or (chosen and (c.kind != chosen[0].kind or c.layer != chosen[0].layer)):
                continue
            if c.kind == "attn" and not chosen:
                free = [
                    h
                    for h in _candidates("attn", cfg, stage(c))
                    if h.layer == c.layer and h not in used
                ]
                if len(free) < k:  # this layer cannot hold the variable; try a later one
                    continue
            chosen.append(c)
            if c.kind == "mlp" or len(chosen) == k:
                break
        if not chosen or (chosen[0].kind == "attn" and len(chosen) < k):
            raise ValueError(
                f"task {task.name!r} does not fit a model with {cfg.n_layers} layers x {cfg.n_heads} heads "
                f"(variable {var!r}, kind {v.kind!r}, needs stage >= {min_stage}); use more layers or heads"
            )
        mapping[var] = chosen
        used.update(chosen)
    return Correspondence(mapping).validate(task, cfg)


def sample_correspondence(
    task,
    cfg: HookedTransformerConfig,
    seed: int,
    within_layer: Correspondence | bool | None = None,
    heads_per_variable: HeadCounts = None,
    include_output: bool = True,
    max_tries: int = 1000,
) -> Correspondence:
    """A random valid correspondence for ``cfg``, reproducible from ``seed``.

    ``within_layer=None``: each variable gets a random layer (any allowed by the depth
    rule) and random head(s) in it (zoo setting B). ``within_layer=<Correspondence>``
    (or ``True`` for :func:`default_correspondence`): every variable keeps the layer
    and kind of its components there, only *which* heads varies (zoo setting C).
    Head counts per variable as in :func:`default_correspondence`.
    """
    rng = random.Random(seed)
    if within_layer is True:
        within_layer = default_correspondence(task, cfg, heads_per_variable, include_output)
    if isinstance(within_layer, Correspondence):
        within_layer.validate(task, cfg)
        return _sample_within_layer(task, cfg, within_layer, rng)
    names = _aligned_names(task, include_output)
    for _ in range(max_tries):
        mapping: dict[str, list[Component]] = {}
        used: set[Component] = set()
        for var in names:
            v = task.model[var]
            k = heads_needed(task, cfg, var, heads_per_variable)
            min_stage = 1 + max(
                (stage(c) for p in v.parents if p in mapping for c in mapping[p]), default=-1
            )
            free = [c for c in _candidates(v.kind, cfg, min_stage) if c not in used]
            slots = sorted({(c.layer, c.kind) for c in free})
            slots = [
                s
                for s in slots
                if s[1] == "mlp" or sum(1 for c in free if (c.layer, c.kind) == s) >= k
            ]
            if not slots:
                break
            layer, kind = rng.choice(slots)
            pool = [c for c in free if (c.layer, c.kind) == (layer, kind)]
            chosen = pool if kind == "mlp" else rng.sample(pool, k)
            mapping[var] = chosen
            used.update(chosen)
        else:
            return Correspondence(mapping).validate(task, cfg)
    raise ValueError(
        f"found no valid correspondence for task {task.name!r} in a model with {cfg.n_layers} layers x "
        f"{cfg.n_heads} heads after {max_tries} tries"
    )


def _sample_within_layer(task, cfg, ref: Correspondence, rng: random.Random) -> Correspondence:
    # MLPs have no alternative inside their layer; heads are redrawn among the heads of
    # that layer not claimed by MLP-free variables earlier in the draw.
    mapping: dict[str, list[Component]] = {}
    used: set[Component] = {c for _, comps in ref.items() for c in comps if isinstance(c, MLP)}
    for var, comps in ref.items():
        new: list[Component] = []
        for layer in sorted({c.layer for c in comps if isinstance(c, AttnHead)}):
            k = sum(1 for c in comps if isinstance(c, AttnHead) and c.layer == layer)
            pool = [
                AttnHead(layer, h) for h in range(cfg.n_heads) if AttnHead(layer, h) not in used
            ]
            picked = rng.sample(pool, k)
            new.extend(picked)
            used.update(picked)
        new.extend(c for c in comps if isinstance(c, MLP))
        mapping[var] = new
    return Correspondence(mapping).validate(task, cfg)
