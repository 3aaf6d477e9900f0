"""The django-websocket 0.3 decorators: ``@accept_websocket`` and ``@require_websocket``.

Thin wrappers over :mod:`.accept`: they attach ``request.is_websocket()`` and
``request.websocket``, complete the handshake before the view runs, and finish the
connection when it returns. They decorate sync and ``async def`` views and work
with or without :class:`~django_websocket.middleware.WebSocketMiddleware`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse

from .accept import (
    aaccept,
    accept,
    afinish,
    is_websocket,
    logger,
    refuse,
    run_session,
    serve_async,
)
from .connection import WebSocket
from .connection_async import AsyncWebSocket
from .events import CloseCode
from .exceptions import ConnectionClosed, HandshakeError

__all__ = ["accept_websocket", "attach", "require_websocket"]

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., Any])


def attach(request: HttpRequest) -> None:
    """Give ``request`` the 0.3 attributes: ``is_websocket()`` and ``websocket = None``."""
    if not hasattr(request, "websocket"):
        request.websocket = None  # type: ignore[attr-defined]
        request.is_websocket = lambda: is_websocket(request)  # type: ignore[attr-defined]


def _start(request: HttpRequest, required: bool) -> WebSocket | HttpResponse | None:
    """Accept the WebSocket, or return the response refusing it, or ``None`` for HTTP."""
    attach(request)
    if not request.is_websocket():  # type: ignore[attr-defined]
        if required:
            return refuse(HandshakeError(400, "this url accepts websocket requests only"))
        return None
    try:
        return accept(request)
    except HandshakeError as exc:
        return refuse(exc)


async def _astart(request: HttpRequest, required: bool) -> AsyncWebSocket | HttpResponse | None:
    """:func:`_start` for ``async def`` views."""
    attach(request)
    if not request.is_websocket():  # type: ignore[attr-defined]
        if required:
            return refuse(HandshakeError(400, "this url accepts websocket requests only"))
        return None
    try:
        return await aaccept(request, pump=True)
    except HandshakeError as exc:
        return refuse(exc)


async def _asession(
    websocket: AsyncWebSocket, view: Callable[..., Awaitable[object]], *args: Any, **kwargs: Any
) -> HttpResponse:
    """Call and await an ``async def`` view on an accepted connection; always finish it.

    The view's coroutine is made here, so a session that never starts leaves none
    behind un-awaited.
    """
    try:
        await view(*args, **kwargs)
    except ConnectionClosed:
        logger.debug("The client left while the view was sending")
    except Exception:
        logger.exception("Error in WebSocket view")
        if not websocket.closed:
            await websocket.close(CloseCode.INTERNAL_ERROR, "internal error")
    return await afinish(websocket)


def _websocket_view(view: ViewFunc, required: bool) -> ViewFunc:
    if iscoroutinefunction(view):

        @wraps(view)
        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            started = await _astart(request, required)
            if not isinstance(started, AsyncWebSocket):
                return started if started is not None else await view(request, *args, **kwargs)
            request.websocket = started  # type: ignore[attr-defined]
            session = _asession(started, view, request, *args, **kwargs)
            return await serve_async(request, started, session)

        wrapper: Any = async_wrapper
    else:

        @wraps(view)
        def sync_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            started = _start(request, required)
            if not isinstance(started, WebSocket):
                return started if started is not None else view(request, *args, **kwargs)
            request.websocket = started  # type: ignore[attr-defined]
            return run_session(started, lambda: view(request, *args, **kwargs))

        wrapper = sync_wrapper
    wrapper.accept_websocket = True
    wrapper.require_websocket = required
    wrapper.websocket_handler = True  # the middleware leaves the handshake to us
    return wrapper  # type: ignore[no-any-return]


def accept_websocket(view: ViewFunc) -> ViewFunc:
    """Let ``view`` serve both HTTP and WebSocket requests.

    ``request.is_websocket()`` tells them apart; for a WebSocket request the
    handshake is complete when the view runs, ``request.websocket`` is the
    connection, and returning closes it with 1000 if still open.
    """
    return _websocket_view(view, required=False)


def require_websocket(view: ViewFunc) -> ViewFunc:
    """Like :func:`accept_websocket`, but answer a plain HTTP request with 400."""
    return _websocket_view(view, required=True)
