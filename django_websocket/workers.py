"""Threads for sync views, lent per event rather than held per connection.

A sync ``WebSocketView`` blocks a thread only while one of its hooks runs. Under
ASGI and on our runserver its session is a generator (``WebSocketView._steps``)
that yields when the connection has nothing to do; :func:`run_parked` (ASGI) or
:func:`start_parked` (runserver) then parks it on its transport and hands the
thread back. The next event (a message, a group post, the close, a keepalive
deadline) resumes it on a worker thread from :data:`workers`.

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
import time
from collections.abc import Callable, Generator

from asgiref.sync import SyncToAsync

try:  # private, but what sync_to_async itself uses to move a context (see _advance)
    from asgiref.sync import _restore_context
except ImportError:  # pragma: no cover  (a future asgiref): Locals stay per thread
    _restore_context = None  # type: ignore[assignment]

__all__ = [
    "IDLE_TIMEOUT",
    "LINGER",
    "MAX_IDLE",
    "Workers",
    "run_parked",
    "start_parked",
    "workers",
]

logger = logging.getLogger("django_websocket")

#: Idle worker threads kept per process; more end as soon as they are idle.
MAX_IDLE = 32
#: Seconds an idle worker waits for a job before it ends.
IDLE_TIMEOUT = 10.0
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

        #: Jobs that need a new thread. Threads are started by a thread of the
        #: pool's own: starting one waits for it to run, which the caller (the
        #: event loop, delivering a broadcast to many members) must not.
        self._unstarted: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._starter: threading.Thread | None = None

    def submit(self, job: Job) -> None:
        """Run ``job`` on a worker thread; never waits for one to be free or to start."""
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
            if inbox is None and self._starter is None:
                self._starter = threading.Thread(
                    target=self._start_workers, name="django-websocket-starter", daemon=True
                )
                self._starter.start()
        if inbox is not None:
            inbox.put(job)
        else:
            self._unstarted.put(job)

    def _start_workers(self) -> None:
        while True:
            job = self._unstarted.get()
            while True:
                with self._lock:  # a worker may have become idle meanwhile
                    inbox = self._idle.pop() if self._idle else None
                if inbox is not None:
                    inbox.put(job)
                    break
                try:
                    threading.Thread(
                        target=self._work, args=(job,), name="django-websocket-worker", daemon=True
                    ).start()
                    break
                except RuntimeError:  # "can't start new thread": the job must still run
                    logger.exception("Cannot start a django_websocket worker; retrying")
                    time.sleep(0.1)
            job = None  # type: ignore[assignment]  # not kept alive while waiting

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


def _advance(steps: Generator[None, None, None], context: contextvars.Context, moved: bool) -> None:
    """Run one step of ``steps`` (inside ``context``).

    asgiref tags a ``Local``'s storage (Django's script prefix, urlconf, active
    language and time zone) with the thread that set it, and hides it from other
    threads; when a step runs on another thread than the last, the storage is
    handed over, as ``sync_to_async`` does when it moves work between threads.
    """
    if moved and _restore_context is not None:
        _restore_context(context)
    next(steps)


def _session_steps(
    steps: Generator[None, None, None],
    park: Callable[[Job], bool],
    pool: Workers,
    ended: Callable[[], None] | None,
    prepare: Callable[[], None] | None = None,
) -> Job:
    """Return the job that runs ``steps`` until it parks or ends (see :func:`run_parked`).

    ``ended()`` is called (on the worker) when the session ended; ``prepare()``
    before each job's first step.
    """
    context = contextvars.copy_context()
    last_thread = [threading.get_ident()]  # the thread the context's Locals belong to

    def step() -> None:
        over = True  # the session ended (or broke): tell the caller
        try:
            if prepare is not None:
                prepare()
            while True:
                thread = threading.get_ident()
                moved, last_thread[0] = thread != last_thread[0], thread
                try:
                    context.run(_advance, steps, context, moved)
                except StopIteration:
                    break
                if park(resume):
                    over = False
                    return  # until the next event; another worker may resume it already
        except Exception:  # the view's own errors were handled inside: ours
            logger.exception("Error in WebSocket session")
            # Not left suspended: its finally (on_close, release) would run at
            # garbage collection, on whatever thread, maybe the event loop's.
            with contextlib.suppress(Exception):
                context.run(steps.close)
        finally:
            if over and ended is not None:
                ended()

    def resume() -> None:
        pool.submit(step)

    return step


async def run_parked(
    steps: Generator[None, None, None],
    park: Callable[[Job], bool],
    pool: Workers | None = None,
) -> None:
    """Run a sync session on worker threads until it ends; return when it has.

    ``steps`` is the session: each ``next()`` runs it until it has nothing to do
    (it yields) or ends. Then ``park(resume)`` arranges for ``resume`` to be
    called at the connection's next event, or returns ``False`` if one came
    meanwhile. Every step runs in one ``contextvars`` context, this task's, so
    that context variables and asgiref ``Local`` values (the active language...)
    set in one hook are seen by the next, as on a thread of its own.

    A cancel (the server shutting down) does not stop the session: the caller
    closes the connection, whose close event resumes and ends it.
    """
    pool = pool or workers
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def done() -> None:
        if not ended.done():
            ended.set_result(None)

    def tell_loop() -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(done)

    pool.submit(_session_steps(steps, park, pool, tell_loop, lambda: _use_loop(loop)))
    await ended


def start_parked(
    steps: Generator[None, None, None],
    park: Callable[[Job], bool],
    pool: Workers | None = None,
) -> None:
    """Start a sync session on worker threads and return at once (our runserver).

    As :func:`run_parked`, without an event loop: the calling thread (the
    request's, done with the response) is free to end. The context is this
    thread's, copied now.
    """
    pool = pool or workers
    pool.submit(_session_steps(steps, park, pool, None))
