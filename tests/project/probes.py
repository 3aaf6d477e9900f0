"""Views that probe SPEC sections 4 and 5 for the integration tests.

Facts that only the server can see (how a loop ended, what ``wait()`` returned
after the close) are written by :func:`record` to ``<DJWS_EVENTS_DIR>/<key>.json``,
where ``key`` is the request's ``?key=`` parameter; the tests poll that file with
a deadline.
"""

import gc
import json
import re
import sqlite3
import threading
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from django_websocket import ConnectionClosed, WebSocketView, accept_websocket, require_websocket

# --- helpers ------------------------------------------------------------------

_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def record(request, **facts):
    """Write *facts* as JSON to the events file named by ``?key=`` (atomically)."""
    key = request.GET.get("key", "")
    if not _KEY.match(key):
        return
    directory = Path(settings.DJWS_EVENTS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{key}.{threading.get_ident()}.tmp"
    temporary.write_text(json.dumps(facts, default=repr))
    temporary.replace(directory / f"{key}.json")


def attempt(function, *args):
    """Call *function* and describe the outcome as a JSON-friendly dict."""
    try:
        value = function(*args)
    except Exception as exc:  # the point is to report whatever happened
        return {
            "raised": type(exc).__name__,
            "message": str(exc),
            "is_connection_closed": isinstance(exc, ConnectionClosed),
        }
    return {"value": value if isinstance(value, (str, type(None))) else repr(value)}


def connection_facts(websocket):
    """Describe the state of *websocket* after its session."""
    return {
        "closed": websocket.closed,
        "close_code": websocket.close_code,
        "close_reason": websocket.close_reason,
    }


# --- plain HTTP -----------------------------------------------------------------


def plain(request):
    """A view that knows nothing about WebSockets (the middleware refuses them)."""
    return HttpResponse("plain ok", content_type="text/plain")


def undecorated(request):
    """No decorator, no attribute: accepts WebSockets only with ACCEPT_ALL."""
    if not request.is_websocket():
        return HttpResponse("undecorated http", content_type="text/plain")
    for message in request.websocket:
        request.websocket.send(message)


def open_sqlite_connections():
    """Count the open sqlite3 connections alive in this process."""
    gc.collect()
    count = 0
    for obj in gc.get_objects():
        if isinstance(obj, sqlite3.Connection):
            try:
                obj.execute("select 1").close()
            except sqlite3.ProgrammingError:  # closed
                continue
            count += 1
    return count


def db_status(request):
    """Report the user count and how many sqlite connections are still open."""
    return JsonResponse(
        {
            "users": User.objects.count(),
            "threads": threading.active_count(),
            "open_sqlite_connections": open_sqlite_connections(),
        }
    )


# --- WebSocket views --------------------------------------------------------------


@require_websocket
def echo(request):
    """Echo every message (text stays text, bytes stay bytes)."""
    for message in request.websocket:
        request.websocket.send(message)


def attribute_echo(request):
    """Accepts WebSockets through ``accept_websocket = True`` and the middleware."""
    if not request.is_websocket():
        return HttpResponse("attribute http", content_type="text/plain")
    for message in request.websocket:
        request.websocket.send(message)


attribute_echo.accept_websocket = True


@csrf_exempt
@accept_websocket
def both(request):
    """Any HTTP method gets 200 "both http"; a WebSocket gets an echo loop.

    The handshake-rejection tests use it: a bad upgrade must get 400, not 200.
    """
    if not request.is_websocket():
        return HttpResponse("both http", content_type="text/plain")
    for message in request.websocket:
        request.websocket.send(message)


@require_websocket
def queue_report(request):
    """Report what is queued without consuming it, then read it all with read().

    The client sends ``?n=`` text messages without waiting for anything; the view
    polls ``count_messages()`` (bounded) until all of them are queued.
    """
    websocket = request.websocket
    expected = int(request.GET.get("n", "3"))
    deadline = time.monotonic() + 10
    while websocket.count_messages() < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    first = websocket.count_messages()
    has = websocket.has_messages()
    again = websocket.count_messages()
    websocket.send(json.dumps({"count": first, "has": has, "count_again": again}))
    messages = []
    while (message := websocket.read()) is not None:
        messages.append(message)
    websocket.send(
        json.dumps(
            {
                "read": messages,
                "count_after": websocket.count_messages(),
                "has_after": websocket.has_messages(),
            }
        )
    )


@require_websocket
def read_when_empty(request):
    """Call read() before the client sent anything, report, then echo once."""
    websocket = request.websocket
    result = websocket.read()
    websocket.send(
        json.dumps(
            {
                "read": result,
                "has": websocket.has_messages(),
                "count": websocket.count_messages(),
            }
        )
    )
    websocket.send(websocket.wait())


@require_websocket
def iterate(request):
    """Echo with ``for``; after the loop, record how it ended and what follows."""
    websocket = request.websocket
    received = []
    try:
        for message in websocket:
            received.append(message)
            websocket.send(message)
    except Exception as exc:
        record(
            request,
            iteration_ended=False,
            loop_raised=repr(exc),
            received=received,
            **connection_facts(websocket),
        )
        raise
    facts = {"iteration_ended": True, "received": received}
    facts.update(connection_facts(websocket))
    facts["wait_after_close"] = attempt(websocket.wait)
    facts["send_after_close"] = attempt(websocket.send, "too late")
    record(request, **facts)


@require_websocket
def wait_loop(request):
    """Echo with ``wait()`` until it returns None; record what happened."""
    websocket = request.websocket
    received = []
    try:
        while (message := websocket.wait()) is not None:
            received.append(message)
            websocket.send(message)
    except Exception as exc:
        record(
            request,
            loop_ended=False,
            loop_raised=repr(exc),
            received=received,
            **connection_facts(websocket),
        )
        raise
    facts = {"loop_ended": True, "received": received}
    facts.update(connection_facts(websocket))
    facts["wait_again"] = attempt(websocket.wait)
    facts["read_after_close"] = attempt(websocket.read)
    record(request, **facts)


@require_websocket
def close_with(request):
    """Close with ``?code=`` and ``?reason=`` right after the handshake."""
    websocket = request.websocket
    websocket.close(int(request.GET.get("code", "1000")), request.GET.get("reason", ""))
    record(request, **connection_facts(websocket))


@require_websocket
def return_now(request):
    """Return at once: the library closes with 1000."""
    return None


@require_websocket
def send_bytes(request):
    """Send a binary message, then a text one, then return."""
    request.websocket.send(b"\x00\x01\xfe\xff")
    request.websocket.send("text after bytes")


@require_websocket
def db_per_message(request):
    """Create a user per message and reply ``<message>:<user count>``."""
    for message in request.websocket:
        User.objects.create(username=f"u-{message}")
        request.websocket.send(f"{message}:{User.objects.count()}")


class DBHooks(WebSocketView):
    """Reply ``<message>:open|closed``: was a DB connection open as the hook began?

    The handshake's session middleware and every hook query the DB; with the
    default ``CONN_MAX_AGE = 0`` each hook must start with it closed (SPEC 6).
    """

    def on_message(self, message):
        was_open = connection.connection is not None
        User.objects.count()
        self.send(f"{message}:{'open' if was_open else 'closed'}")


@require_websocket
def subprotocol_report(request):
    """Send the negotiated subprotocol (``None`` without one)."""
    request.websocket.send(repr(request.websocket.subprotocol))


# --- async views (run by Django with async_to_sync under WSGI) ---------------------


@require_websocket
async def async_echo_once(request):
    message = await request.websocket.wait()
    await request.websocket.send(message)


@require_websocket
async def async_echo(request):
    async for message in request.websocket:
        await request.websocket.send(message)


@accept_websocket
def meta_report(request):
    """Report a few ``request.META`` facts, over HTTP or in one WebSocket message."""
    facts = {"os_environ": "PATH" in request.META, "host": request.META.get("HTTP_HOST")}
    if not request.is_websocket():
        return JsonResponse(facts)
    request.websocket.send(json.dumps(facts))
