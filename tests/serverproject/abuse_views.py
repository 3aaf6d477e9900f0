"""Views for the abuse tests (``tests/abuse/``): slow and dead peers, disconnects, shutdown.

Every view records what only the server sees with :func:`.views.record` (``?key=``);
``?n=`` numbers a connection so that a test with many of them can tell which ones
ran ``on_close`` and how often. ``at`` is the server's wall clock (``time.time()``),
comparable with the test's on the same machine.
"""

import gc
import os
import threading
import time

from django.contrib.auth.models import User
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import JsonResponse

from django_websocket import WebSocketView
from tests.serverproject.views import record

#: A flood message: large, so the peer's and the server's socket buffers fill after few.
FLOOD_SIZE = 64 * 1024


def _number(request):
    return request.GET.get("n")


class Tracked(WebSocketView):
    """Query the database in ``on_open`` and ``on_message``; record open and close.

    Each message is answered with ``"<message> <user count>"``.
    """

    def on_open(self):
        self.users = User.objects.count()
        record(self.request, "open", n=_number(self.request), users=self.users)

    def on_message(self, message):
        self.send(f"{message} {User.objects.count()}")

    def on_close(self, code, reason):
        record(self.request, "close", n=_number(self.request), code=code, at=time.time())


class AsyncTracked(WebSocketView):
    """Echo with ``async def`` hooks (on the event loop under ASGI); record open and close."""

    async def on_open(self):
        record(self.request, "open", n=_number(self.request))

    async def on_message(self, message):
        await self.send(message)

    async def on_close(self, code, reason):
        record(self.request, "close", n=_number(self.request), code=code, at=time.time())


def _limit(request):
    """Return the most messages a flood may send (``?limit=``), or ``None``."""
    return int(request.GET.get("limit", 0)) or None


class Flood(WebSocketView):
    """On ``"flood"``, send 64 KiB binary messages until sending fails (or ``?limit=``).

    No keepalive of its own: what ends a peer that stops reading must be the send
    (close) timeout, not a missed pong.
    """

    ping_interval = None
    sent = 0

    def on_message(self, message):
        payload = os.urandom(FLOOD_SIZE)
        limit = _limit(self.request)
        record(self.request, "flooding", at=time.time())
        while limit is None or self.sent < limit:
            self.send(payload)
            self.sent += 1

    def on_close(self, code, reason):
        record(self.request, "close", code=code, reason=reason, sent=self.sent, at=time.time())


class AsyncFlood(WebSocketView):
    """:class:`Flood` with ``async def`` hooks."""

    ping_interval = None
    sent = 0

    async def on_message(self, message):
        payload = os.urandom(FLOOD_SIZE)
        limit = _limit(self.request)
        record(self.request, "flooding", at=time.time())
        while limit is None or self.sent < limit:
            await self.send(payload)
            self.sent += 1

    async def on_close(self, code, reason):
        record(self.request, "close", code=code, reason=reason, sent=self.sent, at=time.time())


def probe(request):
    """Report this process's threads and open database connections (plain HTTP, no DB).

    ``db_connections`` counts Django connection wrappers, in every thread, that hold
    an open DB-API connection.
    """
    gc.collect()
    wrappers = [obj for obj in gc.get_objects() if isinstance(obj, BaseDatabaseWrapper)]
    return JsonResponse(
        {
            "pid": os.getpid(),
            "threads": threading.active_count(),
            "db_connections": sum(wrapper.connection is not None for wrapper in wrappers),
        }
    )
