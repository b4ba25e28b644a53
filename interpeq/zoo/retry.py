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
  (same task, architecture and correspondence), up to ``max_tries`` times.

The first attempt that converges is kept; if none does, the best one (highest
worst-margin below the thresholds) is kept, flagged. Every attempt is an event in
``events.jsonl``, and the kept one is recorded in ``member.json`` under ``retry``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from interpeq.seeds import member_seed

RETRY_MODES = ("none", "continue", "reseed")
RETRY_KEYS = {"thresholds", "mode", "steps", "max_tries"}
HEADLINE = ("acc", "iia", "strict_acc")


def _default_thresholds() -> dict[str, float]:
    return {"acc": 0.95, "iia": 0.90, "strict_acc": 0.90}


@dataclass(frozen=True)
class RetrySpec:
    thresholds: dict[str, float] = field(default_factory=_default_thresholds)
    mode: str = "none"
    steps: int = 1000
    max_tries: int = 2

    @classmethod
    def from_dict(cls, data: Any) -> RetrySpec:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError(f"'retry' must be a mapping with keys {sorted(RETRY_KEYS)}")
        unknown = sorted(set(data) - RETRY_KEYS)
        if unknown:
            raise ValueError(f"unknown retry keys {unknown}; valid: {sorted(RETRY_KEYS)}")
        thresholds = {**_default_thresholds(), **dict(data.get("thresholds") or {})}
        bad = sorted(set(thresholds) - set(HEADLINE))
        if bad:
            raise ValueError(f"unknown retry.thresholds {bad}; valid: {list(HEADLINE)}")
        spec = cls(
            thresholds={k: float(v) for k, v in thresholds.items()},
            mode=str(data.get("mode", "none")),
            steps=data.get("steps", 1000),
            max_tries=data.get("max_tries", 2),
        )
        if spec.mode not in RETRY_MODES:
            raise ValueError(f"unknown retry.mode {spec.mode!r}; choose one of {list(RETRY_MODES)}")
        for name in ("steps", "max_tries"):
            v = getattr(spec, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"retry.{name} must be a positive int, got {v!r}")
        return spec

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def converged(self, metrics: dict[str, Any]) -> bool:
        return all(float(metrics.get(k, 0.0)) >= t for k, t in self.thresholds.items())

    def margin(self, metrics: dict[str, Any]) -> float:
        """The worst metric's distance to its threshold (>= 0 when converged)."""
        return min(float(metrics.get(k, 0.0)) - t for k, t in self.thresholds.items())

    def attempt_seed(self, member: Any, attempt: int) -> int:
        """The derived seed of retry ``attempt`` (1, 2, ...) of ``member``."""
        return member_seed(member.model.seed, member.id, self.mode, attempt)
