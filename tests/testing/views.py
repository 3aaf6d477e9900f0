"""Views the testing-helper tests connect to (``tests/testing/urls.py``).

The same views serve the in-process :class:`~django_websocket.testing.WebSocketClient`
and a real ``runserver`` (``tests/testing/server_settings.py``), so the parity tests
compare like with like. Facts only the server sees (the code ``on_close`` got) are
recorded by :func:`record`: in this process in :data:`EVENTS`, and, for a real
server, as ``<TESTING_EVENTS_DIR>/<key>.<event>.json`` files the tests poll.
"""

import json
import re
import threading
from pathlib import Path

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse

from django_websocket import WebSocketView, accept_websocket, require_websocket
from django_websocket.connection import registry

_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

#: In-process records: ``{key: [{"event": ..., **facts}, ...]}``.
EVENTS: dict[str, list[dict]] = {}

#: Events that release a stalled view: ``{key: threading.Event}`` (see :class:`Stall`).
STALLS: dict[str, threading.Event] = {}
STALL_LIMIT = 10


def stall(request):
    """Block until the test releases ``?key=`` (bounded by :data:`STALL_LIMIT`)."""
    event = STALLS.get(request.GET.get("key", ""))
    if event is not None:
        event.wait(STALL_LIMIT)


def record(request, event, **facts):
    """Record ``facts`` about ``event`` under the request's ``?key=``."""
    key = request.GET.get("key", "")
    if not _KEY.match(key):
        return
    EVENTS.setdefault(key, []).append({"event": event, **facts})
    directory = getattr(settings, "TESTING_EVENTS_DIR", None)
    if directory:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        temporary = directory / f".{key}.{event}.{threading.get_ident()}.tmp"
        temporary.write_text(json.dumps(facts))
        temporary.replace(directory / f"{key}.{event}.json")


# --- plain HTTP ------------------------------------------------------------------------


def log_in(request):
    """Create (if needed) and log in ``?username=``: a login any client can do with GET."""
    user, _ = User.objects.get_or_create(username=request.GET["username"])
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return HttpResponse(f"logged in as {user.username}", content_type="text/plain")


def session_report(request):
    """Report the session value ``ws`` (written by :class:`SessionWriter`)."""
    return HttpResponse(str(request.session.get("ws")), content_type="text/plain")


def open_connections(request):
    """Report how many WebSockets this process counts (its ``MAX_CONNECTIONS`` count)."""
    return HttpResponse(str(len(registry)), content_type="text/plain")


def set_cookie(request):
    """Set the cookie ``flavour`` and a session value."""
    request.session["colour"] = request.GET.get("colour", "blue")
    response = HttpResponse("cookie set", content_type="text/plain")
    response.set_cookie("flavour", request.GET.get("flavour", "oatmeal"))
    return response


# --- WebSocketView ---------------------------------------------------------------------


class Echo(WebSocketView):
    """Echo text as text and bytes as bytes.

    ``"close <code>"`` makes the view close with that code and reason ``"server"``;
    ``"boom"`` raises (the default ``on_error`` closes with 1011). ``on_close`` is
    recorded.
    """

    def on_open(self):
        record(self.request, "open")

    def on_message(self, message):
        if message == "boom":
            raise RuntimeError("boom")
        if isinstance(message, str) and message.startswith("close "):
            self.close(int(message.split()[1]), "server")
            return
        self.send(message)

    def on_close(self, code, reason):
        record(self.request, "close", code=code, reason=reason)


class AsyncEcho(WebSocketView):
    """:class:`Echo` with ``async def`` hooks."""

    async def on_open(self):
        record(self.request, "open")

    async def on_message(self, message):
        if message == "boom":
            raise RuntimeError("boom")
        if isinstance(message, str) and message.startswith("close "):
            await self.close(int(message.split()[1]), "server")
            return
        await self.send(message)

    async def on_close(self, code, reason):
        record(self.request, "close", code=code, reason=reason)


class JsonEcho(WebSocketView):
    """``encoding = "json"``: echo the decoded value, wrapped, with ``send_json``."""

    encoding = "json"

    def on_message(self, message):
        self.send_json({"got": message})

    def on_close(self, code, reason):
        record(self.request, "close", code=code, reason=reason)


