"""The one accept helper that decorators, middleware and views share.

This is the Django edge: it reads settings, validates the upgrade request, checks
origin and connection limits, asks the server's transport to complete the
handshake, and runs a session so that the connection is always finished and the
server writes nothing after it. No protocol logic lives here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Coroutine, Generator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse
from django.http.request import HttpHeaders

from . import handshake
from .conf import settings
from .connection import BaseWebSocket, WebSocket, registry
from .connection_async import AsyncWebSocket
from .contexts import (
    connection_thread_retired,
    db_used,
    has_thread,
    mark_db_closed,
    mark_db_used,
    take_thread,
)
from .events import Close, CloseCode
from .exceptions import ConnectionClosed, HandshakeError
from .meta import EMPTY_BODY, share_meta
from .transports import servers
from .transports.base import AsyncTransport, Transport
from .transports.threaded import ThreadedTransport
from .transports.wsgi import accept_socket
from .workers import run_parked, start_parked

__all__ = [
    "Options",
    "SessionResponse",
    "aaccept",
    "abandon",
    "accept",
    "afinish",
    "close_connections",
    "db_hygiene",
    "finish",
    "is_websocket",
    "refuse",
    "retire_handshake_thread",
    "run_session",
    "serve_async",
    "serve_sync",
    "shutdown",
    "validate",
]

logger = logging.getLogger("django_websocket")

OPTION_NAMES = (
    "max_message_size",
    "ping_interval",
    "ping_timeout",
    "close_timeout",
    "compression",
    "max_connections",
    "allowed_origins",
)


@dataclass(frozen=True)
class Options:
    """The settings one connection runs with (SPEC section 7), read once at accept."""

    max_message_size: int | None
    ping_interval: float | None
    ping_timeout: float | None
    close_timeout: float | None
    compression: str | None
    max_connections: int | None
    allowed_origins: Sequence[str] | None

    @classmethod
    def from_settings(cls, **overrides: Any) -> Options:
        """Read ``WEBSOCKET_*`` settings now, then apply per-view ``overrides``."""
        options = cls(
            **{name: getattr(settings, f"WEBSOCKET_{name.upper()}") for name in OPTION_NAMES}
        )
        return replace(options, **overrides) if overrides else options


class SessionResponse(HttpResponse):
    """What a view returns to the server after a WebSocket session.

    The handshake and the session went over the socket directly; the server was
    told (per server, :mod:`.transports.servers`) to write nothing of this response.
    """

    status_code = 101
    websocket_session = True


def _headers(request: HttpRequest) -> Any:
    """``request.headers``, without caching a copy on a request a session keeps for hours.

    Built from ``META`` each time rather than looked up in ``request.__dict__``:
    touching ``__dict__`` makes Python give the request a dict of its own instead
    of its compact attribute values (~0.1 KiB for as long as the session lasts).
    """
    return HttpHeaders(request.META)


def is_websocket(request: HttpRequest) -> bool:
    """Tell whether ``request`` asks to upgrade to WebSocket."""
    return _server_validated(request) or handshake.is_websocket_request(_headers(request))


def _server_validated(request: HttpRequest) -> bool:
    upgrade = request.META.get(servers.UPGRADE_KEY)
    return upgrade is not None and upgrade.server_validated


def validate(request: HttpRequest) -> None:
    """Check the upgrade request (RFC 6455 4.2.1).

    An ASGI server routed it as a WebSocket already (method, Upgrade, Connection);
    the version and key are checked again, as not every server does. WebSockets
    over HTTP/2 (RFC 8441) have neither header.

    Raises:
        HandshakeError: 400 with the reason.
    """
    if not _server_validated(request):
        # The method as sent: Django upper-cases request.method, HTTP is case-sensitive.
        method = str(request.META.get("REQUEST_METHOD") or request.method or "")
        handshake.validate_request(method, _headers(request))
        return
    scope = getattr(request.META[servers.UPGRADE_KEY], "scope", None) or {}
    if scope.get("http_version", "1.1") in ("1.0", "1.1"):
        handshake.validate_version_and_key(_headers(request))


def shutdown() -> None:
    """Close this process's WebSockets with 1001; wait (bounded) for their sessions to end."""
    if len(registry):
        registry.close_all(
            CloseCode.GOING_AWAY, "server shutting down", timeout=settings.WEBSOCKET_CLOSE_TIMEOUT
        )


