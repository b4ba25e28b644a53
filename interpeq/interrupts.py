"""Ctrl-C and SIGTERM as one clean stop: :class:`Interrupted`, raised from a signal handler.

``with stop_on_signals(): ...`` turns the first SIGINT or SIGTERM into
:class:`Interrupted` (its ``signum`` says which) in the main thread; the ``interpeq``
command catches it at its boundary (:mod:`interpeq.cli`) and exits with ``128 +
signum`` (130 for Ctrl-C, 143 for SIGTERM) after the subcommand said where it stopped.

``Interrupted`` derives from ``BaseException`` but not from ``KeyboardInterrupt``:
Lightning's ``Trainer.fit`` turns a ``KeyboardInterrupt`` into ``sys.exit(1)`` (and a
second Ctrl-C into nothing), but re-raises anything else after its own teardown, so
the stop reaches the caller with its cause. Code that writes files which must be
whole (a zoo member moved into place) runs inside ``with deferred():``: a signal
arriving there is held and raised when the block ends. A second signal during the
wind-down falls back to Python's defaults (a ``KeyboardInterrupt``, or termination).

This module imports nothing of interpeq, so any layer may use it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The run was stopped by a signal (``signum``); what finished is kept."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"stopped by {signal.Signals(self.signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_state: dict[str, object] = {"received": None, "deferring": 0, "pending": None}


def received() -> int | None:
    """The signal that stopped the current run, if any (survives a ``SystemExit``)."""
    return _state["received"]  # type: ignore[return-value]


def exit_code_for(signum: int | None) -> int:
    return 128 + int(signum) if signum else 130


def _restore_defaults() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _handler(signum: int, frame) -> None:  # noqa: ARG001 - signal handler signature
    _state["received"] = signum
    _restore_defaults()  # a second signal is not caught again
    if _state["deferring"]:
        _state["pending"] = signum
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Raise :class:`Interrupted` on the first SIGINT / SIGTERM inside the block (main
    thread only; elsewhere the block runs unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in SIGNALS}
    _state.update(received=None, pending=None)
    for s in SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold a stop signal until the block has finished (for writes that must be whole)."""
    _state["deferring"] = int(_state["deferring"]) + 1  # type: ignore[call-overload]
    try:
        yield
    finally:
        _state["deferring"] = int(_state["deferring"]) - 1  # type: ignore[call-overload]
        pending = _state["pending"]
        if pending is not None and not _state["deferring"]:
            _state["pending"] = None
            raise Interrupted(int(pending))  # type: ignore[call-overload]
