"""Ctrl-C and SIGTERM as one clean stop: :class:`Interrupted`, raised from a signal handler.

``with stop_on_signals(): ...`` turns the first SIGINT or SIGTERM into
:class:`Interrupted` (its ``signum`` says which) in the main thread; the ``interpeq``
command catches it at its boundary (:mod:`interpeq.cli`), prints
:func:`stop_message` (where the run stood and the command that resumes it, as the
subcommand registered with :func:`on_stop`) and exits with ``128 + signum`` (130 for
Ctrl-C, 143 for SIGTERM).

``Interrupted`` derives from ``BaseException`` but not from ``KeyboardInterrupt``:
Lightning's ``Trainer.fit`` turns a ``KeyboardInterrupt`` into ``sys.exit(1)`` (and a
second Ctrl-C into nothing), but re-raises anything else after its own teardown, so
the stop reaches the caller with its cause. Code that writes files which must be
whole (a zoo member moved into place) runs inside ``with deferred():``: a signal
arriving there is held and raised when the block ends. A second signal during the
wind-down falls back to Python's defaults (a ``KeyboardInterrupt``, or termination).

:func:`debug_enabled` is the ``--debug`` switch of the same boundary
(``INTERPEQ_DEBUG=1``, which ``interpeq --debug`` sets): subcommands that print their
own one-line errors re-raise under it, so the traceback shows.

This module imports nothing of interpeq, so any layer may use it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The run was stopped by a signal (``signum``); what finished is kept."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"stopped by {signal_name(self.signum)}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_state: dict[str, object] = {
    "received": None,
    "deferring": 0,
    "pending": None,
    "depth": 0,
    "reporter": None,
}


def debug_enabled() -> bool:
    """``INTERPEQ_DEBUG`` is set to 1 / true / yes / on (``interpeq --debug`` sets it)."""
    return os.environ.get("INTERPEQ_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def signal_name(signum: int | None) -> str:
    return signal.Signals(signum).name if signum else "SIGINT"


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
    if threading.current_thread() is not threading.main_thread() or _state["depth"]:
        yield  # not the main thread, or already inside: the outer block handles it
        return
    old = {s: signal.getsignal(s) for s in SIGNALS}
    _state.update(received=None, pending=None, depth=1, reporter=None)
    for s in SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        _state["depth"] = 0
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def on_stop(where: Callable[[], str], resume: str) -> None:
    """Register what to tell the user if this run is stopped: ``where()`` says where it
    stood (called at the stop) and ``resume`` is the command that continues it."""
    _state["reporter"] = (where, resume)


def stop_message(prefix: str, signum: int | None) -> str:
    """The (one to two line) message the ``interpeq`` boundary prints when stopped."""
    head = f"{prefix}: stopped by {signal_name(signum)}"
    reporter = _state.get("reporter")
    if not reporter:
        return head
    where, resume = reporter  # type: ignore[misc]
    try:
        state = where()
    except Exception as err:  # noqa: BLE001 - the report must not hide the stop
        state = f"state unknown ({type(err).__name__}: {err})"
    return (
        f"{head}: {state}\n  nothing finished is lost and the resume is exact "
        f"(an interrupted member continues from its last checkpoint); resume with: {resume}"
    )


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