def refuse(exc: HandshakeError) -> HttpResponse:
    """Turn a refused handshake into a plain-text HTTP response with its status."""
    response = HttpResponse(
        exc.reason + "\n", status=exc.status, content_type="text/plain; charset=utf-8"
    )
    for name, value in exc.headers.items():
        response[name] = value
    return response


def _allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:  # as HttpRequest.get_host() does
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def _request_headers(request: HttpRequest) -> list[tuple[str, str]]:
    # Only real HTTP headers: a WSGI environ's CONTENT_TYPE/CONTENT_LENGTH are
    # defaults that ``websockets`` would take for a request body.
    return [
        (key[5:].replace("_", "-").title(), str(value))
        for key, value in request.META.items()
        if key.startswith("HTTP_")
    ]


def _negotiate(
    request: HttpRequest,
    subprotocols: Sequence[str],
    select_subprotocol: Callable[[list[str]], str | None] | None,
    options: Options,
) -> str | None:
    """Validate the upgrade and its origin; return the chosen subprotocol."""
    validate(request)
    headers = _headers(request)
    handshake.check_origin(
        headers.get("Origin"),
        host=request.META.get("HTTP_HOST", ""),
        allowed_origins=options.allowed_origins,
        allowed_hosts=_allowed_hosts(),
        trusted_origins=getattr(settings, "CSRF_TRUSTED_ORIGINS", ()),
    )
    offered = handshake.offered_subprotocols(headers)
    if select_subprotocol is not None:
        return select_subprotocol(offered) if offered else None
    return handshake.select_subprotocol(offered, subprotocols)


def _accept_wsgi(request: HttpRequest, subprotocol: str | None, options: Options) -> Transport:
    found = servers.find_server(request.META)
    if found is None:
        logger.error(
            "WebSocket request to %s, but this server cannot take the connection over: "
            "add 'django_websocket' to INSTALLED_APPS for runserver, or see the "
            "deployment docs for gunicorn and ASGI servers.",
            request.path,
        )
        raise HandshakeError(501, "this server does not support websockets")
    server, sock = found
    transport = accept_socket(
        sock,
        path=request.get_full_path(),
        headers=_request_headers(request),
        subprotocol=subprotocol,
        max_message_size=options.max_message_size,
        compression=options.compression,
        read_buffer=lambda: server.read_buffer(request.META),
        send_timeout=options.close_timeout,
    )
    server.hijacked(request.META)
    share_meta(request.META)  # the session keeps it: WSGI servers build one per request
    # The socket's bytes are WebSocket frames now: request.read() must not take them,
    # nor the session keep a stream over the server's reader for hours.
    request._stream = EMPTY_BODY
    return transport


def _core_options(subprotocol: str | None, options: Options) -> dict[str, Any]:
    return {
        "subprotocol": subprotocol,
        "ping_interval": options.ping_interval,
        "ping_timeout": options.ping_timeout,
        "close_timeout": options.close_timeout,
        "max_message_size": options.max_message_size,
    }


def _reserve(options: Options) -> None:
    if not registry.reserve(options.max_connections):
        raise HandshakeError(503, "too many websocket connections")


def accept(
    request: HttpRequest,
    *,
    subprotocols: Sequence[str] = (),
    select_subprotocol: Callable[[list[str]], str | None] | None = None,
    options: Options | None = None,
) -> WebSocket:
    """Complete the WebSocket handshake for ``request`` and return the connection.

    For synchronous code, on any server: a WSGI server's socket is taken over; under
    ASGI the handshake is sent through the event loop from this thread.

    Args:
        subprotocols: the subprotocols the view supports, in no particular order.
        select_subprotocol: picks among the client's offers (overrides ``subprotocols``).
        options: connection settings; read from ``settings`` when omitted.

    Raises:
        HandshakeError: the request is refused (400, 403, 501, 503); send
            :func:`refuse` of it as the response.
    """
    options = options or Options.from_settings()
    subprotocol = _negotiate(request, subprotocols, select_subprotocol, options)
    _reserve(options)
    try:
        upgrade = request.META.get(servers.UPGRADE_KEY)
        transport: Transport
        if upgrade is not None:
            transport = upgrade.accept(subprotocol)
            _watch_sends(transport, options)
        else:
            transport = _accept_wsgi(request, subprotocol, options)
    except BaseException:
        registry.release()
        raise
    websocket = WebSocket(transport, **_core_options(subprotocol, options))
    registry.add(websocket)
    return websocket


