"""The tracker's job queue: order, back-pressure, failures, cancellation, inline mode."""

import threading
import time

import pytest

from interpeq.callbacks.background import Jobs


def test_results_come_back_in_submission_order():
    jobs = Jobs(max_pending=8)
    for k in range(5):
        jobs.submit(f"job {k}", lambda k=k: (time.sleep(0.02 * (5 - k)), k)[1])
    assert jobs.ready(wait=True) == [0, 1, 2, 3, 4]
    assert jobs.pending == 0 and jobs.seconds >= 0.2
    jobs.close()


def test_at_most_max_pending_jobs_wait():
    gate = threading.Event()
    jobs = Jobs(max_pending=2)
    jobs.submit("a", gate.wait, 5)
    jobs.submit("b", lambda: "b")
    threading.Timer(0.2, gate.set).start()
    t0 = time.perf_counter()
    jobs.submit("c", lambda: "c")  # waits for "a" to finish
    assert time.perf_counter() - t0 >= 0.15
    assert jobs.ready(wait=True) == [True, "b", "c"]
    jobs.close()


def test_a_failure_names_its_job_and_earlier_results_are_kept():
    for background in (True, False):
        jobs = Jobs(background=background)
        jobs.submit("first", lambda: 1)
        jobs.submit("tracking of m at step 5", lambda: 1 / 0)
        jobs.submit("third", lambda: 3)
        assert jobs.ready(wait=True) == [1]  # the result before the failure
        with pytest.raises(RuntimeError, match="tracking of m at step 5 failed: ZeroDivision"):
            jobs.ready(wait=True)
        assert jobs.pending == 1 and jobs.ready(wait=True) == [3]
        jobs.close()


def test_cancel_drops_only_jobs_not_started():
    gate, started = threading.Event(), threading.Event()

    def running() -> bool:
        started.set()
        return gate.wait(5)

    jobs = Jobs(max_pending=8)
    jobs.submit("running", running)
    for k in range(3):
        jobs.submit(f"queued {k}", lambda: "never")
    assert started.wait(5)  # the first job is running (however loaded the machine)
    assert jobs.cancel() == 3
    gate.set()
    assert jobs.ready(wait=True) == [True]
    jobs.close()


def test_inline_mode_runs_in_the_calling_thread():
    jobs = Jobs(background=False)
    jobs.submit("here", threading.current_thread)
    assert jobs.ready() == [threading.current_thread()]
    with pytest.raises(ValueError, match="max_pending must be a positive int"):
        Jobs(max_pending=0)
