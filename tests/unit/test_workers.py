"""Unit tests of the worker pool and parked sessions (django_websocket.workers).

The pool runs each job at once (an idle worker or a new thread), so a blocked job
never delays another; idle workers are reused, bounded and end after a while.
``run_parked`` drives a session generator: one step per event, parked between.
No settings, no server.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from django_websocket.transports.base import Channel
from django_websocket.workers import Workers, run_parked

WAIT = 10.0  # seconds before a test gives up on an event that should come


def until(condition, what: str) -> None:
    """Poll ``condition`` (a state with no event to wait on) for at most WAIT seconds."""
    deadline = threading.Event()
    timer = threading.Timer(WAIT, deadline.set)
    timer.start()
    try:
        while not condition():
            assert not deadline.wait(0.001), f"not within {WAIT} s: {what}"
    finally:
        timer.cancel()


def test_a_blocked_job_does_not_delay_the_next_one():
    pool = Workers()
    release, second_ran = threading.Event(), threading.Event()
    pool.submit(lambda: release.wait(WAIT))
    pool.submit(second_ran.set)
    try:
        assert second_ran.wait(WAIT), "the second job waited for the blocked one"
    finally:
        release.set()


def test_an_idle_worker_is_reused_and_survives_a_failing_job():
    pool = Workers()
    threads: list[threading.Thread] = []
    for _ in range(3):
        done = threading.Event()

        def job(done: threading.Event = done) -> None:
            threads.append(threading.current_thread())
            done.set()
            raise RuntimeError("a job's own error")  # logged; the worker goes on

        pool.submit(job)
        assert done.wait(WAIT)
        until(lambda: pool.idle == 1, "the worker went back to the idle list")
    assert len(set(threads)) == 1


def test_idle_workers_are_bounded_and_end_after_the_idle_timeout():
    ended: list[threading.Thread] = []
    pool = Workers(
        max_idle=2, idle_timeout=0.2, on_exit=lambda: ended.append(threading.current_thread())
    )
    release = threading.Event()
    started = threading.Barrier(5)
    threads: list[threading.Thread] = []

    def job() -> None:
        threads.append(threading.current_thread())
        started.wait(WAIT)
        release.wait(WAIT)

    for _ in range(4):
        pool.submit(job)
    started.wait(WAIT)  # four jobs at once: four threads
    release.set()
    for thread in threads:
        thread.join(WAIT)  # two end at once (more than max_idle), two after the timeout
        assert not thread.is_alive()
    assert len(set(threads)) == 4
    assert pool.idle == 0
    assert set(ended) == set(threads), "on_exit runs on each worker's own thread as it ends"


def test_channel_park_resumes_at_the_next_put_only_once():
    channel = Channel()
    resumed: list[int] = []
    assert channel.park(lambda: resumed.append(1))
    channel.put("a")
    channel.put("b")
    assert resumed == [1]
    assert not channel.park(lambda: resumed.append(2)), "items are waiting"
    assert channel.get(0) == "a"


class ParkingChannel(Channel):
    """A Channel that says when a session parked on it."""

    def __init__(self) -> None:
        super().__init__()
        self.parked = threading.Event()

    def park(self, resume) -> bool:
        parked = super().park(resume)
        if parked:
            self.parked.set()
        return parked


class Session:
    """A session generator over a Channel, as ``WebSocketView._session`` is."""

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")

    def __init__(self) -> None:
        self.channel = ParkingChannel()
        self.seen: list[tuple[str, str]] = []
        self.threads: set[threading.Thread] = set()

    def steps(self):
        self.var.set("set in the first step")
        while True:
            self.threads.add(threading.current_thread())
            item = self.channel.get(0)
            if item is None:
                yield
                continue
            self.seen.append((item, self.var.get()))
            if item == "end":
                return


@pytest.mark.asyncio
async def test_run_parked_steps_in_one_context_until_the_session_ends():
    session = Session()
    task = asyncio.ensure_future(run_parked(session.steps(), session.channel.park, Workers()))
    for item in ("one", "two", "end"):
        parked = session.channel.parked
        assert await asyncio.to_thread(parked.wait, WAIT), "the session did not park"
        parked.clear()
        session.channel.put(item)  # resumes it on a worker
    await asyncio.wait_for(task, WAIT)
    assert session.seen == [
        ("one", "set in the first step"),
        ("two", "set in the first step"),
        ("end", "set in the first step"),
    ]
    assert threading.current_thread() not in session.threads