async def aaccept(
    request: HttpRequest,
    *,
    subprotocols: Sequence[str] = (),
    select_subprotocol: Callable[[list[str]], str | None] | None = None,
    options: Options | None = None,
    pump: bool = False,
) -> AsyncWebSocket:
    """Like :func:`accept`, for ``async def`` code: return an :class:`AsyncWebSocket`.

    Under ASGI the connection lives on the event loop; on a WSGI server its blocking
    calls run in worker threads.
    """
    options = options or Options.from_settings()
    subprotocol = _negotiate(request, subprotocols, select_subprotocol, options)
    _reserve(options)
    try:
        upgrade = request.META.get(servers.UPGRADE_KEY)
        transport: AsyncTransport
        if upgrade is not None:
            transport = await upgrade.aaccept(subprotocol)
            _watch_sends(transport, options)
        else:
            transport = ThreadedTransport(_accept_wsgi(request, subprotocol, options))
    except BaseException:
        registry.release()
        raise
    websocket = AsyncWebSocket(transport, pump=pump, **_core_options(subprotocol, options))
    registry.add(websocket)
    return websocket


async def serve_async(
    request: HttpRequest,
    websocket: AsyncWebSocket,
    session: Coroutine[Any, Any, HttpResponse],
    abandoned: Callable[[], object] | None = None,
) -> HttpResponse:
    """Run an async view's ``session``: after the view returned where the server can, else now.

    The ASGI entry point runs it once Django's response path has unwound: an idle
    connection that may last hours then keeps no middleware frames, and no thread
    of a sync middleware that called the view through ``async_to_sync``. Middleware
    sees the :class:`SessionResponse` right after the handshake (so, for instance,
    ``SessionMiddleware`` has saved ``request.session`` by the time ``on_open``
    runs). Elsewhere (a WSGI server, the test client) the session runs here,
    inside the view. ``websocket`` is ``session``'s connection: :func:`abandon`
    releases it if the server cancels the connection before the session starts;
    ``abandoned()`` is then called too (the session's own cleanup never runs).
    """
    defer = getattr(request.META.get(servers.UPGRADE_KEY), "defer", None)
    if defer is None:
        return await session
    defer(session, websocket, abandoned)
    return SessionResponse()


def serve_sync(
    request: HttpRequest,
    websocket: WebSocket,
    run: Callable[[], object],
    steps: Callable[[], Generator[None, None, None]],
    abandoned: Callable[[], object] | None = None,
) -> SessionResponse:
    """Run a sync view's session: between events on no thread where the server can, else here.

    Under ASGI the session is deferred as an async view's is (:func:`serve_async`)
    and runs as ``steps()``, a generator that yields when the connection has
    nothing to do: :func:`.workers.run_parked` then gives its thread back until
    the next event. Our runserver offers the same (:data:`.servers.DEFER_KEY`):
    the session starts once the request's thread is done with the response, and
    parks on the runserver's reactor. Elsewhere (gunicorn, whose thread is the
    connection's anyway; the test client) ``run()`` runs the session here,
    blocking. ``abandoned`` as for :func:`serve_async`.
    """
    if websocket.can_park:
        defer = getattr(request.META.get(servers.UPGRADE_KEY), "defer", None)
        if defer is not None:
            defer(run_parked(steps(), websocket.park), websocket, abandoned)
            return SessionResponse()
        later = request.META.get(servers.DEFER_KEY)
        if later is not None and websocket.take_socket():  # our runserver
            later(partial(start_parked, steps(), websocket.park))
            return SessionResponse()
    run()
    return SessionResponse()


async def abandon(websocket: WebSocket | AsyncWebSocket) -> None:
    """Release a connection whose deferred session never started (the server stopped)."""
    try:
        close = Close(CloseCode.GOING_AWAY, "server shutting down")
        if isinstance(websocket, AsyncWebSocket):
            await websocket.abandon(close)
        else:  # its transport was ended from the loop's side (ASGIConnection.cancelled)
            websocket.abandon(close)
    finally:
        registry.discard(websocket)
        registry.release()


