"""The ASGI entry point: ``get_asgi_application()``, like Django's own.

HTTP goes to Django's :class:`~django.core.handlers.asgi.ASGIHandler` unchanged. A
``websocket`` scope becomes a Django request that goes through the whole middleware
chain and URL resolver to the view, which completes the handshake through
:class:`~django_websocket.transports.asgi.ASGIConnection`. A view or middleware
that answers with an HTTP response refuses the handshake with it. ``lifespan``
shutdown closes open WebSockets with 1001.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import django
import django.core.handlers.asgi as django_asgi
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase
from django.urls import get_script_prefix as current_script_prefix
from django.urls import set_script_prefix

from .contexts import connection_thread_retired, lend_thread, take_thread
from .meta import EMPTY_BODY, share_headers, shared_meta
from .transports.asgi import ASGIConnection, Receive, Scope, Send
from .transports.servers import UPGRADE_KEY

__all__ = ["WebSocketASGIHandler", "WebSocketRequest", "get_asgi_application"]

logger = logging.getLogger("django_websocket")

# Django >= 5.0 has a function; 4.2 a method of the handler.
get_script_prefix: Callable[[Scope], str] | None = getattr(django_asgi, "get_script_prefix", None)


def _http_scope(scope: Scope) -> dict[str, Any]:
    """Describe the upgrade request the way Django's ASGIRequest expects an HTTP scope."""
    return {
        **scope,
        "type": "http",
        "method": "GET",
        "scheme": "https" if scope.get("scheme") == "wss" else "http",
    }


class WebSocketRequest(django_asgi.ASGIRequest):
    """Django's ``ASGIRequest`` for a ``websocket`` scope; ``request.scope`` is the server's.

    ``ASGIRequest`` reads an HTTP scope (a ``method``, an ``http`` scheme): it is
    built from a copy that has them, then keeps the server's own scope instead, so
    a session does not keep a second one. ``scheme`` is ``http`` or ``https``.
    ``META``'s names and repeating values, and the scope's header pairs, are shared
    between connections.
    """

    def __init__(self, scope: Scope, body_file: Any) -> None:
        super().__init__(_http_scope(scope), body_file)
        self.scope = scope
        self.META = shared_meta(self.META)
        share_headers(scope.get("headers"))

    def _get_scheme(self) -> str:
        return "https" if self.scope.get("scheme") == "wss" else "http"


def _request_class(scope: Scope, body_file: Any) -> HttpRequest:
    """Django's request class for HTTP scopes, :class:`WebSocketRequest` for ours."""
    if scope.get("type") == "websocket":
        return WebSocketRequest(scope, body_file)
    return django_asgi.ASGIRequest(scope, body_file)


def _response_headers(response: HttpResponseBase) -> list[tuple[bytes, bytes]]:
    headers = [
        (name.encode("latin-1"), str(value).encode("latin-1")) for name, value in response.items()
    ]
    for cookie in response.cookies.values():
        headers.append((b"Set-Cookie", cookie.output(header="").strip().encode("latin-1")))
    return headers


