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
import io
from collections.abc import Callable
from typing import Any

import django
import django.core.handlers.asgi as django_asgi
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpResponseBase
from django.urls import set_script_prefix

from .transports.asgi import ASGIConnection, Receive, Scope, Send
from .transports.servers import UPGRADE_KEY

__all__ = ["WebSocketASGIHandler", "get_asgi_application"]

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


def _response_headers(response: HttpResponseBase) -> list[tuple[bytes, bytes]]:
    headers = [
        (name.encode("latin-1"), str(value).encode("latin-1")) for name, value in response.items()
    ]
    for cookie in response.cookies.values():
        headers.append((b"Set-Cookie", cookie.output(header="").strip().encode("latin-1")))
    return headers


class WebSocketASGIHandler(ASGIHandler):
    """Django's ASGI handler, plus ``websocket`` and ``lifespan`` scopes."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "websocket":
            async with ThreadSensitiveContext():
                await self.handle_websocket(scope, receive, send)
        elif kind == "lifespan":
            await self.handle_lifespan(receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def handle_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run one WebSocket connection through Django, from connect to close."""
        message = await receive()
        if message["type"] != "websocket.connect":
            return  # the client left before the handshake
        connection = ASGIConnection(scope, receive, send)
        if get_script_prefix is not None:
            set_script_prefix(get_script_prefix(scope))
        else:
            set_script_prefix(self.get_script_prefix(scope))  # type: ignore[attr-defined]
        await sync_to_async(signals.request_started.send, thread_sensitive=True)(
            sender=self.__class__, scope=scope
        )
        request, response = self.create_request(_http_scope(scope), io.BytesIO())
        if request is not None:
            request.META[UPGRADE_KEY] = connection
            try:
                response = await self.get_response_async(request)
            except asyncio.CancelledError:
                await connection.cancelled()
                raise
        assert response is not None
        from .accept import SessionResponse  # not at import: it reads settings

        if not connection.responded and not isinstance(response, SessionResponse):
            body = b"" if response.streaming else getattr(response, "content", b"")
            await connection.refuse(response.status_code, _response_headers(response), body)
        await sync_to_async(response.close, thread_sensitive=True)()

    async def handle_lifespan(self, receive: Receive, send: Send) -> None:
        """Acknowledge startup; on shutdown close open WebSockets with 1001 first."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                from .accept import shutdown

                await asyncio.to_thread(shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return


def get_asgi_application() -> WebSocketASGIHandler:
    """Return the ASGI application for HTTP and WebSockets (use in ``asgi.py``)."""
    django.setup(set_prefix=False)
    return WebSocketASGIHandler()