def _watch_sends(transport: object, options: Options) -> None:
    """ASGI transports: a send gives up after CLOSE_TIMEOUT, as the WSGI socket's does."""
    watch_sends = getattr(transport, "watch_sends", None)
    if watch_sends is not None:
        watch_sends(options.close_timeout)


async def retire_handshake_thread() -> None:
    """Let a deferred session's connection go on without a thread of its own (ASGI).

    The ASGI entry point gives each connection a ThreadSensitiveContext, as Django
    does for a request: its middleware ran on that context's thread. A session
    may last hours, and an idle thread per connection costs memory, so
    the thread's DB connections are closed and the thread is parked for the next
    handshake (:mod:`.contexts`). A later ``sync_to_async`` call (the ORM's async
    API) starts another one on demand.
    """
    if not has_thread():
        return
    if db_used():  # else a hop to that thread (and back) would close nothing
        await sync_to_async(_close_thread_connections, thread_sensitive=True)()
    take_thread()


def _close_thread_connections() -> None:
    if db_hygiene.get():
        connections.close_all()  # the thread ends: persistent connections go too
        mark_db_closed()


#: Whether sessions on this thread/context recycle DB connections. The test client
#: turns it off, as Django's does, so a TestCase's transaction survives.
db_hygiene: ContextVar[bool] = ContextVar("django_websocket_db_hygiene", default=True)


class _ThreadDB(threading.local):
    #: Whether a DB connection opened on this thread may still be open. True at
    #: first: one may have been opened before our signal handler was connected.
    connected = True


_thread_db = _ThreadDB()


def _connection_created(**kwargs: Any) -> None:
    _thread_db.connected = True
    mark_db_used()


connection_created.connect(_connection_created, dispatch_uid="django_websocket.accept")


def close_connections() -> None:
    """Run Django's ``close_old_connections()`` unless the test client runs us.

    It runs around every hook of a sync view, so per message. On a thread with no
    open DB connection it would close nothing, and its check of every alias costs
    more than an echo's framing: it is skipped until Django opens one here again
    (``connection_created``).
    """
    if _thread_db.connected and db_hygiene.get():
        close_old_connections()
        _thread_db.connected = any(
            conn.connection is not None for conn in connections.all(initialized_only=True)
        )


def _release(websocket: BaseWebSocket) -> None:
    registry.discard(websocket)
    registry.release()
    # The session was one long request: give its DB connections back (SPEC 6).
    close_connections()


def finish(websocket: WebSocket, *, release: bool = True) -> SessionResponse:
    """Finish ``websocket`` (close 1000 if open, await the close) and release it.

    With ``release=False`` the caller calls :func:`release` itself, after its
    ``on_close``: a server shutting down waits for released connections only.
    """
    try:
        websocket.finish()
    finally:
        if release:
            _release(websocket)
    return SessionResponse()


def release(websocket: WebSocket) -> None:
    """Stop counting and tracking a finished connection; recycle DB connections."""
    _release(websocket)


async def afinish(websocket: AsyncWebSocket, *, release: bool = True) -> SessionResponse:
    """Finish an :class:`AsyncWebSocket` and release it (see :func:`finish`)."""
    try:
        await websocket.finish()
    finally:
        if release:
            await arelease(websocket)
    return SessionResponse()


async def arelease(websocket: AsyncWebSocket) -> None:
    """:func:`release` for async code."""
    if connection_thread_retired():
        # No thread was used since the handshake's: no DB connection to recycle.
        registry.discard(websocket)
        registry.release()
    else:
        await sync_to_async(_release, thread_sensitive=True)(websocket)


def run_session(websocket: WebSocket, session: Callable[[], object]) -> SessionResponse:
    """Run ``session`` on an accepted connection; always finish the connection.

    An exception from ``session`` is logged and closes the connection with 1011;
    it never reaches the server, which has nothing left to answer.
    """
    try:
        session()
    except ConnectionClosed:
        logger.debug("The client left while the view was sending")
    except Exception:
        logger.exception("Error in WebSocket view")
        if not websocket.closed:
            websocket.close(CloseCode.INTERNAL_ERROR, "internal error")
    return finish(websocket)
