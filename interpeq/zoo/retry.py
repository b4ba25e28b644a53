"""Converged or flagged: each member's thresholds, and what to do when it misses them.

A member *converged* when its held-out accuracy, IIA and strict accuracy all reach
``thresholds`` (default 0.95 / 0.90 / 0.90, the bar the README's tables use). The
flag is stored as ``converged`` in the member's ``metrics.json`` and index entry, and
comparisons leave unconverged members out unless asked to keep them.

``retry`` (the zoo YAML section) says what happens to a member that misses them:

* ``mode: none`` (default): keep it, flagged;
* ``mode: continue``: train ``steps`` more steps from its weights (at the schedule's
  final learning rate, constant, on fresh batches), up to ``max_tries`` times;
* ``mode: reseed``: train it again from scratch with a derived init and data seed
  (same task, architecture and correspondence), up to ``max_tries`` times;
* ``mode: continue_then_reseed``: ``max_tries`` continuations as ``continue``, then, if
  it still misses, up to ``reseeds`` (default 2) trainings from scratch with new
  seeds. Training on rarely rescues a member stuck on a plateau (seen: an IIA of
  0.8529 became 0.8530 in 600 more steps), a new initialisation often does; a member
  is retrained rather than dropped, up to that limit.

The first attempt that converges is kept; if none does, the best one (highest
worst-margin below the thresholds) is kept, flagged. Every attempt is an event in
``events.jsonl``, and the kept one is recorded in ``member.json`` under ``retry``
(``history``: each attempt's mode and headline metrics). :func:`retry_member` runs the
loop; :func:`unconverged_warning` says, for the members that still miss, what was
tried (mode, tries, best IIA), so a final warning never suggests a retry that ran.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from interpeq.seeds import member_seed
from interpeq.training.config import METRICS, Thresholds

RETRY_MODES = ("none", "continue", "reseed", "continue_then_reseed")
RETRY_KEYS = {"thresholds", "mode", "steps", "max_tries", "reseeds"}
HEADLINE = METRICS


@dataclass(frozen=True)
class RetrySpec:
    thresholds: Thresholds = field(default_factory=Thresholds)
    mode: str = "none"
    steps: int = 1000
    max_tries: int = 2
    reseeds: int = 2  # continue_then_reseed: fresh-seed trainings after the continuations

    def __post_init__(self) -> None:
        if isinstance(self.thresholds, dict):  # RetrySpec(thresholds={"iia": 0.8, ...})
            full = {**Thresholds().to_dict(), **self.thresholds}
            object.__setattr__(self, "thresholds", Thresholds.from_dict(full, "retry.thresholds"))

    @classmethod
    def from_dict(cls, data: Any) -> RetrySpec:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError(f"'retry' must be a mapping with keys {sorted(RETRY_KEYS)}")
        unknown = sorted(set(data) - RETRY_KEYS)
        if unknown:
            raise ValueError(f"unknown retry keys {unknown}; valid: {sorted(RETRY_KEYS)}")
        given = data.get("thresholds") or {}
        bad = sorted(set(given) - set(HEADLINE)) if isinstance(given, dict) else given
        if bad:
            raise ValueError(f"unknown retry.thresholds {bad}; valid: {list(HEADLINE)}")
        spec = cls(
            thresholds=Thresholds.from_dict(
                {**Thresholds().to_dict(), **given}, "retry.thresholds"
            ),
            mode=str(data.get("mode", "none")),
            steps=data.get("steps", 1000),
            max_tries=data.get("max_tries", 2),
            reseeds=data.get("reseeds", 2),
        )
        if spec.mode not in RETRY_MODES:
            raise ValueError(f"unknown retry.mode {spec.mode!r}; choose one of {list(RETRY_MODES)}")
        for name in ("steps", "max_tries", "reseeds"):
            v = getattr(spec, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"retry.{name} must be a positive int, got {v!r}")
        return spec

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # thresholds as {acc, iia, strict_acc}

    def converged(self, metrics: dict[str, Any]) -> bool:
        return self.thresholds.met(metrics)

    def margin(self, metrics: dict[str, Any]) -> float:
        """The worst metric's distance to its threshold (>= 0 when converged)."""
        return self.thresholds.margin(metrics)

    def attempt_seed(self, member: Any, attempt: int) -> int:
        """The derived seed of retry ``attempt`` (1, 2, ...) of ``member``."""
        return member_seed(member.model.seed, member.id, self.mode, attempt)

    @property
    def total_tries(self) -> int:
        """Attempts at most per member (continuations plus reseeds)."""
        if self.mode == "none":
            return 0
        return self.max_tries + (self.reseeds if self.mode == "continue_then_reseed" else 0)

    def attempt_mode(self, attempt: int) -> str:
        """``"continue"`` or ``"reseed"``: what retry ``attempt`` (1, 2, ...) does."""
        if self.mode == "continue_then_reseed":
            return "continue" if attempt <= self.max_tries else "reseed"
        return self.mode

    def describe(self) -> str:
        """What this policy tries, in words (warnings and reports)."""
        cont = f"{self.steps} more steps, at most {self.max_tries} time(s)"
        if self.mode == "none":
            return "no retry"
        if self.mode == "continue":
            return f"retry continue ({cont})"
        if self.mode == "reseed":
            return f"retry reseed (from scratch with a new seed, at most {self.max_tries} time(s))"
        return f"retry continue_then_reseed ({cont}, then up to {self.reseeds} new seed(s))"


