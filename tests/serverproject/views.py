"""Views of the multi-server test project: one code base, every server.

Facts that only the server can see (``on_open`` ran, the code ``on_close`` got, when a
blocking view started and ended) are appended by :func:`record` as JSON lines to
``<DJWS_EVENTS_DIR>/<key>.jsonl``, where ``key`` is the request's ``?key=`` parameter;
the tests poll that file with a deadline (``tests/integration/servers.py``).
"""

import contextvars
import json
import os
import re
import threading
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.utils import translation

from django_websocket import WebSocketView, require_websocket

_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def record(request, event, **facts):
    """Append ``{"event": event, **facts}`` to the events file named by ``?key=``.

    One ``os.write`` of one line on an ``O_APPEND`` descriptor: concurrent views
    (threads, greenlets) never interleave their lines.
    """
    key = request.GET.get("key", "")
    if not _KEY.match(key):
        return
    directory = Path(settings.DJWS_EVENTS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    line = json.dumps(
        {"event": event, "pid": os.getpid(), "thread": threading.get_ident(), **facts},
        default=repr,
    )
    descriptor = os.open(directory / f"{key}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(descriptor, (line + "\n").encode())
    finally:
        os.close(descriptor)


# --- plain HTTP ---------------------------------------------------------------------


def plain(request):
    """A view that knows nothing about WebSockets: the middleware refuses them (400)."""
    return HttpResponse("plain ok", content_type="text/plain")


def login_done(request):
    """Where a successful login redirects to."""
    return HttpResponse(f"logged in as {request.user.username}", content_type="text/plain")


# --- WebSocketView: sync -------------------------------------------------------------

#: Set in Remembers.on_open, read in its on_message: carried over to whichever
#: thread runs the next hook of a parked session.
_remembered = contextvars.ContextVar("remembered", default="unset")


class Remembers(WebSocketView):
    """Set a context variable and the language in on_open; report them per message.

    Each reply is JSON: the message, both values and the ident of the hook's thread.
    """

    def on_open(self):
        _remembered.set(self.request.GET.get("key", "set"))
        translation.activate("fr")  # an asgiref Local, tagged with this thread

    def on_message(self, message):
        self.send_json(
            {
                "message": message,
                "remembered": _remembered.get(),
                "language": translation.get_language(),
                "thread": threading.get_ident(),
            }
        )


class Echo(WebSocketView):
    """Echo text as text and bytes as bytes; record on_open and on_close.

    Its own ``max_message_size`` lets a 70 KB binary message through while the
    project setting (64 KiB) refuses it everywhere else.
    """

    max_message_size = 200_000

    def on_open(self):
        record(self.request, "open", path=self.request.path)

    def on_message(self, message):
        self.send(message)

    def on_close(self, code, reason):
        record(self.request, "close", code=code, reason=reason)


class Lifecycle(WebSocketView):
    """Echo; ``"close 4000"`` makes the server close with 4000. Uses the default size limit.

    ``"burst N"``: send ``b0`` ... ``b<N-1>`` at once, then close with 4000.
    ``"body"``: send ``repr(request.body)``.
    """

    def on_open(self):
        record(self.request, "open")

    def on_message(self, message):
        if message == "close 4000":
            self.close(4000, "server")
        elif message.startswith("burst "):
            for index in range(int(message.split()[1])):
                self.send(f"b{index}")
            self.close(4000, "burst done")
        elif message == "body":
            self.send(repr(self.request.body))
        else:
            self.send(message)

    def on_close(self, code, reason):
        record(self.request, "close", code=code, reason=reason)


class JsonEcho(WebSocketView):
    """``encoding = "json"``: echo the decoded value with ``send_json``."""

    encoding = "json"

    def on_message(self, message):
        self.send_json(message)

    def on_close(self, code, reason):
        record(self.request, "close", code=code, reason=reason)


class Subprotocol(WebSocketView):
    """Send the negotiated subprotocol (``"None"`` without one) on open."""

    subprotocols = ["chat.v2", "chat.v1"]

    def on_open(self):
        self.send(str(self.websocket.subprotocol))


class Protected(LoginRequiredMixin, WebSocketView):
    """Refused before the handshake without a login; greets the user, then echoes."""

    def on_open(self):
        self.send(f"hello {self.request.user.username}")

    def on_message(self, message):
        self.send(message)


class Refusing(WebSocketView):
    """Refuse in ``dispatch``, before the handshake, as ``?refuse=`` says."""

    def dispatch(self, request, *args, **kwargs):
        how = request.GET.get("refuse")
        if how == "permission":
            raise PermissionDenied("not for you")
        if how == "404":
            raise Http404("no such socket")
        if how == "response":
            return HttpResponse("i am a teapot", status=418, content_type="text/plain")
        return super().dispatch(request, *args, **kwargs)

    def on_message(self, message):
        self.send(message)


class Boom(WebSocketView):
    """Every message raises: the default ``on_error`` logs and closes with 1011."""

    def on_message(self, message):
        raise RuntimeError(f"boom on {message!r}")

    def on_close(self, code, reason):
        record(self.request, "close", code=code, reason=reason)


class WithGet(WebSocketView):
    """A WebSocket view that also serves plain GET requests."""

    def get(self, request, *args, **kwargs):
        return HttpResponse("plain", content_type="text/plain")

    def on_message(self, message):
        self.send(message)


class Blocker(WebSocketView):
    """``"block"``: record the start, block 0.3 s in sync code, record the end, reply."""

    def on_message(self, message):
        if message != "block":
            self.send(message)
            return
        record(
            self.request, "start", at=time.monotonic(), thread_name=threading.current_thread().name
        )
        time.sleep(0.3)
        record(self.request, "end", at=time.monotonic())
        self.send("done")


# --- WebSocketView: async ------------------------------------------------------------


class AsyncEcho(WebSocketView):
    """The same echo with ``async def`` hooks: runs on the event loop under ASGI."""

    async def on_open(self):
        record(self.request, "open", path=self.request.path)

    async def on_message(self, message):
        await self.send(message)

    async def on_close(self, code, reason):
        record(self.request, "close", code=code, reason=reason)


@require_websocket
async def async_echo_function(request):
    """The 0.3 API's echo as an ``async def`` function view."""
    record(request, "open", path=request.path)
    async for message in request.websocket:
        await request.websocket.send(message)
    record(request, "close", code=request.websocket.close_code)
