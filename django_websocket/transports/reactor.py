"""One thread that watches parked sockets and resumes their sessions (our runserver).

A sync ``WebSocketView`` session on our runserver gives its thread back when the
connection has nothing to do, as under ASGI (:mod:`django_websocket.workers`):
its transport parks here, with the socket's fd, the transport's wake fd and the
next deadline (a keepalive ping). The reactor's thread waits for all parked
connections at once and calls each one's ``resume`` at the first of those
events; ``resume`` hands the session to a worker thread. An idle connection then
costs a selector entry instead of a thread (a thread's stack and state are most
of what an idle connection costs on a threaded server).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence

__all__ = ["Reactor", "reactor"]

logger = logging.getLogger("django_websocket")


class _Parked:
    """One parked connection: its fds, its deadline and what to call at the first event."""

    __slots__ = ("deadline", "fds", "resume")

    def __init__(self, fds: Sequence[int], resume: Callable[[], None], deadline: float | None):
        self.fds = fds
        self.resume: Callable[[], None] | None = resume  # None once called
        self.deadline = deadline


class Reactor:
    """Call each parked connection's ``resume`` once, at its first event or deadline.

    :meth:`park` may be called from any thread; the selector is only touched by
    the reactor's own thread (started at the first park), which takes new
    entries from a list when woken through its socketpair.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._new: list[_Parked] = []
        self._woken = False  # a byte is on its way to the reactor: one is enough
        #: The wake socket; it and the thread come with the first park.
        self._wake_write: socket.socket | None = None

    def park(self, fds: Sequence[int], resume: Callable[[], None], timeout: float | None) -> None:
        """Call ``resume()`` (on the reactor's thread) once one of ``fds`` is readable.

        Or once ``timeout`` seconds have passed. Level-triggered: an fd that is
        readable already resumes at once, so no event between the caller's last
        look and this call is lost. ``resume`` must not block: it hands the work
        to another thread. The fds must stay open until ``resume`` was called.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._new.append(_Parked(fds, resume, deadline))
            if self._wake_write is None:
                wake_read, self._wake_write = socket.socketpair()  # selectable everywhere
                wake_read.setblocking(False)
                self._wake_write.setblocking(False)
                thread = threading.Thread(
                    target=self._run, args=(wake_read,), name="django-websocket-reactor"
                )
                thread.daemon = True  # as runserver's request threads
                thread.start()
            if self._woken:
                return
            self._woken = True
        with contextlib.suppress(BlockingIOError):  # full: the reactor is awake anyway
            self._wake_write.send(b"\0")

    def _run(self, wake_read: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(wake_read, selectors.EVENT_READ)
        order = itertools.count()  # ties in the deadline heap never compare entries
        deadlines: list[tuple[float, int, _Parked]] = []

        def take(entry: _Parked) -> None:
            """Unregister ``entry`` and note its ``resume`` for this round."""
            if entry.resume is None:
                return
            due.append(entry.resume)
            entry.resume = None
            for fd in entry.fds:
                with contextlib.suppress(KeyError, ValueError):
                    if selector.get_key(fd).data is entry:  # not if registering it failed
                        selector.unregister(fd)

        while True:
            due: list[Callable[[], None]] = []
            with self._lock:
                new, self._new = self._new, []
                self._woken = False
            for entry in new:
                try:
                    for fd in entry.fds:
                        selector.register(fd, selectors.EVENT_READ, entry)
                except (KeyError, ValueError, OSError):  # a closed fd: resume, it will see why
                    logger.exception("Cannot watch a parked WebSocket connection")
                    take(entry)
                    continue
                if entry.deadline is not None:
                    heapq.heappush(deadlines, (entry.deadline, next(order), entry))
            if len(deadlines) > 64 and len(deadlines) > 2 * len(selector.get_map()):
                # Mostly entries that an fd resumed before their deadline: drop them.
                deadlines = [item for item in deadlines if item[2].resume is not None]
                heapq.heapify(deadlines)
            if not due:
                while deadlines and deadlines[0][2].resume is None:
                    heapq.heappop(deadlines)  # resumed by an fd meanwhile
                timeout = None
                if deadlines:
                    timeout = max(deadlines[0][0] - time.monotonic(), 0.0)
                for key, _ in selector.select(timeout):
                    if key.data is None:  # the wake socket: new entries
                        with contextlib.suppress(BlockingIOError):
                            wake_read.recv(4096)
                    else:
                        take(key.data)
                now = time.monotonic()
                while deadlines and deadlines[0][0] <= now:
                    take(heapq.heappop(deadlines)[2])
            for resume in due:
                try:
                    resume()
                except Exception:  # one session's failure must not stop the others
                    logger.exception("Error resuming a parked WebSocket session")


#: This process's reactor.
reactor = Reactor()