def retry_member(member: Any, store: Any, result: Any, retry: RetrySpec, trainer_kwargs=None):
    """``(kept result, retry record or None)`` after the retries ``retry`` asks for.

    The first attempt that converges stops the loop; otherwise the best (by
    :meth:`RetrySpec.margin`) is kept. The record holds every attempt's mode and
    headline metrics, the kept attempt and the best IIA, for :func:`unconverged_warning`.
    """
    from interpeq.training import evaluate

    if retry.mode == "none" or retry.converged(result.metrics):
        return result, None
    best, kept, history = result, 0, [{**_headline(result.metrics, 0), "mode": "initial"}]
    for attempt in range(1, retry.total_tries + 1):
        mode = retry.attempt_mode(attempt)
        before = _headline(best.metrics)
        store.log_event("retry", member.id, mode=mode, attempt=attempt, before=before)
        res = _attempt(member, store, best, attempt, retry, mode, trainer_kwargs)
        res.metrics.update(evaluate(res.model, member.task, member.correspondence, member.train))
        history.append({**_headline(res.metrics, attempt), "mode": mode})
        if retry.margin(res.metrics) > retry.margin(best.metrics):
            best, kept = res, attempt
        if retry.converged(best.metrics):
            break
    info = {
        "mode": retry.mode,
        "attempts": len(history) - 1,
        "kept": kept,
        "reseeded": any(h["mode"] == "reseed" for h in history),
        "converged": retry.converged(best.metrics),
        "best_iia": round(float(best.metrics.get("iia", 0.0)), 4),
        "history": history,
    }
    return best, info


def _attempt(member, store, best, attempt: int, retry: RetrySpec, mode: str, trainer_kwargs):
    """One retry: from scratch with a derived seed, or ``steps`` more from ``best``
    (at the schedule's final learning rate, constant, on fresh batches)."""
    import shutil

    from interpeq.devices import barrier
    from interpeq.training import fit_member

    t = member.train
    seed = retry.attempt_seed(member, attempt)
    work = store.partial_dir / f"{member.id}.retry{attempt}"
    writes = getattr(store, "writes", True)  # DDP: rank 0 alone clears the folder
    if writes:
        shutil.rmtree(work, ignore_errors=True)
    barrier()  # DDP: no rank looks for a checkpoint in ``work`` before it is cleared
    common = dict(
        task=member.task,
        correspondence=member.correspondence,
        ckpt_dir=work,
        trainer_kwargs=trainer_kwargs,
    )
    if mode == "reseed":
        res = fit_member(
            model=member.model.replace(seed=seed), train=t.replace(seed=seed), **common
        )
        res.metrics["seed"] = float(seed)
    else:
        cont = t.replace(
            seed=seed, max_steps=retry.steps, warmup_steps=0, schedule="constant",
            lr=t.lr * t.min_lr_ratio, min_steps=0,
        )  # fmt: skip
        res = fit_member(
            model=member.model, train=cont, init_state=best.model.state_dict(), **common
        )
        res.metrics["steps"] += best.metrics.get("steps", 0.0)
        res.metrics["seconds"] += best.metrics.get("seconds", 0.0)
    if writes:
        shutil.rmtree(work, ignore_errors=True)
    return res


def _headline(metrics: dict, attempt: int | None = None) -> dict:
    out = {k: round(float(metrics.get(k, 0.0)), 4) for k in (*HEADLINE, "steps")}
    return out if attempt is None else {"attempt": attempt, **out}


def unconverged_warning(
    ids: list[str], retry: RetrySpec, records: dict[str, dict | None] | None = None
) -> str:
    """The final word on members that missed their thresholds: which, what was tried
    (the policy and, per member from its ``member.json`` ``retry`` record, the tries and
    the best IIA), and what to do next. ``""`` when every member converged."""
    if not ids:
        return ""
    records = records or {}
    shown = []
    for i in ids[:8]:
        rec = records.get(i)
        if rec:
            modes = [h.get("mode", rec.get("mode")) for h in rec.get("history", [])[1:]]
            tried = ", ".join(f"{modes.count(x)} {x}" for x in dict.fromkeys(modes))
            shown.append(f"{i} ({tried or 'no tries'}; best IIA {rec.get('best_iia', '?')})")
        else:
            shown.append(i)
    more = f" and {len(ids) - 8} more" if len(ids) > 8 else ""
    if retry.mode == "none":
        hint = (
            "no retry ran: set retry: in the YAML (e.g. mode: continue_then_reseed) to retrain them"
        )
    else:
        hint = (
            f"after {retry.describe()}: retrain at a larger size or budget "
            "(task_model / task_train) or raise retry.reseeds"
        )
    return (
        f"warning: {len(ids)} member(s) did not converge ({hint}); compare leaves them out: "
        + ", ".join(shown)
        + more
    )
