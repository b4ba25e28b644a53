"""Jobs that run beside training: one worker thread, results handed back in order.

The tracker's work at a capture (co-implementations of a snapshot of each member, the
ridge similarities, the congruity test) reads only that snapshot and the capture's
records, never the live model, so it need not stop training: a worker thread runs
it while the training loop goes on, and the loop takes the finished results (and logs
them, always from the training thread) at its next batch. Torch releases the GIL
inside its kernels, so on a CPU the worker uses a core that a small model's training
leaves idle, and on a GPU the host-side work overlaps the device's.

``Jobs(background=False)`` runs each job at once in the calling thread (the same
numbers; every job seeds its own generators, none touches the global RNG). At most
``max_pending`` jobs wait: a further ``submit`` first waits for the oldest, so memory
stays bounded when training outruns the analysis. A job that raised re-raises, naming
the job, when its result is taken.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class Jobs:
    """A FIFO of jobs ``fn(*args)`` run by one worker thread (or inline); see the module doc."""

    def __init__(self, *, background: bool = True, max_pending: int = 16) -> None:
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be a positive int, got {max_pending!r}")
        self.background = background
        self.max_pending = max_pending
        self.seconds = 0.0  # time spent inside jobs (worker or inline)
        self._pool: ThreadPoolExecutor | None = None
        self._queue: deque[tuple[str, Future]] = deque()

    def submit(self, name: str, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``; ``name`` says which job failed, if one does."""
        if not self.background:
            fut: Future = Future()
            try:
                fut.set_result(self._timed(fn, *args))
            except Exception as exc:  # surfaced by `ready`, like a worker's failure
                fut.set_exception(exc)
            self._queue.append((name, fut))
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="interpeq-tracker")
        running = [fut for _, fut in self._queue if not fut.done()]
        if len(running) >= self.max_pending:
            running[0].exception()  # wait for the oldest (one worker: FIFO)
        self._queue.append((name, self._pool.submit(self._timed, fn, *args)))

    def _timed(self, fn: Callable[..., Any], *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds += time.perf_counter() - t0

    def ready(self, *, wait: bool = False) -> list[Any]:
        """Results of the finished jobs at the front of the queue, in submission order
        (``wait=True``: of every job, waiting for them), up to the first failed job. A
        failed job at the front raises (and leaves the queue); one behind results is
        raised by the next call, so no result before it is lost."""
        out = []
        while self._queue and (wait or self._queue[0][1].done()):
            name, fut = self._queue[0]
            exc = fut.exception()
            if exc is not None:
                if out:
                    break
                self._queue.popleft()
                raise RuntimeError(f"{name} failed: {type(exc).__name__}: {exc}") from exc
            self._queue.popleft()
            out.append(fut.result())
        return out

    @property
    def pending(self) -> int:
        return len(self._queue)

    def cancel(self) -> int:
        """Drop the jobs that have not started (returns how many); finished ones stay."""
        dropped = 0
        for name, fut in list(self._queue):
            if fut.cancel():
                self._queue.remove((name, fut))
                dropped += 1
        return dropped

    def close(self) -> None:
        """Stop the worker after its current job (nothing queued runs after this)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