class WebSocketASGIHandler(ASGIHandler):
    """Django's ASGI handler, plus ``websocket`` and ``lifespan`` scopes."""

    request_class = staticmethod(_request_class)  # type: ignore[assignment]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            if scope["type"] == "lifespan":
                await self.handle_lifespan(receive, send)
            else:
                await super().__call__(scope, receive, send)
            return
        # One WebSocket connection through Django, from connect to close, all in this
        # frame: an idle connection keeps every frame of its await chain for hours.
        # Not at import (it reads settings); before any middleware runs, so that its
        # connection_created receiver sees every DB connection of this connection.
        from .accept import SessionResponse, abandon, retire_handshake_thread

        async with ThreadSensitiveContext():
            message = await receive()
            if message["type"] != "websocket.connect":
                return  # the client left before the handshake
            connection = ASGIConnection(scope, receive, send)
            lend_thread()  # a parked thread rather than a new one for the sync parts
            if get_script_prefix is not None:
                prefix = get_script_prefix(scope)
            else:
                prefix = self.get_script_prefix(scope)  # type: ignore[attr-defined]
            # As Django does per request, but only if it differs from what this context
            # sees already ("/" mostly): each set copies the prefix's Local storage
            # into the connection's context, kept for the session's hours.
            if current_script_prefix() != (prefix if prefix.endswith("/") else f"{prefix}/"):
                set_script_prefix(prefix)
            await sync_to_async(signals.request_started.send, thread_sensitive=True)(
                sender=self.__class__, scope=scope
            )
            request, response = self.create_request(scope, EMPTY_BODY)
            if request is not None:
                request.META[UPGRADE_KEY] = connection
                try:
                    response = await self.get_response_async(request)
                    if connection.session is not None:
                        # A WebSocketView's session (or an async view's), deferred to
                        # here (accept.serve_async, accept.serve_sync): the middleware
                        # chain has returned. Only the response's closers are kept for
                        # the session's hours, and not the list Django made when it
                        # holds only request.close (added back at the end).
                        closers = [
                            closer
                            for closer in response._resource_closers  # type: ignore[attr-defined]
                            if closer != request.close
                        ] or None
                        response = None
                        try:
                            await retire_handshake_thread()
                        except Exception:  # the session must run (and end) all the same
                            logger.exception("Error closing a WebSocket handshake's DB connections")
                        session, connection.session = connection.session, None
                        connection.abandoned = None  # the session cleans up after itself
                        try:
                            await session
                        except Exception:  # the view's own errors were handled inside: ours
                            logger.exception("Error in WebSocket session")
                        response = SessionResponse()
                        response._resource_closers = [  # type: ignore[attr-defined]
                            *(closers or ()),
                            request.close,
                        ]
                except asyncio.CancelledError:
                    await connection.cancelled()
                    if connection.session is not None:  # deferred, never started: none of
                        connection.session.close()  # the view's code runs after the 1001
                        try:
                            if connection.abandoned is not None:
                                connection.abandoned()  # leave the groups it joined
                        finally:
                            await abandon(connection.websocket)
                    raise
            assert response is not None
            await self._end(connection, response)

    async def _end(self, connection: ASGIConnection, response: HttpResponseBase) -> None:
        """Refuse the handshake with ``response`` unless it was accepted; close the response."""
        from .accept import SessionResponse  # not at import: it reads settings

        if not connection.responded and not isinstance(response, SessionResponse):
            body = b"" if response.streaming else getattr(response, "content", b"")
            await connection.refuse(response.status_code, _response_headers(response), body)
        # request_finished, on the connection's thread as Django does; an async view's
        # connection gave its thread back after the handshake (accept.py): then on a
        # pooled thread rather than a new one per connection.
        thread_sensitive = not connection_thread_retired()
        response._handler_class = self.__class__  # type: ignore[attr-defined]  # the sender
        await sync_to_async(response.close, thread_sensitive=thread_sensitive)()
        take_thread()  # parked for the next connection

    async def handle_lifespan(self, receive: Receive, send: Send) -> None:
        """Acknowledge startup; on shutdown close open WebSockets with 1001 first."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _close_first_when_uvicorn_stops()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                from .accept import shutdown

                await asyncio.to_thread(shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _close_first_when_uvicorn_stops() -> None:
    """Close WebSockets with 1001 (Going Away) when uvicorn is told to stop.

    On SIGTERM/SIGINT uvicorn closes every WebSocket with its own 1012 (Service
    Restart) before the app hears of the shutdown (lifespan comes last). So, in
    uvicorn's main thread, its signal handlers are wrapped: the first signal
    closes this process's WebSockets with 1001 on a thread, waits (bounded by
    ``WEBSOCKET_CLOSE_TIMEOUT``) for their sessions to end, then hands the signal
    to uvicorn; a second signal goes to uvicorn at once (its force exit).
    Other servers are left alone (see docs/close-codes.rst for what they do).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        owner = getattr(handler, "__self__", None)
        if not callable(handler) or not type(owner).__module__.startswith("uvicorn."):
            continue
        signal.signal(signum, _ClosingFirst(handler))


class _ClosingFirst:
    """A signal handler: close WebSockets with 1001, then call ``handler``."""

    def __init__(self, handler: Callable[[int, FrameType | None], Any]) -> None:
        self.handler = handler
        self.closing = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.closing or not _has_websockets():
            self.handler(signum, frame)
            return
        self.closing = True

        def close_then_stop() -> None:
            from .accept import shutdown

            try:
                shutdown()
            except Exception:  # stopping must go on whatever happened
                logger.exception("Error closing WebSockets at shutdown")
            self.handler(signum, frame)  # uvicorn's: sets flags its main loop polls

        threading.Thread(
            target=close_then_stop, name="django-websocket-shutdown", daemon=True
        ).start()


def _has_websockets() -> bool:
    from .connection import registry

    return len(registry) > 0


def get_asgi_application() -> WebSocketASGIHandler:
    """Return the ASGI application for HTTP and WebSockets (use in ``asgi.py``)."""
    django.setup(set_prefix=False)
    return WebSocketASGIHandler()
