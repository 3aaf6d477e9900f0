"""Let asyncio event loops run in several greenlets of one thread (gevent, eventlet).

Django runs an ``async def`` view under WSGI with ``async_to_sync``, which starts
an event loop. asyncio records the running loop per OS *thread*, but gevent and
eventlet serve every connection from greenlets of one thread, so while one async
WebSocket session's loop waits for its client, the next request's
``async_to_sync`` believes a loop runs "in its thread" and refuses to start.

:func:`install` swaps the running-loop record on every greenlet switch, so each
greenlet sees only its own loop. It is installed at start-up only when gevent or
eventlet has monkey-patched the process.
"""

from __future__ import annotations

import asyncio.events
import sys
from typing import Any

__all__ = ["install", "monkey_patched"]

_installed = False


def monkey_patched() -> bool:
    """Tell whether gevent or eventlet has monkey-patched ``socket`` in this process."""
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None and gevent_monkey.is_module_patched("socket"):
        return True
    eventlet_patcher = sys.modules.get("eventlet.patcher")
    return bool(eventlet_patcher is not None and eventlet_patcher.is_monkey_patched("socket"))


def install() -> None:
    """Keep asyncio's running loop per greenlet (idempotent, per process)."""
    global _installed
    if _installed:
        return
    import greenlet

    get_loop = asyncio.events._get_running_loop
    set_loop = asyncio.events._set_running_loop
    loops: dict[Any, Any] = {}
    previous = greenlet.settrace(None)

    def trace(event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            origin, target = args
            loop = get_loop()
            if loop is not None:
                loops[origin] = loop
            else:
                loops.pop(origin, None)
            set_loop(loops.pop(target, None))
        if previous is not None:
            previous(event, args)

    greenlet.settrace(trace)
    _installed = True
