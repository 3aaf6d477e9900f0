"""The thread of a connection's ``ThreadSensitiveContext`` under ASGI.

The ASGI entry point gives each WebSocket connection a ThreadSensitiveContext, as
Django does for each HTTP request: ``request_started``, sync middleware and a sync
view run on that context's thread. asgiref starts a thread per context, and
starting one (``Thread.start`` waits for it) was a quarter of a handshake's time:
threads whose connection no longer needs them are parked here and lent to the
next connections instead.
"""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import SyncToAsync

__all__ = [
    "connection_thread_retired",
    "db_used",
    "has_thread",
    "lend_thread",
    "mark_db_closed",
    "mark_db_used",
    "take_thread",
]

#: Idle connection threads kept per process; more are ended.
MAX_PARKED = 32

_parked: list[ThreadPoolExecutor] = []
_lock = threading.Lock()


def _context_executors() -> tuple[Any, Any] | None:
    """The current ThreadSensitiveContext and asgiref's map of their executors."""
    context = getattr(SyncToAsync, "thread_sensitive_context", None)
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    if context is None or executors is None:  # another asgiref: leave it be
        return None
    current = context.get(None)
    return None if current is None else (current, executors)


#: Connection threads on which Django may have opened a DB connection since they last
#: closed them all (see :func:`mark_db_used`): the others need no closing.
_db_used: weakref.WeakSet[ThreadPoolExecutor] = weakref.WeakSet()


def _current_executor() -> ThreadPoolExecutor | None:
    """The current ThreadSensitiveContext's thread (its executor), if it has one."""
    found = _context_executors()
    return None if found is None else found[1].get(found[0])


def mark_db_used() -> None:
    """Note that the current thread, if it is a connection's, opened a DB connection."""
    executor = _current_executor()
    if executor is not None:
        _db_used.add(executor)


def db_used() -> bool:
    """Whether the current context's thread may have an open DB connection."""
    return _current_executor() in _db_used


def mark_db_closed() -> None:
    """Note that the current context's thread closed all its DB connections."""
    executor = _current_executor()
    if executor is not None:
        _db_used.discard(executor)


def has_thread() -> bool:
    """Whether the current ThreadSensitiveContext has a thread."""
    found = _context_executors()
    return found is not None and found[0] in found[1]


def connection_thread_retired() -> bool:
    """Whether this connection's ThreadSensitiveContext has no thread (any more)."""
    found = _context_executors()
    return found is not None and found[0] not in found[1]


def lend_thread() -> None:
    """Give the current context a parked thread, if there is one (before its first use)."""
    found = _context_executors()
    if found is None or found[0] in found[1]:
        return
    with _lock:
        executor = _parked.pop() if _parked else None
    if executor is not None:
        found[1][found[0]] = executor


def take_thread() -> None:
    """Take the current context's thread away from it: park it, or end it."""
    found = _context_executors()
    if found is None:
        return
    executor = found[1].pop(found[0], None)
    if executor is None:
        return
    with _lock:
        if len(_parked) < MAX_PARKED:
            _parked.append(executor)
            return
    executor.shutdown(wait=False)