class Subprotocol(WebSocketView):
    """Speak ``chat.v2`` and ``chat.v1``; send the selected one (``"None"``) on open."""

    subprotocols = ["chat.v2", "chat.v1"]

    def on_open(self):
        self.send(str(self.websocket.subprotocol))


class Protected(LoginRequiredMixin, WebSocketView):
    """Refused (302 to the login page) without a login; greets the user."""

    def on_open(self):
        self.send(f"hello {self.request.user.username}")

    def on_message(self, message):
        self.send(message)


class ProtectedRaise(Protected):
    """Refused with 403 without a login."""

    raise_exception = True


class AsyncProtected(LoginRequiredMixin, WebSocketView):
    """:class:`Protected` with ``async def`` hooks (the mixin's ``dispatch`` is sync)."""

    async def on_open(self):
        await self.send(f"hello {self.request.user.username}")


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
        if how == "crash":
            raise RuntimeError("crash before the handshake")
        return super().dispatch(request, *args, **kwargs)

    def on_open(self):
        self.send("not refused")


class SessionWriter(WebSocketView):
    """Write ``ws`` into the session on open, then say ``"written"``."""

    def on_open(self):
        self.request.session["ws"] = "written"
        self.request.session.save()
        self.send("written")


class RequestInfo(WebSocketView):
    """Send, on open, what the request carried: headers, cookies, session, user."""

    def on_open(self):
        request = self.request
        self.send_json(
            {
                "x_custom": request.headers.get("X-Custom"),
                "x_default": request.headers.get("X-Default"),
                "flavour": request.COOKIES.get("flavour"),
                "colour": request.session.get("colour"),
                "user": request.user.username,
                "secure": request.is_secure(),
                "query": request.GET.get("q"),
            }
        )


class Users(WebSocketView):
    """``"list"``: send the usernames; ``"create <name>"``: create a user, send its name."""

    def on_message(self, message):
        if message == "list":
            self.send_json(sorted(User.objects.values_list("username", flat=True)))
        elif message.startswith("create "):
            user = User.objects.create(username=message.split()[1])
            self.send(user.username)


class Stall(WebSocketView):
    """Stall (until the test releases ``?key=``) where ``?where=`` says; else echo.

    ``dispatch``: before the handshake, then refuse with 409; ``dispatch-accept``:
    before the handshake, then accept; ``close``: in ``on_close``. No database access:
    the stalled thread may outlive the test's transaction.
    """

    def dispatch(self, request, *args, **kwargs):
        where = request.GET.get("where")
        if where == "dispatch":
            stall(request)
            return HttpResponse("too late", status=409, content_type="text/plain")
        if where == "dispatch-accept":
            stall(request)
            response = super().dispatch(request, *args, **kwargs)
            record(request, "dispatched", status=response.status_code)
            return response
        return super().dispatch(request, *args, **kwargs)

    def on_open(self):
        record(self.request, "open")

    def on_message(self, message):
        self.send(message)

    def on_close(self, code, reason):
        record(self.request, "close", code=code, reason=reason)
        if self.request.GET.get("where") == "close":
            stall(self.request)
        record(self.request, "closed")


class SendThenReturn(WebSocketView):
    """Send two messages on open, then close normally."""

    def on_open(self):
        self.send("first")
        self.send(b"second")
        self.close()


# --- function views (the 0.3 API) -----------------------------------------------------


@require_websocket
def echo_function(request):
    """Echo every message with ``for message in request.websocket``."""
    for message in request.websocket:
        request.websocket.send(message)


@accept_websocket
def both_function(request):
    """Plain HTTP gets ``"http"``; a WebSocket gets ``"websocket"`` then an echo."""
    if not request.is_websocket():
        return HttpResponse("http", content_type="text/plain")
    request.websocket.send("websocket")
    for message in request.websocket:
        request.websocket.send(message)


@require_websocket
async def async_echo_function(request):
    """Echo with ``async for``."""
    async for message in request.websocket:
        await request.websocket.send(message)


@require_websocket
def close_function(request):
    """Close with ``?code=`` and reason ``"bye"`` at once."""
    request.websocket.close(int(request.GET.get("code", "1000")), "bye")
