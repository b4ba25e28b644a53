"""One logger per member of a stacked group, behind the single logger Lightning sees.

A stacked group trains many members in one Lightning run, but each member should get
its own W&B run (or CSV folder) with its own history, as if it had trained alone.
:class:`MemberLoggers` is that one logger: it routes every key to its member and
strips the member from the key:

* ``<name>/m<k>`` (what :class:`~interpeq.training.stacked.StackedSIITModule` logs per
  member) -> member ``k`` as ``<name>``;
* ``equivalence/<member id>/...`` and ``equivalence_final/<member id>/...`` (what the
  equivalence tracker logs for a stack) -> that member as ``equivalence/...``;
* ``stack/...`` (the group's aggregates, e.g. the worst member's validation accuracy)
  -> nobody: they describe the stack, not a member;
* anything else (``epoch``) -> every member.

:func:`~interpeq.report.wandb.log_summary`, :func:`~interpeq.report.wandb.log_image`
and :func:`~interpeq.report.wandb.log_table` route the same way (a table by its
``member`` column).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from lightning.pytorch.loggers import Logger

_MEMBER_SUFFIX = re.compile(r"^(.*)/m(\d+)$")
_PER_MEMBER = ("equivalence/", "equivalence_final/")
STACK_PREFIX = "stack/"


class MemberLoggers(Logger):
    """Routes a stacked group's logging to one logger per member (see the module doc)."""

    def __init__(self, loggers: Sequence[Any], member_ids: Sequence[str]) -> None:
        super().__init__()
        if len(loggers) != len(member_ids):
            raise ValueError(f"{len(loggers)} loggers for {len(member_ids)} members")
        self.loggers = list(loggers)
        self.member_ids = list(member_ids)
        self._index = {m: k for k, m in enumerate(self.member_ids)}

    @property
    def name(self) -> str:
        return "members"

    @property
    def version(self) -> str:
        return "stacked"

    def route(self, key: str) -> list[tuple[int, str]]:
        """``[(member index, key as that member sees it)]`` for one logged key."""
        if key.startswith(STACK_PREFIX):
            return []
        for prefix in _PER_MEMBER:
            if key.startswith(prefix):
                member, _, rest = key[len(prefix) :].partition("/")
                if member in self._index and rest:
                    return [(self._index[member], prefix + rest)]
        match = _MEMBER_SUFFIX.match(key)
        if match and int(match.group(2)) < len(self.loggers):
            return [(int(match.group(2)), match.group(1))]
        return [(k, key) for k in range(len(self.loggers))]

    def split(self, values: Mapping[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
        """``values`` grouped by member: ``[(member logger, {key: value})]``."""
        per: dict[int, dict[str, Any]] = {}
        for key, value in values.items():
            for k, routed in self.route(key):
                per.setdefault(k, {})[routed] = value
        return [(self.loggers[k], per[k]) for k in sorted(per)]

    def member_logger(self, member_id: str) -> Any:
        return self.loggers[self._index[member_id]]

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for logger, values in self.split(metrics):
            logger.log_metrics(values, step)

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Nothing: each member's logger was created with that member's own config."""

    def save(self) -> None:
        for logger in self.loggers:
            logger.save()

    def finalize(self, status: str) -> None:
        for logger in self.loggers:
            logger.finalize(status)

    def finish(self) -> None:
        """End every member's run (W&B: one run per member, so each must be finished)."""
        for logger in self.loggers:
            finish = getattr(logger, "finish", None)
            if finish is not None:
                finish()
