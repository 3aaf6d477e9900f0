"""``WebSocketMiddleware``: the django-websocket 0.3 middleware.

It attaches ``request.is_websocket()`` and ``request.websocket`` to every request,
answers a malformed upgrade with 400, and refuses (400) a WebSocket request to a
view that does not accept WebSockets, unless ``WEBSOCKET_ACCEPT_ALL`` is set. A view
accepts WebSockets when it is decorated (``@accept_websocket``,
``@require_websocket``), is a ``WebSocketView``, or has ``accept_websocket = True``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from .accept import refuse, validate
from .conf import settings
from .decorators import accept_websocket, attach
from .exceptions import HandshakeError

__all__ = ["WebSocketMiddleware"]


async def _await(awaitable: Any) -> Any:
    return await awaitable


class WebSocketMiddleware:
    """Give every request the 0.3 WebSocket attributes and route upgrades to views."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _check(self, request: HttpRequest) -> HttpResponse | None:
        attach(request)
        if request.is_websocket():  # type: ignore[attr-defined]
            try:
                validate(request)
            except HandshakeError as exc:
                return refuse(exc)
        return None

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        return self._check(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> Any:
        return self._check(request) or await self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> Any:
        """Serve or refuse a WebSocket request before the view is called."""
        if not request.is_websocket():  # type: ignore[attr-defined]
            return None
        if getattr(view_func, "websocket_handler", False):
            return None  # decorated or a WebSocketView: it completes the handshake itself
        if settings.WEBSOCKET_ACCEPT_ALL or getattr(view_func, "accept_websocket", False):
            response = accept_websocket(view_func)(request, *view_args, **view_kwargs)
            if iscoroutinefunction(view_func):
                return async_to_sync(_await)(response)
            return response
        return refuse(HandshakeError(400, "this url does not accept websocket requests"))
