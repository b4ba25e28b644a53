"""The one place that runs train -> track -> log -> compare, configured by a zoo YAML.

:func:`run_experiment` trains the zoo (stacked where members share an architecture,
on the best device, resumably), with one logger per member, the equivalence tracker
when ``tracking:`` asks for it (references of this zoo train first), the thresholds
and retries of ``retry:``, then prints the convergence table and, when ``compare:`` is
on, compares the converged members and logs the comparison as its own run. The demo
and ``interpeq zoo`` are configurations of it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interpeq.experiment.spec import ExperimentSpec, TrackingSpec
from interpeq.tasks.names import path_safe
from interpeq.zoo import MemberSpec, Zoo, run_zoo
from interpeq.zoo.retry import HEADLINE
from interpeq.zoo.store import DEFAULT_ROOT

SELF = "self"


@dataclass
class ExperimentResult:
    zoo: Zoo
    compare: Any = None  # interpeq.compare.CompareResult when compare: is on

    @property
    def unconverged(self) -> list[str]:
        return [m.id for m in self.zoo if not m.converged]


def run_experiment(
    exp: ExperimentSpec,
    root: str | Path = DEFAULT_ROOT,
    *,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    **launch: Any,
) -> ExperimentResult:
    """Train, track, log and (optionally) compare; ``launch`` goes to
    :func:`~interpeq.zoo.run_zoo` (``launcher``, ``workers``, ``gpus_per_member``,
    ``address``)."""
    root = Path(root)
    common = dict(
        progress=progress,
        logger_factory=member_logger_factory(exp, root),
        trainer_kwargs=exp.trainer or None,
        retry=exp.retry,
        **launch,
    )
    callbacks = None
    if exp.tracking is not None:
        first, references = resolve_tracking(exp, root)
        if first:
            echo(f"reference members of {exp.zoo.name} first: {', '.join(sorted(first))}")
            run_zoo(exp.zoo, root, only=first, **common)
        callbacks = tracking_factory(exp.tracking, references, root / exp.zoo.name)
    zoo = run_zoo(exp.zoo, root, callbacks_factory=callbacks, **common)
    echo(convergence_report(zoo))
    result = ExperimentResult(zoo)
    if exp.compare.enabled:
        result.compare = compare_experiment(exp, zoo, root, progress)
        echo(result.compare.summary_text())
    return result


def member_logger_factory(exp: ExperimentSpec, root: Path) -> Callable | None:
    """``member -> logger``: one run per member (name = member id, group = zoo, job type
    fit, config = that member's resolved config, tags for task / setting / zoo)."""
    if exp.logger.kind == "none":
        return None
    from interpeq.report import make_logger, member_tags

    spec, log = exp.zoo, exp.logger

    def make(member: MemberSpec) -> Any:
        return make_logger(
            log.kind,
            run_name=member.id,
            group=spec.name,
            job_type="fit",
            config=member.to_dict(),
            tags=[*member_tags(member.task, member.setting, spec.name), *log.tags],
            save_dir=root / spec.name,
            project=log.project,
            entity=log.entity,
        )

    return make


def resolve_tracking(exp: ExperimentSpec, root: Path) -> tuple[set[str], dict[str, Any]]:
    """``(ids of this zoo's reference members, {group: reference spec})``.

    ``"self:<selector>"`` selects members of this zoo (every task unless ``task=``), one
    group per task (several selectors add to the task's group: ``self:seed=0``,
    ``self:seed=1``, ... give a group of those seeds, which the calibrated null needs);
    any other reference is passed to the tracker as it is."""
    from interpeq.callbacks.references import _parse_selector

    refs = exp.tracking.references
    items = refs.items() if isinstance(refs, dict) else [(None, r) for r in _as_list(refs)]
    first: set[str] = set()
    out: dict[str, Any] = {}
    members = exp.zoo.members()
    for group, ref in items:
        head, _, tail = str(ref).partition(":") if isinstance(ref, str) else ("", "", "")
        if head != SELF:
            out[group or f"reference{len(out)}"] = ref
            continue
        sel = _parse_selector(tail, str(ref))
        chosen = [m for m in members if _matches(m, sel)]
        if not chosen:
            raise ValueError(
                f"tracking reference {ref!r} selects no member of zoo {exp.zoo.name!r}"
            )
        first |= {m.id for m in chosen}
        for task in dict.fromkeys(m.task for m in chosen):
            name = group or path_safe(task)  # several selectors of one task: one group
            out.setdefault(name, []).append({"zoo": str(root / exp.zoo.name), **sel, "task": task})
    return first, out


def _warn_small_reference_groups(groups: dict[str, list], impls: str) -> None:
    """Once per run: reference groups too small for the calibrated null make every
    decision against them undecidable."""
    from interpeq.equivalence.nulls import MIN_MEMBERS

    small = {g: len(refs) for g, refs in groups.items() if len(refs) < MIN_MEMBERS}
    if impls == "auto" and small:
        warnings.warn(
            "tracking: no calibrated null for reference group(s) "
            + ", ".join(f"{g} ({n} model(s))" for g, n in small.items())
            + f": decisions against them are undecidable; give at least {MIN_MEMBERS} "
            "references per group (e.g. several 'self:seed=K'), or tracking.impls: "
            "intervention if the draws are known to be as wide as retraining",
            RuntimeWarning,
            stacklevel=2,
        )


def _as_list(refs: Any) -> list:
    return list(refs) if isinstance(refs, (list, tuple)) else [refs]


def _matches(m: MemberSpec, sel: dict[str, str]) -> bool:
    return (
        sel.get("task") in (None, m.task, m.task.split("/")[0])
        and sel.get("setting") in (None, m.setting)
        and (sel.get("seed") is None or int(sel["seed"]) == m.seed)
    )


def tracking_factory(
    t: TrackingSpec, references: dict[str, Any], zoo_dir: Path
) -> Callable[[list[MemberSpec]], Sequence]:
    """``members -> [capture, tracker]`` for one Lightning run (one member or a stack);
    the curves go to ``<zoo>/tracking/<member>/``."""
    from interpeq.callbacks import ActivationCapture, EquivalenceTracker

    def make(group: list[MemberSpec]) -> list:
        ids = [m.id for m in group]
        save = zoo_dir / "tracking" / ids[0] if len(ids) == 1 else zoo_dir / "tracking"
        capture = ActivationCapture(
            every_n_steps=t.every_n_steps,
            n_probes=t.n_probes,
            save_dir=save,
            run_id=ids[0] if len(ids) == 1 else "stack",
            member_ids=ids,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # said once, below
            tracker = EquivalenceTracker(
                references,
                capture=capture,
                save_dir=save,
                m=t.m,
                alpha=t.alpha,
                seed=t.seed,
                one_sided=t.one_sided,
                impls=t.impls,
                include_unconverged=t.include_unconverged,
                background=t.background,
            )
        _warn_small_reference_groups(tracker.groups, t.impls)
        return [capture, tracker]

    if not t.include_unconverged:
        _warn_unconverged_references(references)
    return make


def _warn_unconverged_references(references: dict[str, Any]) -> None:
    """Once per experiment (not per group): which references are left out."""
    from interpeq.callbacks.references import resolve_references

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resolve_references(references)
    for w in caught:
        if "did not converge" in str(w.message):
            warnings.warn(str(w.message), RuntimeWarning, stacklevel=3)


def convergence_report(zoo: Zoo) -> str:
    """Per member the three headline metrics and ``converged``; per task the count."""
    lines = [f"zoo {zoo.name}: {len(zoo)} members in {zoo.path}"]
    width = max((len(m.id) for m in zoo), default=10)
    lines.append(f"  {'member':{width}s}    acc    iia strict  converged")
    for m in zoo:
        vals = "  ".join(f"{float(m.metrics.get(k, float('nan'))):.3f}" for k in HEADLINE)
        flag = "yes" if m.converged else "NO"
        lines.append(f"  {m.id:{width}s}  {vals}  {flag}")
    tasks: dict[str, list] = {}
    for m in zoo:
        tasks.setdefault(m.task_name, []).append(m.converged)
    lines.append("  task                       converged / members")
    for task, flags in sorted(tasks.items()):
        bad = sum(not f for f in flags)
        note = f"   ({bad} did not converge)" if bad else ""
        lines.append(f"  {task:26s} {sum(flags):3d} / {len(flags)}{note}")
    return "\n".join(lines)


def compare_experiment(exp: ExperimentSpec, zoo: Zoo, root: Path, progress: bool) -> Any:
    """``compare:`` after training, logged as the zoo's compare run."""
    from interpeq.compare import compare_zoo
    from interpeq.compare.log import finish_logger
    from interpeq.report import make_logger

    logger = make_logger(
        exp.logger.kind,
        run_name=f"{zoo.name}-compare",
        group=zoo.name,
        job_type="compare",
        config={"zoo": zoo.name, "compare": exp.compare.options()},
        tags=[f"zoo:{zoo.name}", "compare", *exp.logger.tags],
        save_dir=zoo.path,
        project=exp.logger.project,
        entity=exp.logger.entity,
    )
    result = compare_zoo(zoo, root=root, logger=logger, progress=progress, **exp.compare.options())
    finish_logger(logger)
    return result
