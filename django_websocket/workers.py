"""Threads for sync views under ASGI, lent per event rather than held per connection.

A sync ``WebSocketView`` blocks a thread only while one of its hooks runs. Under
ASGI its session is a generator (``WebSocketView._steps``) that yields when the
connection has nothing to do; :func:`run_parked` then parks it on its transport
and hands the thread back. The next event (a message, a group post, the close)
resumes it on a worker thread from :data:`workers`.

The pool is elastic: a job never waits for a busy worker, a new thread starts
instead, so one blocked hook never stalls another connection. Idle workers are
kept for the next jobs (at most :data:`MAX_IDLE`, each for :data:`IDLE_TIMEOUT`
seconds). An idle connection then costs no thread at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator

from asgiref.sync import SyncToAsync

__all__ = ["IDLE_TIMEOUT", "LINGER", "MAX_IDLE", "Workers", "run_parked", "workers"]

logger = logging.getLogger("django_websocket")

#: Idle worker threads kept per process; more end as soon as they are idle.
MAX_IDLE = 32
#: Seconds an idle worker waits for a job before it ends.
IDLE_TIMEOUT = 30.0
#: Seconds a session's worker waits for the connection's next event before the
#: session yields to be parked: a busy connection keeps its thread, with no
#: hand-off per message.
LINGER = 0.02

Job = Callable[[], None]


class Workers:
    """An elastic pool: each job runs at once, on an idle worker or a new thread."""

    def __init__(
        self,
        max_idle: int = MAX_IDLE,
        idle_timeout: float = IDLE_TIMEOUT,
        on_exit: Job | None = None,
    ) -> None:
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        #: Called on a worker's thread when it ends (closes its DB connections).
        self.on_exit = on_exit
        self._lock = threading.Lock()
        #: The inboxes of idle workers, the most recently idle last (its stack is warm).
        self._idle: list[queue.SimpleQueue[Job]] = []

    def submit(self, job: Job) -> None:
        """Run ``job`` on a worker thread; never waits for one to be free."""
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is not None:
            inbox.put(job)
            return
        thread = threading.Thread(
            target=self._work, args=(job,), name="django-websocket-worker", daemon=True
        )
        thread.start()

    @property
    def idle(self) -> int:
        """How many workers wait for a job."""
        return len(self._idle)

    def _work(self, job: Job | None) -> None:
        try:
            self._serve(job)
        finally:
            if self.on_exit is not None:
                try:
                    self.on_exit()
                except Exception:
                    logger.exception("Error ending a django_websocket worker thread")

    def _serve(self, job: Job | None) -> None:
        inbox: queue.SimpleQueue[Job] = queue.SimpleQueue()
        while job is not None:
            try:
                job()
            except BaseException:  # jobs handle their errors; a worker must not die of one
                logger.exception("Error in a django_websocket worker thread")
            job = None  # not kept alive while idle
            with self._lock:
                if len(self._idle) >= self.max_idle:
                    return
                self._idle.append(inbox)
            try:
                job = inbox.get(timeout=self.idle_timeout)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:
                        self._idle.remove(inbox)
                        return
                job = inbox.get()  # taken just now: its job is on the way


def _close_db_connections() -> None:
    """The DB connections a hook left open on this thread (CONN_MAX_AGE) end with it."""
    from django.db import connections

    connections.close_all()


#: This process's workers.
workers = Workers(on_exit=_close_db_connections)


def _use_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Let ``async_to_sync`` in a hook run on the server's loop, as from a view's thread.

    asgiref notes the loop in the threads it starts itself (``sync_to_async``).
    """
    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop", None) is not loop:
        local.main_event_loop = loop
        local.main_event_loop_pid = os.getpid()


async def run_parked(
    steps: Iterator[None],
    park: Callable[[Job], bool],
    pool: Workers = workers,
) -> None:
    """Run a sync session on worker threads until it ends; return when it has.

    ``steps`` is the session: each ``next()`` runs it until it has nothing to do
    (it yields) or ends. Then ``park(resume)`` arranges for ``resume`` to be
    called at the connection's next event, or returns ``False`` if one came
    meanwhile. Every step runs in one ``contextvars`` context, this task's, so
    that context variables set in one hook are seen by the next, as on a thread
    of its own.

    A cancel (the server shutting down) does not stop the session: the caller
    closes the connection, whose close event resumes and ends it.
    """
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()
    context = contextvars.copy_context()

    def done() -> None:
        if not ended.done():
            ended.set_result(None)

    def step() -> None:
        over = True  # the session ended (or broke): tell the loop
        try:
            _use_loop(loop)
            while True:
                try:
                    context.run(next, steps)
                except StopIteration:
                    break
                if park(resume):
                    over = False
                    return  # until the next event; another worker may resume it already
        except Exception:  # the view's own errors were handled inside: ours
            logger.exception("Error in WebSocket session")
        finally:
            if over:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(done)

    def resume() -> None:
        pool.submit(step)

    pool.submit(step)
    await ended
